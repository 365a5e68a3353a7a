#!/usr/bin/env bash
# kill -9 in the middle of a checkpoint write: a 2-rank writer saves large (~230 MB) checkpoints
# of steps 1, 2, 3, ... until every rank and mpirun are killed with SIGKILL while a write is in
# progress. The half-written ckpt_<N>.h5.tmp is left behind; the previous checkpoint still reads
# back exactly; the latest record names it; resume=auto picks it and never the .tmp.
set -u
fail=0
check() { if eval "$2"; then echo "ok   $1"; else echo "FAIL $1"; fail=$((fail+1)); fi; }
rm -rf "$WORK" && mkdir -p "$WORK" && cd "$WORK"
MPI="$MPIRUN --oversubscribe --bind-to none"
T="$CKPT_TEST"
wait_for() { for i in $(seq 1 600); do eval "$1" && return 0; sleep 0.05; done; return 1; }

tmp=""
for attempt in 1 2 3; do
  rm -rf run && mkdir run
  $MPI -np 2 "$T" loop run > loop.log 2>&1 &
  mp=$!
  wait_for 'grep -q "wrote step 2" loop.log' || { echo "writer did not reach step 2"; cat loop.log; }
  # mid-write: the next step's .tmp exists and is growing
  wait_for 'ls run/*.h5.tmp >/dev/null 2>&1 && [ $(stat -c %s run/*.h5.tmp 2>/dev/null | head -1) -gt 4000000 ]'
  pids=$(cat run/pid.0 run/pid.1 2>/dev/null)
  kill -9 $pids $mp 2>/dev/null
  wait $mp 2>/dev/null
  tmp=$(ls run/*.h5.tmp 2>/dev/null | head -1)
  [ -n "$tmp" ] && break
  echo "attempt $attempt: the write finished before the kill; again"
done
check "killed mid-write: a .tmp is left ($tmp)" '[ -n "$tmp" ]'
n=$(basename "$tmp" | sed -E 's/ckpt_0*([0-9]+)\.h5\.tmp/\1/')
prev=$(printf "run/ckpt_%08d.h5" $((n - 1)))
echo "killed while writing step $n; previous checkpoint $prev"
check "no complete file for the interrupted step" '[ ! -f run/$(printf ckpt_%08d.h5 $n) ]'
check "latest record names the previous checkpoint" '[ "$(cat run/latest)" = "$(basename $prev)" ]'
$MPI -np 1 "$T" read "$prev" zero large > read.log 2>&1
check "previous checkpoint reads back exactly (1 rank)" '[ $? -eq 0 ] && grep -q ": ok" read.log'
$MPI -np 2 "$T" find run large > find.log 2>&1
check "resume=auto picks the previous checkpoint, verified" '[ $? -eq 0 ] && grep -q "find: $prev (rc 0), verify ok" find.log'
check "the .tmp is reported as an interrupted write" 'grep -q "ignoring $tmp: left by an interrupted checkpoint write" find.log'
check "inspect of the previous checkpoint: checksums OK" '"$LONGVQ" inspect "$prev" > inspect.log 2>&1 && grep -q "^checksums *OK" inspect.log'

echo "ckpt_kill: $fail failure(s)"
[ $fail -eq 0 ]
