# Sourced by the tests/slurm_*.sh tests: a private one-node Slurm (launch/slurm-local.sh) for the
# duration of one test, and helpers to submit launch/longvq.sbatch jobs and follow them.
# Needs LONGVQ, SRC, WORK (lv_script_test). Exit 77 (ctest SKIP) only when Slurm cannot run here.
set -u
. "$SRC/tests/script_lib.sh" # check, loss_lines, tiny_listops
note() { echo "     $*"; }
T0=$SECONDS
elapsed() { echo $((SECONDS - T0)); }

SLURM_LOCAL="$SRC/launch/slurm-local.sh"
SUBMIT="$SRC/launch/submit.sh"
SBATCH_SCRIPT="$SRC/launch/longvq.sbatch"

# A Slurm left running by an earlier, killed run of this test is stopped by its recorded PIDs.
if [ -f "$WORK/slurm-dir" ]; then "$SLURM_LOCAL" stop "$(cat "$WORK/slurm-dir")" >/dev/null 2>&1; rm -rf "$(cat "$WORK/slurm-dir")"; fi
rm -rf "$WORK" && mkdir -p "$WORK" && cd "$WORK" || exit 1

# The scratch dir is short (unix socket paths) and private to this run.
SLURM_DIR=$(mktemp -d /tmp/lvslurm.XXXXXX) || exit 1
echo "$SLURM_DIR" > "$WORK/slurm-dir"
WATCHDOG=""
slurm_down() { # the daemons' logs are kept in $WORK/slurm-log
  [ -n "$WATCHDOG" ] && kill "$WATCHDOG" 2>/dev/null
  "$SLURM_LOCAL" stop "$SLURM_DIR" > "$WORK/slurm-stop.log" 2>&1 || cat "$WORK/slurm-stop.log"
  cp -r "$SLURM_DIR/log" "$WORK/slurm-log" 2>/dev/null
  rm -rf "$SLURM_DIR" "$WORK/slurm-dir"
}
"$SLURM_LOCAL" start "$SLURM_DIR" > slurm-start.log 2>&1
rc=$?
if [ $rc -eq 77 ]; then
  cat slurm-start.log
  echo "SKIP: Slurm cannot run on this machine (see above)"
  rm -rf "$SLURM_DIR" "$WORK/slurm-dir"
  exit 77
elif [ $rc -ne 0 ]; then
  cat slurm-start.log
  echo "FAIL local Slurm did not start"
  slurm_down
  exit 1
fi
trap 'slurm_down' EXIT
trap 'echo "FAIL interrupted or past the deadline ($(elapsed) s)"; exit 1' TERM INT
# Past the deadline (below ctest's TIMEOUT) the test stops itself, so that Slurm is stopped too.
( end=$((SECONDS + ${LONGVQ_SLURM_TEST_DEADLINE:-840})); while [ $SECONDS -lt $end ]; do sleep 2; done
  kill -TERM $$ ) < /dev/null > /dev/null 2>&1 &
WATCHDOG=$!
export SLURM_CONF="$SLURM_DIR/etc/slurm.conf"
echo "     $(tail -n 2 slurm-start.log | head -n 1)"

# The jobs get this environment (sbatch exports it). Ranks that wait yield the core: other work
# shares this 2-core machine.
export LONGVQ OMPI_MCA_mpi_yield_when_idle=1
unset SLURM_JOB_ID SLURM_JOBID SLURM_ARRAY_JOB_ID SLURM_ARRAY_TASK_ID

# job_field JOB KEY: a field of `scontrol show job` (first record).
job_field() { scontrol show job "$1" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n 1; }
# wait_for 'condition' SECONDS: polls every 0.05 s; 1 on timeout.
wait_for() {
  local end=$((SECONDS + $2))
  while [ $SECONDS -lt $end ]; do eval "$1" && return 0; sleep 0.05; done
  return 1
}
# Last step logged in a metrics file (0 if none).
last_step() {
  local s
  s=$(grep -o '"step": [0-9]*, "loss"' "$1" 2>/dev/null | tail -n 1 | grep -o '[0-9]\+')
  echo "${s:-0}"
}
# wait_done JOB SECONDS: until the job has left the queue (finished, failed, cancelled).
wait_done() { wait_for "[ -z \"\$(squeue -h -j $1 -o %i 2>/dev/null)\" ]" "$2"; }
# release JOB SECONDS: a requeued job is held ~2 min (the begin time Slurm gives it, so that the
# old run's job steps are gone before it starts again: a step of the same id would collide with
# them, e.g. on the PMIx socket). Once it is pending and slurmd's spool holds nothing of its old
# steps, let it start now. 1 if that did not happen in time.
spool_clean() { ! ls "$SLURM_DIR/spool" 2>/dev/null | grep -Eq "(_|pmix\.)$1\."; }
release() { # JOB may be ARRAYID_TASK; the spool names the task's own job id
  local id
  id=$(job_field "$1" JobId)
  wait_for "[ \"\$(squeue -h -j $1 -o %T 2>/dev/null)\" = PENDING ] && spool_clean $id" "$2" || return 1
  scontrol update jobid="$1" StartTime=now >/dev/null
}
# running JOB: the job is in the queue (pending or running).
queued() { [ -n "$(squeue -h -j "$1" -o %i 2>/dev/null)" ]; }

# The tests' data and config: ListOps, 96 training samples.
"$LONGVQ" data listops --out lo.h5 --train 96 --val 16 --test 16 --min-len 20 --max-len 60 --max-depth 3 --seed 7 \
  > data.log 2>&1 || { cat data.log; echo "FAIL data"; exit 1; }
TINY="$SRC/configs/tiny.yaml data.train=$WORK/lo.h5 data.val=$WORK/lo.h5 data.seq_len=64"
# Steps long enough that a signal sent at step 2-10 lands mid-run even on an idle machine
# (~15 ms per step on 2 ranks), short enough for a loaded one.
MID="model.d_model=64 model.z_dim=32 model.v_dim=64 model.n_layers=4 train.batch_size=32 dist.bucket_mb=25"
