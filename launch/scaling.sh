#!/usr/bin/env bash
# A scaling sweep in one command: trains CONFIG at several (nodes x) ranks x threads points, each
# for WARMUP + STEPS steps, and reports throughput, efficiency and the step-time split.
#
#   launch/scaling.sh --config F --mode weak|strong (--batch-per-rank B | --global-batch B)
#                     --points "1x1 2x1 1x2 ..." [options] [key=value ...]
#
# Points: RANKSxTHREADS (on --nodes nodes, default 1), or NODESxRANKSxTHREADS with RANKS per node
# (Slurm). weak: the global batch is B x ranks (per-rank batch fixed); strong: the global batch is B
# at every point. key=value arguments are config overrides for every point.
#
# Options:
#   --steps N            timed steps per point (default 30)
#   --warmup W           untimed steps before them (default 5); the run trains W + N steps
#   --launcher L         mpirun (this machine, default) or slurm (one sbatch job per point, through
#                        launch/submit.sh and launch/longvq.sbatch; points run on exclusive nodes)
#   --out DIR            the sweep directory (default runs/scaling-<date>); must not exist yet
#   --nodes N            nodes of the RANKSxTHREADS points (Slurm; default 1)
#   --timeout S          per-point limit in seconds (default 1800; 0 = none); Slurm: the job's --time
#   --partition P        Slurm partition (its node CPUs decide which points are oversubscribed)
#   --sbatch-arg A       one more sbatch option, as one word (repeatable), e.g. --sbatch-arg=--account=x
#   --mpirun-arg A       one more mpirun option, as one word (repeatable)
#   --no-wait            Slurm: submit and return; collect later with launch/scaling_report.py DIR
#   --strict             exit 4 when any point is not ok (default: exit 0 once the report is written)
#   -h, --help           this text
#
# Outputs in DIR: scaling.csv, scaling.md, scaling.png (format: docs/scaling.md), sweep.info, and one
# directory per point (its run.dir: point.info, metrics.jsonl, the log train.log + train.err, or
# slurm.out). A point that fails (batch does not divide, crash, time limit) is recorded with its
# status and first error line, and the sweep goes on.
#
# Exit codes: 0 the report was written (whatever the points' statuses: they are in the table, and a
#   last line counts them); 1 the sweep could not run or the report could not be written; 2 bad
#   arguments or config (nothing was run); 4 with --strict: the report was written, but some point
#   is not ok; 130 interrupted (the report of the points so far is still written).
# Environment: LONGVQ (binary, default build/longvq of this checkout), MPIRUN (default mpirun),
#   LONGVQ_PYTHON (default /usr/bin/python3, with python3-matplotlib).
set -u
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
PYTHON=${LONGVQ_PYTHON:-/usr/bin/python3}
REPORT="$HERE/scaling_report.py"
SUBMIT="$HERE/submit.sh"
# Keys each point sets itself: a user override of one would make the points measure something else.
FORCED_KEYS=" train.batch_size train.steps train.threads train.eval_every run.dir log.every log.metrics
              log.progress checkpoint.every checkpoint.save_initial checkpoint.resume "

usage() { sed -n '2,/^set -u$/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }
die() { echo "scaling.sh: error: $*" >&2; echo "scaling.sh: see launch/scaling.sh --help" >&2; exit 2; }
fatal() { echo "scaling.sh: error: $*" >&2; exit 1; }
say() { echo "scaling.sh: $*"; }
is_uint() { [[ "$1" =~ ^[0-9]+$ ]]; }

# ---- arguments ----------------------------------------------------------------------------------
CONFIG="" POINTS="" MODE="" BPR="" GB="" STEPS=30 WARMUP=5 LAUNCHER=mpirun OUT="" NODES=1
TIMEOUT=1800 PARTITION="" NO_WAIT=0 STRICT=0
SBATCH_EXTRA=() MPIRUN_EXTRA=() OVERRIDES=()
parse_args() {
  local a v
  while [ $# -gt 0 ]; do
    a=$1; shift
    case "$a" in -h|--help) usage; exit 0 ;; --no-wait) NO_WAIT=1; continue ;; --strict) STRICT=1; continue ;; esac
    if [[ "$a" == --*=* ]]; then v=${a#*=}; a=${a%%=*}
    elif [[ "$a" == --* ]]; then [ $# -ge 1 ] || die "$a needs a value"; v=$1; shift
    elif [[ "$a" == ?*=* ]]; then OVERRIDES+=("$a"); continue
    else die "argument '$a': expected an option or a key=value override"; fi
    case "$a" in
      --config) CONFIG=$v ;; --points) POINTS=$v ;; --mode) MODE=$v ;;
      --batch-per-rank) BPR=$v ;; --global-batch) GB=$v ;; --steps) STEPS=$v ;; --warmup) WARMUP=$v ;;
      --launcher) LAUNCHER=$v ;; --out) OUT=$v ;; --nodes) NODES=$v ;; --timeout) TIMEOUT=$v ;;
      --partition) PARTITION=$v ;; --sbatch-arg) SBATCH_EXTRA+=("$v") ;; --mpirun-arg) MPIRUN_EXTRA+=("$v") ;;
      *) die "unknown option '$a'" ;;
    esac
  done
}

