#!/usr/bin/env bash
# A checkpoint written by one world size and decomposition of the optimizer moments is read back
# exactly by others: 4 ranks with ZeRO-1 -> 2 without, 1, 3 with ranges cutting mid-row, 4 with
# ZeRO; 1 rank -> 4 with ZeRO; 2 without ZeRO -> 3 with ZeRO; random ranges with tiny chunks (many
# chunks written partly by several ranks) -> 2 and 1. Every value is compared (test_checkpoint read).
set -u
fail=0
check() { if eval "$2"; then echo "ok   $1"; else echo "FAIL $1"; fail=$((fail+1)); fi; }
rm -rf "$WORK" && mkdir -p "$WORK" && cd "$WORK"
MPI="$MPIRUN --oversubscribe --bind-to none"
T="$CKPT_TEST"

# write: NP STEP DECOMP [chunk floats]; then reads: "NP DECOMP" ...
case_() {
  local np=$1 step=$2 decomp=$3 chunk=$4; shift 4
  mkdir -p w$step
  CKPT_CHUNK_FLOATS=$chunk $MPI -np $np -x CKPT_CHUNK_FLOATS "$T" write w$step $step $decomp > w$step.log 2>&1
  check "written by $np ranks ($decomp, chunks of $chunk floats)" '[ $? -eq 0 ] && [ -f w$step/ckpt_$(printf %08d $step).h5 ]'
  local r n d log
  for r in "$@"; do
    n=${r% *} d=${r#* } log=r$step.$n.$d.log
    $MPI -np $n "$T" read w$step/ckpt_$(printf %08d $step).h5 $d > $log 2>&1
    check "  read by $n ranks ($d): every value identical" '[ $? -eq 0 ] && grep -q ": ok" $log'
  done
}
case_ 4 100 zero 1048576 "2 rep" "1 rep" "3 cut" "4 zero" "2 zero"
case_ 1 200 rep 1048576 "4 zero" "2 cut"
case_ 2 300 rep 1048576 "3 zero" "1 rep"
case_ 3 400 cut 50 "2 zero" "1 rep" "4 cut"
case_ 4 500 rep 50 "1 rep" "3 zero"

# A read that must fail says so on every rank's exit code (exit 1 from the test program).
$MPI -np 2 "$T" read w100/missing.h5 rep > miss.log 2>&1
check "missing file: read fails, names it" '[ $? -ne 0 ] && grep -q "w100/missing.h5: no such file" miss.log'

echo "ckpt_cross: $fail failure(s)"
[ $fail -eq 0 ]
