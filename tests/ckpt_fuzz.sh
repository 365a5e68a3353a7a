#!/usr/bin/env bash
# Bounded fuzz of the checkpoint reader. 200 damaged copies (fixed seed; a random bit flipped in 2 of
# 3, the file truncated at a random length in 1 of 3: tests/ckpt_damage.py fuzz) of a small
# checkpoint written by 2 ranks with ZeRO-1 and tiny chunks. Each copy, under `timeout`:
#  - `longvq inspect` exits 0 (nothing that matters was hit) or 2 (the damage is reported): never a
#    crash, an abort or a hang;
#  - resume=auto in a run dir that also holds an older intact checkpoint, then the read of the pick
#    with every value compared (test_checkpoint find) exits 0: the damaged copy was picked only if
#    every value read back right, otherwise the older one was (the documented fallback).
# FUZZ_TRIALS / FUZZ_SEED override the count and the seed.
set -u
. "$SRC/tests/script_lib.sh"
rm -rf "$WORK" && mkdir -p "$WORK" && cd "$WORK"
MPI="$MPIRUN --oversubscribe --bind-to none"
N=${FUZZ_TRIALS:-200}
SEED=${FUZZ_SEED:-20261204}
export LONGVQ CKPT_TEST

mkdir src
for step in 10 20; do
  CKPT_CHUNK_FLOATS=256 $MPI -np 2 -x CKPT_CHUNK_FLOATS "$CKPT_TEST" write src $step zero > write$step.log 2>&1
done
check "two checkpoints written by 2 ranks (ZeRO-1, chunks of 256 floats)" '[ -f src/ckpt_00000010.h5 ] && [ -f src/ckpt_00000020.h5 ]'
/usr/bin/python3 "$SRC/tests/ckpt_damage.py" fuzz src/ckpt_00000020.h5 fuzz "$N" "$SEED"
check "$N damaged copies made (seed $SEED)" '[ $(ls fuzz/*.h5 | wc -l) -eq $N ]'

# One trial: "NNN inspect_rc find_rc picked-step".
trial() {
  local d=t$1
  mkdir -p $d/tmp
  export TMPDIR=$PWD/$d/tmp # parallel singletons would race for one Open MPI session dir in /tmp
  cp src/ckpt_00000010.h5 $d/ && mv fuzz/$1.h5 $d/ckpt_00000020.h5
  timeout -k 5 30 "$LONGVQ" inspect $d/ckpt_00000020.h5 > $d/inspect.log 2>&1
  local irc=$?
  timeout -k 5 30 "$CKPT_TEST" find $d > $d/find.log 2>&1
  local frc=$? picked
  picked=$(grep '^find:' $d/find.log | grep -o 'ckpt_[0-9]*')
  echo "$1 $irc $frc ${picked:-none}"
  rm -rf $d/*.h5 $d/tmp
}
export -f trial
singleton_env
start=$SECONDS
ls fuzz | sed -n 's/\.h5$//p' | xargs -P 4 -I{} bash -c 'trial {}' | sort > results.txt
echo "$N trials in $((SECONDS - start)) s (4 at a time)"
bad_inspect=$(awk '$2 != 0 && $2 != 2' results.txt | wc -l)
bad_find=$(awk '$3 != 0' results.txt | wc -l)
check "all $N trials ran" '[ $(wc -l < results.txt) -eq $N ]'
check "inspect: exit 0 or 2 every time (no crash, no hang)" '[ $bad_inspect -eq 0 ]'
check "resume: the pick reads back every value every time (no crash, no hang)" '[ $bad_find -eq 0 ]'
awk '$2 != 0 && $2 != 2 || $3 != 0' results.txt | head -5 | while read -r i irc frc p; do
  echo "  trial $i ($(grep "^$i " fuzz/trials.txt | cut -d' ' -f2-)): inspect $irc, resume $frc"; tail -n 3 t$i/*.log
done
echo "inspect exit codes:  $(awk '{print $2}' results.txt | sort | uniq -c | xargs)"
echo "resume picked:       $(awk '{print $4}' results.txt | sort | uniq -c | xargs)"

echo "ckpt_fuzz: $fail failure(s)"
[ $fail -eq 0 ]
