#!/usr/bin/env bash
# Bad input on a real (local, one-node) Slurm fails fast, with the reason in the job's output, the
# job FAILED and never requeued:
#   1. a bad config key given straight to sbatch: the batch script's check stops it before any rank
#      starts (exit 2);
#   2. launch/submit.sh refuses the same config without submitting anything (exit 2);
#   3. a missing dataset (found only by the ranks): the trainer exits 2 on every rank (exit 2);
#   4. a node without the binary (LONGVQ pointing nowhere): exit 1 naming the path.
source "$(dirname "$0")/slurm_lib.sh"

# expect_failed NAME CODE PATTERN SECONDS: the job NAME ended FAILED with CODE, its output matches
# PATTERN, it took less than SECONDS from submission, and it was not requeued.
expect_failed() {
  local job=$1 code=$2 pat=$3 limit=$4 t0=$SECONDS out
  wait_done "$job" 300
  out=$(job_field "$job" StdOut)
  check "$5: FAILED with exit code $code in $((SECONDS - t0)) s, not requeued" \
    '[ "$(job_field $job JobState)" = FAILED ] && [ "$(job_field $job ExitCode)" = "$code:0" ] &&
     [ "$(job_field $job Restarts)" = 0 ] && [ $((SECONDS - t0)) -lt $limit ] && ! grep -q "requeued: scontrol" "$out"'
  check "$5: the reason is in the job's output" 'grep -q -- "$pat" "$out"'
  [ $fail -ne 0 ] && cat "$out"
}

# 1. sbatch with a bad key and a bad value.
# shellcheck disable=SC2086
job=$(sbatch --parsable --job-name=badkey --output="$WORK/%x-%j.out" "$SBATCH_SCRIPT" $TINY train.lr=-1 model.d_modle=32 run.dir="$WORK/badkey")
expect_failed "$job" 2 "model.d_modle: unknown key" 60 "bad config via sbatch"
check "bad config via sbatch: no rank was started" '! grep -q "launch: srun" "$WORK/badkey-$job.out" && ! [ -e "$WORK/badkey/metrics.jsonl" ]'

# 2. submit.sh checks before submitting.
n0=$(squeue -h | wc -l)
# shellcheck disable=SC2086
"$SUBMIT" $TINY model.d_modle=32 run.dir="$WORK/badkey2" > submit2.log 2>&1
rc=$?
check "submit.sh refuses a bad config: exit 2, the key named, nothing submitted" \
  '[ $rc -eq 2 ] && grep -q "model.d_modle: unknown key" submit2.log && grep -q "nothing submitted" submit2.log &&
   [ "$(squeue -h | wc -l)" = "$n0" ] && ! [ -e "$WORK/badkey2" ]'

# 3. A dataset that does not exist: the config loads, the ranks find out.
job=$("$SUBMIT" --job-name=nodata --output="$WORK/%x-%j.out" "$SRC/configs/tiny.yaml" data.train="$WORK/missing.h5" \
      run.dir="$WORK/nodata" 2>>submit.log)
expect_failed "$job" 2 "missing.h5" 120 "missing dataset"
check "missing dataset: the ranks ran and reported it" 'grep -q "launch: srun" "$WORK/nodata-$job.out"'

# 4. No longvq binary on the node.
# shellcheck disable=SC2086
job=$(LONGVQ="$WORK/no/such/longvq" sbatch --parsable --job-name=nobin --output="$WORK/%x-%j.out" "$SBATCH_SCRIPT" $TINY run.dir="$WORK/nobin")
expect_failed "$job" 1 "no/such/longvq' not found or not executable" 60 "no binary on the node"

echo "slurm_badinput: $fail failed ($(elapsed) s)"
exit $fail
