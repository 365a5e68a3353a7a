#!/usr/bin/env bash
# A crashing rank on a real (local, one-node) Slurm: a wrapper around longvq (LONGVQ=wrapper; the
# trainer is not changed) kills one rank once step 2 is logged: rank 1 with SIGKILL, then rank 0
# with SIGSEGV. The job must end FAILED with the rank's signal as exit code, within 60 s of the
# crash (--kill-on-bad-exit: the survivor, blocked in a collective, gets TERM then KILL after
# KillWait = 30 s), never hang, and never be requeued. A rank stopped (SIGSTOP) instead: the stall
# watchdog ends the job with exit 1 naming it.
source "$(dirname "$0")/slurm_lib.sh"

cat > crash-wrapper.sh <<'EOF'
#!/bin/bash
# Test wrapper: in the job step, rank $CRASH_RANK gets $CRASH_SIGNAL once $CRASH_METRICS shows step 2.
if [ -n "${SLURM_STEP_ID:-}" ] && [ "${SLURM_PROCID:-}" = "$CRASH_RANK" ]; then
  me=$$
  ( for i in $(seq 1 12000); do grep -q '"step": 2,' "$CRASH_METRICS" 2>/dev/null && break; sleep 0.05; done
    date +%s > "$CRASH_STAMP"; kill -"$CRASH_SIGNAL" "$me" ) < /dev/null > /dev/null 2>&1 &
fi
exec "$REAL_LONGVQ" "$@"
EOF
chmod +x crash-wrapper.sh
export REAL_LONGVQ="$LONGVQ"

# Submits a 2-rank job (crash-wrapper.sh) whose rank RANK gets SIG once step 2 is logged, with these
# train arguments, and waits for it to end. Sets the caller's job, out (its output file), t_end (when
# it was done) and t_sig (when the signal was sent; 0 if never).
run_signalled() { # name rank signal [train args...]
  local name=$1 rank=$2 sig=$3
  shift 3
  export CRASH_RANK=$rank CRASH_SIGNAL=$sig CRASH_METRICS="$WORK/$name/metrics.jsonl" CRASH_STAMP="$WORK/$name.crashed"
  # shellcheck disable=SC2086
  job=$(LONGVQ="$WORK/crash-wrapper.sh" "$SUBMIT" --job-name="$name" --output="$WORK/%x-%j.out" \
        $TINY $MID "$@" run.dir="$WORK/$name" 2>>submit.log)
  out="$WORK/$name-$job.out"
  wait_for "[ -f $CRASH_STAMP ] || ! queued $job" 300
  wait_done "$job" 180
  t_end=$(date +%s)
  t_sig=$(cat "$CRASH_STAMP" 2>/dev/null || echo 0)
}

crash_case() { # name rank signal code
  local name=$1 rank=$2 sig=$3 code=$4 job out t_end t_sig
  run_signalled "$name" "$rank" "$sig" train.steps=400
  check "$name: rank $rank got SIG$sig after step 2" '[ "$t_sig" -gt 0 ]'
  check "$name: the job ended $((t_end - t_sig)) s after the crash (< 60 s)" '[ $((t_end - t_sig)) -lt 60 ]'
  check "$name: FAILED with exit code $code, not requeued" \
    '[ "$(job_field $job JobState)" = FAILED ] && [ "$(job_field $job ExitCode)" = "$code:0" ] &&
     [ "$(job_field $job Restarts)" = 0 ] && ! grep -q "requeued: scontrol" $out'
  check "$name: the reason is in the job's output" \
    'grep -q "srun: error: .*task $rank" $out && grep -q "a rank was killed by signal $((code - 128))" $out'
  [ $fail -ne 0 ] && grep -v '^step ' "$out" | tail -n 25
}

crash_case kill1 1 KILL 137
crash_case segv0 0 SEGV 139

# A stuck rank (SIGSTOP: what a hung file system or a swapping node looks like): the stall watchdog
# of the other rank ends the job after dist.timeout_s=5 with exit 1, naming the rank; not requeued.
# Bound: 5 s + 4 s (detection, answers) + srun ending the stopped rank (KILL after KillWait = 30 s)
# + the script's bookkeeping.
stall_case() { # name rank
  local name=$1 rank=$2 job out t_end t_sig
  run_signalled "$name" "$rank" STOP train.steps=100000 dist.timeout_s=5
  check "$name: rank $rank got SIGSTOP after step 2" '[ "$t_sig" -gt 0 ]'
  check "$name: the job ended $((t_end - t_sig)) s after the stop (< 60 s)" '[ $((t_end - t_sig)) -lt 60 ]'
  check "$name: FAILED with exit code 1, not requeued" \
    '[ "$(job_field $job JobState)" = FAILED ] && [ "$(job_field $job ExitCode)" = "1:0" ] &&
     [ "$(job_field $job Restarts)" = 0 ] && ! grep -q "requeued: scontrol" $out'
  check "$name: the job's output names rank $rank as not arrived" \
    'grep -Eq "error: step [0-9]+: gradient reduction has not completed after [0-9]+ s: rank $rank did not arrive" $out'
  [ $fail -ne 0 ] && grep -v '^step ' "$out" | tail -n 25
}
stall_case stop1 1

echo "slurm_crash: $fail failed ($(elapsed) s)"
exit $fail