# Point labels, and their nodes / ranks per node / threads in parallel arrays.
LABELS=() P_NODES=() P_RPN=() P_THREADS=()
parse_points() {
  local p n r t l
  for p in $POINTS; do
    if [[ "$p" =~ ^([1-9][0-9]*)x([1-9][0-9]*)x([1-9][0-9]*)$ ]]; then
      n=${BASH_REMATCH[1]} r=${BASH_REMATCH[2]} t=${BASH_REMATCH[3]}
    elif [[ "$p" =~ ^([1-9][0-9]*)x([1-9][0-9]*)$ ]]; then
      n=$NODES r=${BASH_REMATCH[1]} t=${BASH_REMATCH[2]}
    else
      die "point '$p': expected RANKSxTHREADS or NODESxRANKSxTHREADS with positive integers (e.g. 2x1, 2x4x1)"
    fi
    [ "$LAUNCHER" = mpirun ] && [ "$n" -ne 1 ] &&
      die "point '$p' needs $n nodes: the mpirun launcher runs on this machine only (use --launcher slurm)"
    # Labels name the point dirs: RxT on this machine, NxRxT on Slurm (where nodes vary).
    if [ "$LAUNCHER" = slurm ]; then l="${n}x${r}x${t}"; else l="${r}x${t}"; fi
    for q in "${LABELS[@]+"${LABELS[@]}"}"; do [ "$q" = "$l" ] && die "point '$p' is listed twice"; done
    LABELS+=("$l"); P_NODES+=("$n"); P_RPN+=("$r"); P_THREADS+=("$t")
  done
  [ ${#LABELS[@]} -gt 0 ] || die "--points is empty: give e.g. --points \"1x1 2x1 1x2\""
}

check_args() {
  local o k
  [ -n "$CONFIG" ] || die "--config is required"
  [ -r "$CONFIG" ] || die "config '$CONFIG' is not readable"
  case "$MODE" in
    weak) [ -n "$BPR" ] || die "--mode weak needs --batch-per-rank B (the global batch is B x ranks)"
          [ -z "$GB" ] || die "--global-batch is for --mode strong (weak scaling fixes --batch-per-rank)"
          is_uint "$BPR" && [ "$BPR" -ge 1 ] || die "--batch-per-rank '$BPR': expected an integer >= 1" ;;
    strong) [ -n "$GB" ] || die "--mode strong needs --global-batch B (the same at every point)"
          [ -z "$BPR" ] || die "--batch-per-rank is for --mode weak (strong scaling fixes --global-batch)"
          is_uint "$GB" && [ "$GB" -ge 1 ] || die "--global-batch '$GB': expected an integer >= 1" ;;
    "") die "--mode weak|strong is required" ;;
    *) die "--mode '$MODE': expected weak or strong" ;;
  esac
  is_uint "$STEPS" && [ "$STEPS" -ge 1 ] || die "--steps '$STEPS': expected an integer >= 1"
  is_uint "$WARMUP" || die "--warmup '$WARMUP': expected an integer >= 0"
  is_uint "$TIMEOUT" || die "--timeout '$TIMEOUT': expected seconds (an integer >= 0)"
  is_uint "$NODES" && [ "$NODES" -ge 1 ] || die "--nodes '$NODES': expected an integer >= 1"
  case "$LAUNCHER" in mpirun|slurm) ;; *) die "--launcher '$LAUNCHER': expected mpirun or slurm" ;; esac
  [ "$LAUNCHER" = slurm ] || [ "$NO_WAIT" = 0 ] || die "--no-wait is for --launcher slurm"
  for o in "${OVERRIDES[@]+"${OVERRIDES[@]}"}"; do
    k=${o%%=*}
    [[ "$FORCED_KEYS" == *" $k "* ]] &&
      die "override '$o': $k is set by scaling.sh for every point (batch: --global-batch/--batch-per-rank, steps: --steps/--warmup, run.dir: --out)"
  done
  parse_points
  if [ -z "$OUT" ]; then OUT="runs/scaling-$(date +%Y%m%d-%H%M%S)"; fi
  [ -e "$OUT" ] && die "--out '$OUT' exists: give a new directory (a sweep never overwrites another)"
  return 0
}

