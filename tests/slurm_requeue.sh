#!/usr/bin/env bash
# Preemption on a real (local, one-node) Slurm: a 2-task training job of launch/longvq.sbatch is
#   1. sent the time-limit warning USR1 as Slurm sends it (to the job steps): it checkpoints, exits 3,
#      requeues itself and its next run resumes (log: SLURM_RESTART_COUNT=1, trainer `restart 1`);
#   2. sent USR1 on the batch shell only (`scancel --batch`): forwarded to the ranks, same outcome
#      (restart 2);
#   3. cancelled by the user (`scancel`, TERM): it checkpoints and is NOT requeued (CANCELLED);
#      submitting the same command again resumes (restart 3) and the job finishes;
# and its metric lines (timings aside) and final parameters equal those of the same job run
# uninterrupted. Each stop loses no complete step: the checkpoint is at or after the step logged
# when the signal was sent.
source "$(dirname "$0")/slurm_lib.sh"

CFG="$TINY $MID train.steps=150 train.eval_every=50 checkpoint.every=50 checkpoint.keep=10 dist.check_every=1"
# shellcheck disable=SC2086
submit() { "$SUBMIT" --job-name="$1" --output="$WORK/%x-%j.out" $CFG run.dir="$WORK/$2" 2>>submit.log; }

# The reference: the same job, uninterrupted.
ref=$(submit ref ref)
check "reference job submitted" '[ -n "$ref" ]'
wait_done "$ref" 400
check "reference job COMPLETED, exit 0 ($(elapsed) s)" '[ "$(job_field $ref JobState)" = COMPLETED ] && [ "$(job_field $ref ExitCode)" = 0:0 ]'

job=$(submit sig sig)
out="$WORK/sig-$job.out"
M="$WORK/sig/metrics.jsonl"

# stop_and_check N HOW: signal the running job after a few new steps; it must checkpoint at or
# after the step logged when the signal went out, and exit 3.
stop_and_check() {
  local n=$1 how=$2 from s ck
  from=$(last_step "$M")
  wait_for "[ \$(last_step $M) -ge $((from + 2)) ] || ! queued $job" 300
  if [ "$(last_step "$M")" -lt $((from + 2)) ] || [ "$(job_field "$job" JobState)" != RUNNING ]; then
    check "stop $n: the job runs (new steps after $from)" false; return 1
  fi
  s=$(last_step "$M")
  case $how in
    steps) scancel --signal=USR1 "$job" ;;
    batch) scancel --batch --signal=USR1 "$job" ;;
    cancel) scancel "$job" ;;
  esac
  if ! wait_for "[ \$(grep -c 'checkpointed; exiting with code 3' $out) -ge $n ]" 120; then
    check "stop $n ($how): checkpointed with exit 3" false
    grep -v '^step ' "$out" | tail -n 20
    return 1
  fi
  ck=$(grep -o 'checkpointing at step [0-9]*' "$out" | tail -n 1 | grep -o '[0-9]*$')
  check "stop $n ($how, sent at step $s): checkpoint at step $ck >= $s, exit 3 ($(elapsed) s)" \
    '[ "$ck" -ge "$s" ] && [ -f "$WORK/sig/ckpt_$(printf %08d "$ck").h5" ]'
  CK=$ck
}

# 1. The warning as Slurm's --signal=USR1@120 delivers it: to the job steps (the ranks).
stop_and_check 1 steps
check "stop 1: the batch script requeued the job" 'wait_for "grep -q \"requeued: scontrol requeue $job\" $out" 60'
check "stop 1: the job is pending again" 'release "$job" 120'
check "restart 1: SLURM_RESTART_COUNT=1 and the trainer's restart 1 from step $((CK + 1))" \
  'wait_for "grep -q \"restart 1: continuing at step $((CK + 1)) of 150\" $out || ! queued $job" 300
   grep -q SLURM_RESTART_COUNT=1 $out && grep -q "restart 1: continuing at step $((CK + 1)) of 150" $out'

# 2. USR1 to the batch shell only: forwarded to the ranks.
stop_and_check 2 batch
check "stop 2: the batch shell forwarded SIGUSR1" 'grep -q "got SIGUSR1: asking the ranks" $out'
check "stop 2: requeued and pending again" 'wait_for "[ \$(grep -c \"requeued: scontrol requeue $job\" $out) -ge 2 ]" 60 && release "$job" 120'
check "restart 2: SLURM_RESTART_COUNT=2 and the trainer's restart 2 from step $((CK + 1))" \
  'wait_for "grep -q \"restart 2: continuing at step $((CK + 1)) of 150\" $out || ! queued $job" 300
   grep -q SLURM_RESTART_COUNT=2 $out && grep -q "restart 2: continuing at step $((CK + 1)) of 150" $out'

# 3. A user's scancel: TERM, checkpoint, not requeued.
stop_and_check 3 cancel
wait_done "$job" 120
check "stop 3 (scancel): not requeued, job CANCELLED" \
  'grep -q "the job was cancelled: not requeued" $out && [ "$(job_field $job JobState)" = CANCELLED ] && [ "$(job_field $job Restarts)" = 2 ]'
check "the requeued runs appended to one output file" '[ $(grep -c "longvq.sbatch.*launch: srun" $out) -eq 3 ]'

# Submitting the same command again continues from the checkpoint and finishes.
job2=$(submit sig sig)
wait_done "$job2" 400
out2="$WORK/sig-$job2.out"
check "resubmitted: resumed (restart 3) from step $((CK + 1)) and COMPLETED ($(elapsed) s)" \
  '[ "$(job_field $job2 JobState)" = COMPLETED ] && grep -q "restart 3: continuing at step $((CK + 1)) of 150" $out2'
check "history: one line per run in slurm-history.tsv" \
  '[ $(grep -c "stopped, requeued$" sig/slurm-history.tsv) -eq 2 ] && grep -q "cancelled: not requeued" sig/slurm-history.tsv && grep -q "exit 0 finished" sig/slurm-history.tsv'

check "metric lines identical to the uninterrupted job (timings aside)" \
  'diff <(loss_lines ref/metrics.jsonl) <(loss_lines sig/metrics.jsonl) > metrics.diff'
[ -s metrics.diff ] && head -n 20 metrics.diff
check "final parameters bitwise identical" '/usr/bin/python3 - ref/model_final.h5 sig/model_final.h5 <<PY
import h5py, numpy as np, sys
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
names = []
a["model"].visit(lambda n: names.append(n) if isinstance(a["model"][n], h5py.Dataset) else None)
assert names
for n in names:
    assert np.array_equal(a["model"][n][()].view(np.uint8), b["model"][n][()].view(np.uint8)), n
PY'

if [ $fail -ne 0 ]; then
  for f in "$WORK"/sig-*.out; do echo "---- $f"; grep -v '^step ' "$f" | tail -n 40; done
fi
echo "slurm_requeue: $fail failed ($(elapsed) s)"
exit $fail
