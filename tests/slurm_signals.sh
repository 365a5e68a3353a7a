#!/usr/bin/env bash
# SIGTERM under Slurm (issue 13; docs/slurm.md "Stop signals"), with a checkpoint write slowed to
# seconds (test hook LONGVQ_TEST_CKPT_WRITE_S, io/checkpoint_write.c), on the local Slurm:
#   1. srun: `scancel` of the job (Slurm sends TERM to the tasks, waits KillWait, then KILL): the
#      ranks checkpoint, srun exits 3, and the resumed run ends bitwise identical to an
#      uninterrupted one (parameters and metric lines);
#   2. srun behind launch/run.sh: `kill -TERM` of the script: the same;
#   3. sbatch (launch/longvq.sbatch, which forwards TERM to srun as USR1): `scancel` of the job:
#      the trainer exits 3 after a complete checkpoint, the job is not requeued (a user's cancel),
#      and submitting it again resumes, bitwise identical;
#   4. plain srun, `kill -TERM` of srun: srun kills the tasks at once (exit 137, no checkpoint), the
#      documented reason for 2.
# Prints the checkpoint write times and the seconds from each signal to the end.
source "$(dirname "$0")/slurm_lib.sh"

SLOW=2
export LONGVQ_TEST_CKPT_WRITE_S=0 # set per run below; srun and sbatch pass the environment on
export OMP_NUM_THREADS=1          # one thread per rank: the 2 ranks fill the 2 cores
# 120 steps (~6 s quiet): the signal, sent at step 5 through squeue/scancel or Slurm's forwarding, must land
# before the end (with 40 steps a quiet machine finished first and the run exited 0).
CFG="$TINY $MID train.steps=120 train.eval_every=0 checkpoint.every=0 log.every=1 log.progress=off dist.check_every=1"
SRUN=(srun --mpi=pmix -n 2)
now() { date +%s.%N; }
since() { echo "$(now) - $1" | bc; }
write_s() { sed -n 's/.*saved (step [0-9]*, \([0-9.]*\) s).*/\1/p' "$1" | tail -n 1; }
complete() { # D: exactly one checkpoint, no .tmp, every checksum verified by inspect
  local c
  c=$(ls "$1"/ckpt_*.h5 2>/dev/null)
  [ "$(echo "$c" | wc -w)" -eq 1 ] && ! ls "$1"/*.tmp > /dev/null 2>&1 &&
    "$LONGVQ" inspect "$c" > "$1.inspect" 2>&1 && grep -q "^checksums *OK" "$1.inspect"
}
identical() { # D: D's final model and metric lines equal the reference's
  same_model "$WORK/ref/model_final.h5" "$1/model_final.h5" && diff <(loss_lines "$WORK/ref/metrics.jsonl") <(loss_lines "$1/metrics.jsonl") > /dev/null
}
# shellcheck disable=SC2086
resume_srun() { "${SRUN[@]}" -J lvsig-resume "$LONGVQ" train $CFG run.dir="$1" checkpoint.resume=auto > "$1.resume.log" 2>&1 &&
  grep -q "resumed from .*ckpt_" "$1.resume.log"; }

# Reference: uninterrupted, under srun.
# shellcheck disable=SC2086
"${SRUN[@]}" -J lvsig-ref "$LONGVQ" train $CFG run.dir="$WORK/ref" > ref.log 2>&1
check "reference run under srun ($(elapsed) s)" '[ $? -eq 0 ] && [ -f ref/model_final.h5 ]'

# start_srun NAME [launch/run.sh]: an srun job in the background, run.dir NAME, until step 5.
start_srun() {
  # shellcheck disable=SC2086
  LONGVQ_TEST_CKPT_WRITE_S=$SLOW ${2:-} "${SRUN[@]}" -J "lvsig-$1" "$LONGVQ" train $CFG run.dir="$WORK/$1" > "$1.log" 2>&1 &
  PID=$!
  wait_for "grep -q '\"step\": 5,' $1/metrics.jsonl 2>/dev/null" 120 || echo "     $1: step 5 not reached"
  JOB=$(squeue -h -n "lvsig-$1" -o %i | head -n 1)
}

# 1. scancel of the srun job: TERM to the tasks, KillWait, KILL.
start_srun srun_cancel
t0=$(now); scancel "$JOB"; wait $PID; rc=$?; dt=$(since "$t0")
echo "     1. scancel, srun: exit $rc, $dt s from scancel to srun's end; checkpoint write $(write_s srun_cancel.log) s (KillWait $(scontrol show config | sed -n 's/^KillWait *= *//p'))"
check "1. scancel of an srun job: srun exits 3" '[ $rc -eq 3 ]'
check "1. ... the stop checkpoint is complete" 'complete srun_cancel'
check "1. ... its write took >= $SLOW s" '[ "$(echo "$(write_s srun_cancel.log) >= $SLOW" | bc)" = 1 ]'
check "1. ... resumed, bitwise identical to the uninterrupted run" 'resume_srun srun_cancel && identical srun_cancel'

# 2. kill -TERM of launch/run.sh in front of srun.
start_srun srun_wrap "$SRC/launch/run.sh"
t0=$(now); kill -TERM $PID; wait $PID; rc=$?; dt=$(since "$t0")
echo "     2. TERM to launch/run.sh srun: exit $rc, $dt s to the end; checkpoint write $(write_s srun_wrap.log) s"
check "2. TERM to launch/run.sh srun ...: exit 3" '[ $rc -eq 3 ]'
check "2. ... the stop checkpoint is complete" 'complete srun_wrap'
check "2. ... resumed, bitwise identical to the uninterrupted run" 'resume_srun srun_wrap && identical srun_wrap'

# 3. sbatch: launch/longvq.sbatch, scancel (TERM to the batch shell and the ranks).
export LONGVQ_TEST_CKPT_WRITE_S=$SLOW
# shellcheck disable=SC2086
job=$("$SUBMIT" --job-name=lvsig-sbatch --output="$WORK/%x-%j.out" $CFG run.dir="$WORK/sb" 2>>submit.log)
out="$WORK/lvsig-sbatch-$job.out"
wait_for "grep -q '\"step\": 5,' sb/metrics.jsonl 2>/dev/null" 300 || echo "     sbatch: step 5 not reached"
t0=$(now); scancel "$job"
wait_for "grep -q 'srun ended with code' $out" 120; dt=$(since "$t0")
wait_done "$job" 120
echo "     3. scancel, sbatch: $(grep -o 'srun ended with code [0-9]*' "$out"), $dt s from scancel; checkpoint write $(write_s "$out") s"
check "3. scancel of an sbatch job: the trainer exits 3, not requeued (CANCELLED)" \
  'grep -q "srun ended with code 3" $out && grep -q "the job was cancelled: not requeued" $out && [ "$(job_field $job JobState)" = CANCELLED ]'
check "3. ... the stop checkpoint is complete" 'complete sb'
export LONGVQ_TEST_CKPT_WRITE_S=0
# shellcheck disable=SC2086
job2=$("$SUBMIT" --job-name=lvsig-sbatch2 --output="$WORK/%x-%j.out" $CFG run.dir="$WORK/sb" 2>>submit.log)
wait_done "$job2" 300
check "3. ... submitted again: resumed and finished, bitwise identical to the uninterrupted run" \
  '[ "$(job_field $job2 JobState)" = COMPLETED ] && grep -q "resumed from .*ckpt_" "$WORK/lvsig-sbatch2-$job2.out" && identical sb'

# 4. Plain srun and TERM: srun kills the tasks at once.
start_srun srun_plain
t0=$(now); kill -TERM $PID; wait $PID; rc=$?; dt=$(since "$t0")
echo "     4. TERM to plain srun: exit $rc, $dt s"
check "4. TERM to plain srun: the tasks are killed (exit 137, no checkpoint; use launch/run.sh)" \
  '[ $rc -eq 137 ] && ! ls srun_plain/ckpt_*.h5 > /dev/null 2>&1'

echo "slurm_signals: $fail failed ($(elapsed) s)"
exit $fail