# ---- environment: binary, config, plotting, Slurm -------------------------------------------------
check_env() {
  local cfg rc
  if [ -z "${LONGVQ:-}" ]; then LONGVQ="$ROOT/build/longvq"; fi
  [ -x "$LONGVQ" ] || fatal "longvq binary '$LONGVQ' not found: build it (launch/build.sh) or set LONGVQ"
  # The report needs matplotlib: find out now, not after an hour of runs.
  "$PYTHON" -c 'import matplotlib' 2>/dev/null ||
    fatal "$PYTHON cannot import matplotlib: install python3-matplotlib (launch/install-deps.sh) or set LONGVQ_PYTHON"
  # The config with the overrides and a first point's settings, checked before anything runs.
  point_keys 0 "$OUT/x"
  cfg=$("$LONGVQ" train "$CONFIG" "${OVERRIDES[@]+"${OVERRIDES[@]}"}" "${KEYS[@]}" --print-config 2>&1); rc=$?
  if [ $rc -ne 0 ]; then
    printf '%s\n' "$cfg" >&2
    [ $rc -eq 2 ] && die "the config does not load (the message above): $CONFIG ${OVERRIDES[*]+"${OVERRIDES[*]}"}"
    fatal "'$LONGVQ train --print-config' failed with code $rc"
  fi
  if [ "$LAUNCHER" = slurm ]; then
    command -v sbatch >/dev/null && command -v scontrol >/dev/null ||
      fatal "sbatch/scontrol not found (no Slurm here; launch/slurm-local.sh starts a local one)"
    CORES=$(sinfo -h -o %c ${PARTITION:+-p "$PARTITION"} 2>/dev/null | tr -d '+' | sort -n | head -n 1)
    is_uint "${CORES:-x}" || fatal "cannot read the nodes' CPU count from sinfo${PARTITION:+ (partition $PARTITION)}"
  else
    CORES=$(nproc)
  fi
}

# ---- one point ----------------------------------------------------------------------------------
# point_batch I: the global batch of point I.
point_batch() {
  if [ "$MODE" = weak ]; then echo $((BPR * P_NODES[$1] * P_RPN[$1])); else echo "$GB"; fi
}
# point_keys I DIR: sets KEYS to the overrides every point gets (timed steps only, every step
# logged, no eval, no periodic checkpoint: nothing but training inside the timed steps).
KEYS=()
point_keys() {
  KEYS=("train.batch_size=$(point_batch "$1")" "train.steps=$((WARMUP + STEPS))" "train.threads=${P_THREADS[$1]}"
        "run.dir=$2" log.every=1 log.progress=off train.eval_every=0 checkpoint.every=0 checkpoint.save_initial=false)
}
record() { echo "$1=$2" >> "$3/point.info"; } # key value dir: the point's record (key=value lines)

write_point_info() { # i dir
  local i=$1 d=$2 r=$((P_NODES[$1] * P_RPN[$1]))
  : > "$d/point.info"
  record label "${LABELS[$i]}" "$d"; record nodes "${P_NODES[$i]}" "$d"; record ranks_per_node "${P_RPN[$i]}" "$d"
  record ranks "$r" "$d"; record threads "${P_THREADS[$i]}" "$d"; record cores_per_node "$CORES" "$d"
  record global_batch "$(point_batch "$i")" "$d"; record env "$(point_env "$i" | paste -sd' ')" "$d"
}

oversubscribed() { [ $((P_RPN[$1] * P_THREADS[$1])) -gt "$CORES" ]; }

# point_env I: the ranks' environment. Oversubscribed, spinning OpenMP threads take the cores the
# other ranks need (measured: the tiny model at 2 ranks x 2 threads on 2 cores, 0.5 s per step with
# the default wait policy, 7 ms with PASSIVE): such points let idle threads sleep.
point_env() {
  echo "OMP_NUM_THREADS=${P_THREADS[$1]}"
  if oversubscribed "$1"; then echo "OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}"; fi
}

# Other processes on a shared machine distort a point's figures; how much of the machine they
# used while it ran is recorded with it. machine_ticks: "busy total" CPU ticks of all CPUs so far.
machine_ticks() {
  local _c u n s i w q sq st
  read -r _c u n s i w q sq st _ < /proc/stat
  echo "$((u + n + s + q + sq + st)) $((u + n + s + i + w + q + sq + st))"
}
# CPU ticks of this shell's ended children, theirs included (mpirun waits for its ranks).
own_ticks() {
  local f
  f=$(< "/proc/$$/stat"); f=${f##*) }
  read -r -a f <<<"$f"
  echo $((f[13] + f[14])) # cutime cstime (fields 16 and 17 of proc(5))
}
# background_load "BUSY0 TOTAL0 OWN0": mean CPUs busy with other processes since then.
background_load() {
  local now own ncpu
  now=$(machine_ticks); own=$(own_ticks); ncpu=$(grep -c '^cpu[0-9]' /proc/stat)
  awk -v a="$1 $now $own" -v n="$ncpu" 'BEGIN { split(a, x, " "); wall = (x[5] - x[2]) / n
    if (wall > 0) { b = (x[4] - x[1] - (x[6] - x[3])) / wall; printf "%.2f", (b > 0 ? b : 0) } }'
}

CHILD=""
run_local() { # i dir: mpirun on this machine; returns the exit code
  local i=$1 d=$2 cmd rc e t0 env=()
  for e in $(point_env "$i"); do env+=(-x "$e"); done
  point_keys "$i" "$d"
  # --oversubscribe always: mpirun counts physical cores, nproc logical CPUs; whether a point is
  # oversubscribed is decided (and reported) against nproc. No binding: on shared machines pinned
  # ranks would pile onto the same cores as other jobs' (as launch/quickstart.sh).
  cmd=("${MPIRUN:-mpirun}" -np "${P_RPN[$i]}" --oversubscribe --bind-to none "${env[@]}"
       "${MPIRUN_EXTRA[@]+"${MPIRUN_EXTRA[@]}"}" "$LONGVQ" train "$CONFIG"
       "${OVERRIDES[@]+"${OVERRIDES[@]}"}" "${KEYS[@]}")
  [ "$TIMEOUT" -gt 0 ] && cmd=(timeout --kill-after=60 "$TIMEOUT" "${cmd[@]}")
  record command "$(printf '%q ' "${cmd[@]}")" "$d"
  t0="$(machine_ticks) $(own_ticks)"
  "${cmd[@]}" > "$d/train.log" 2> "$d/train.err" < /dev/null &
  CHILD=$!
  wait "$CHILD"; rc=$?
  CHILD=""
  [ -r /proc/stat ] && record background_load "$(background_load "$t0")" "$d"
  # timeout(1): 124 when the limit ended the run (137 if it had to SIGKILL it).
  if [ "$TIMEOUT" -gt 0 ] && { [ $rc -eq 124 ] || [ $rc -eq 137 ]; }; then record timed_out 1 "$d"; fi
  return $rc
}

# submit_slurm I DIR: one exclusive job per point through launch/submit.sh (and so the sbatch
# template); prints the job id, or returns 1 with the reason in DIR/submit.err.
submit_slurm() {
  local i=$1 d=$2 n=${P_NODES[$1]} r=${P_RPN[$1]} t=${P_THREADS[$1]} sb srun_args a_r a_t
  # --exclusive: a point measures alone on its nodes (on one node the jobs then run one by one).
  sb=(--job-name="lvscale-${LABELS[$i]}" --output="$d/slurm.out" --nodes="$n" --exclusive)
  [ -n "$PARTITION" ] && sb+=(--partition="$PARTITION")
  # Minutes, plus the template's 2-minute USR1 warning before the limit.
  [ "$TIMEOUT" -gt 0 ] && sb+=(--time=$(( (TIMEOUT + 59) / 60 + 2 )))
  # OMP_NUM_THREADS for the ranks themselves: the template exports the allocation's --cpus-per-task,
  # which an oversubscribed point cannot have.
  srun_args="--export=ALL,$(point_env "$i" | paste -sd,)"
  point_keys "$i" "$d"
  if oversubscribed "$i"; then
    # sbatch refuses more tasks x CPUs than a node has: allocate what fits (whole nodes anyway) and
    # let srun place the point's tasks on it with --overcommit.
    a_t=$((t < CORES ? t : CORES)); a_r=$((CORES / a_t)); [ "$a_r" -gt "$r" ] && a_r=$r
    sb+=(--ntasks-per-node="$a_r" --cpus-per-task="$a_t")
    srun_args+=" --overcommit --ntasks=$((n * r)) --ntasks-per-node=$r --cpus-per-task=$t"
  else
    sb+=(--ntasks-per-node="$r" --cpus-per-task="$t")
  fi
  record command "LONGVQ_SRUN_ARGS='$srun_args' $(printf '%q ' "$SUBMIT" "${sb[@]}" "${SBATCH_EXTRA[@]+"${SBATCH_EXTRA[@]}"}")..." "$d"
  # A point's measurement must not silently resume after a preemption: no requeue (exit 3 ends it).
  LONGVQ="$LONGVQ" LONGVQ_NO_REQUEUE=1 LONGVQ_SRUN_ARGS="$srun_args ${LONGVQ_SRUN_ARGS:-}" \
    "$SUBMIT" "${sb[@]}" "${SBATCH_EXTRA[@]+"${SBATCH_EXTRA[@]}"}" "$CONFIG" \
    "${OVERRIDES[@]+"${OVERRIDES[@]}"}" "${KEYS[@]}" 2> "$d/submit.err"
}

# Pending reasons that do not go away by waiting: the job asks for more than the partition allows
# (e.g. more nodes than it has). Without EnforcePartLimits sbatch accepts such a job.
NEVER_REASONS=" PartitionNodeLimit PartitionConfig PartitionTimeLimit BadConstraints AccountNotAllowed
                QOSNotAllowed InvalidAccount InvalidQOS "

# job_end ID: "STATE EXIT" once a job has ended, "" while it is queued or running, "NEVER REASON"
# for a job that cannot start. A job Slurm has already forgotten (past MinJobAge) gives "GONE ?":
# the report then reads the template's slurm-history.tsv in the point's run dir.
job_end() {
  local rec state code reason
  rec=$(scontrol -o show job "$1" 2>/dev/null) || { echo "GONE ?"; return; }
  state=$(sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p' <<<"$rec")
  code=$(sed -n 's/.* ExitCode=\([0-9]*\):\([0-9]*\).*/\1 \2/p' <<<"$rec")
  reason=$(sed -n 's/.* Reason=\([A-Za-z_]*\).*/\1/p' <<<"$rec")
  if [ "$state" = PENDING ] && [[ "$NEVER_REASONS" == *" $reason "* ]]; then echo "NEVER $reason"; return; fi
  case "$state" in
    PENDING|RUNNING|CONFIGURING|COMPLETING|REQUEUED|REQUEUE_HOLD|REQUEUE_FED|RESIZING|SUSPENDED|STAGE_OUT|SIGNALING) echo "" ;;
    *) set -- $code
       # ExitCode=0:SIG: the batch script was killed by signal SIG.
       if [ "${2:-0}" -ne 0 ]; then echo "$state $((128 + $2))"; else echo "$state ${1:-?}"; fi ;;
  esac
}

# ---- the sweep ----------------------------------------------------------------------------------
write_sweep_info() {
  local f="$OUT/sweep.info"
  {
    echo "format=longvq-scaling/1"
    echo "config=$CONFIG"
    echo "overrides=${OVERRIDES[*]+"${OVERRIDES[*]}"}"
    echo "mode=$MODE"
    echo "batch_per_rank=$BPR"
    echo "global_batch=$GB"
    echo "steps=$STEPS"
    echo "warmup=$WARMUP"
    echo "launcher=$LAUNCHER"
    echo "cores_per_node=$CORES"
    echo "points=${LABELS[*]}"
    echo "host=$(hostname -s)"
    echo "date=$(date -Iseconds)"
    echo "commit=$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)"
    echo "binary=$LONGVQ"
    echo "command=$CMDLINE"
  } > "$f"
}

describe() { # i: how a point runs, for the progress lines
  local i=$1 s
  s="${P_NODES[$1]} node(s) x ${P_RPN[$1]} rank(s) x ${P_THREADS[$1]} thread(s), global batch $(point_batch "$1")"
  oversubscribed "$i" && s+=", oversubscribed ($((P_RPN[$i] * P_THREADS[$i])) > $CORES cores per node)"
  echo "$s"
}

sweep_local() {
  local i d rc t0
  for i in "${!LABELS[@]}"; do
    d="$OUT/${LABELS[$i]}"; mkdir -p "$d"; write_point_info "$i" "$d"
    say "point ${LABELS[$i]}: $(describe "$i")"
    t0=$SECONDS
    run_local "$i" "$d"; rc=$?
    record exit_code "$rc" "$d"; record elapsed_s $((SECONDS - t0)) "$d"
    [ $rc -eq 0 ] || say "point ${LABELS[$i]}: exit code $rc (the report gives its first error line; log: $d/train.err)"
  done
}

JOBS=()  # job id per point ("" if its submission failed)
sweep_slurm() {
  local i d id left e
  for i in "${!LABELS[@]}"; do
    d="$(cd "$OUT" && pwd)/${LABELS[$i]}"; mkdir -p "$d"; write_point_info "$i" "$d"
    if id=$(submit_slurm "$i" "$d"); then
      JOBS+=("$id"); record job_id "$id" "$d"
      say "point ${LABELS[$i]}: job $id: $(describe "$i")"
    else
      # e.g. sbatch refuses the request (more nodes than the partition has): the point failed.
      JOBS+=(""); record exit_code 1 "$d"; record error "not submitted: $(tail -n 1 "$d/submit.err")" "$d"
      say "point ${LABELS[$i]}: not submitted: $(tail -n 1 "$d/submit.err")"
    fi
  done
  if [ "$NO_WAIT" = 1 ]; then
    say "submitted; when the jobs have ended: $PYTHON $REPORT $OUT"
    exit 0
  fi
  say "waiting for ${#JOBS[@]} job(s) (Ctrl-C leaves them queued; collect later with $REPORT $OUT)"
  while :; do
    left=0
    for i in "${!JOBS[@]}"; do
      id=${JOBS[$i]}; [ -n "$id" ] || continue
      d="$OUT/${LABELS[$i]}"
      e=$(job_end "$id")
      if [ -z "$e" ]; then left=$((left + 1)); continue; fi
      set -- $e
      if [ "$1" = NEVER ]; then # ours, and it would wait for ever
        scancel "$id" 2>/dev/null
        record exit_code 1 "$d"
        record error "Slurm cannot start job $id: it stays pending with reason $2 (more than the partition allows?); cancelled" "$d"
        say "point ${LABELS[$i]}: job $id cannot start (pending, reason $2): cancelled"
        JOBS[$i]=""; continue
      fi
      [ "$2" != "?" ] && record exit_code "$2" "$d"
      record slurm_state "$1" "$d"
      [ "$1" = TIMEOUT ] && record timed_out 1 "$d"
      say "point ${LABELS[$i]}: job $id ended: $1, exit code $2"
      JOBS[$i]=""
    done
    [ $left -eq 0 ] && break
    sleep 2
  done
}

report() {
  local args=("$OUT")
  [ "$STRICT" = 1 ] && args+=(--strict)
  "$PYTHON" "$REPORT" "${args[@]}"
}

on_interrupt() {
  trap - INT TERM
  echo "scaling.sh: interrupted" >&2
  [ -n "$CHILD" ] && kill -TERM "$CHILD" 2>/dev/null && wait "$CHILD" 2>/dev/null
  if [ "$LAUNCHER" = slurm ]; then
    echo "scaling.sh: the submitted jobs stay queued; collect them later with $PYTHON $REPORT $OUT" >&2
  fi
  report >&2
  exit 130
}

main() {
  CMDLINE="launch/scaling.sh $(printf '%q ' "$@")"
  parse_args "$@"
  check_args
  # MPI as root, the ring allreduce, waiting ranks that yield the core.
  . "$HERE/env.sh"
  check_env
  mkdir -p "$OUT" || fatal "cannot create --out '$OUT'"
  write_sweep_info
  say "$MODE scaling of $CONFIG: ${#LABELS[@]} point(s), $WARMUP warm-up + $STEPS timed steps each," \
      "$LAUNCHER, $CORES cores per node, results in $OUT"
  trap on_interrupt INT TERM
  if [ "$LAUNCHER" = slurm ]; then sweep_slurm; else sweep_local; fi
  trap - INT TERM
  report
  case $? in
    0) exit 0 ;;
    4) exit 4 ;;
    *) fatal "the report could not be written (the message above)" ;;
  esac
}

main "$@"
