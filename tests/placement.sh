#!/usr/bin/env bash
# Threads per rank (train.threads, trainer/placement.c) at 2 ranks: the key wins over
# OMP_NUM_THREADS, 0 leaves OMP_NUM_THREADS; the start-up log says ranks x threads and, per rank,
# host, pid, CPU list and threads; oversubscription is warned about (and only then); --bind-to core
# shows each rank's narrower CPU list, and so does OMP_PROC_BIND (warned: unbound ranks then share
# a CPU); eval applies the key too.
# The thread count is checked independently of what the trainer prints: the threads the kernel
# counts in each running rank (/proc/PID/status) while it trains. libgomp keeps its pool of T-1
# workers alive, so a rank with T OpenMP threads has exactly T-1 more than with 1; a run that
# ignored train.threads would follow OMP_NUM_THREADS instead and get the counts the other way round.
set -u
. "$SRC/tests/script_lib.sh"
rm -rf "$WORK" && mkdir -p "$WORK" && cd "$WORK"
tiny_listops lo.h5
CFG="$SRC/configs/tiny.yaml data.train=lo.h5 data.val=lo.h5 train.eval_every=0 checkpoint.every=0 log.every=1"
# Waiting OpenMP threads sleep instead of spinning: 2 ranks x 2 threads on 2 cores (and a busy
# machine) stay fast enough. It does not change the thread counts.
export OMP_WAIT_POLICY=passive
MPI="$MPIRUN --oversubscribe -x OMP_WAIT_POLICY"
# Run directories on tmpfs: the checkpoints (on USR1, at the end) and their fsyncs are not what this
# tests, and on a busy disk they took 10-17 s each.
RUNS=$(mktemp -d /dev/shm/lv_placement.XXXXXX) || { RUNS=$WORK/runs; mkdir -p "$RUNS"; }
trap 'rm -rf "$RUNS"' EXIT
HOST=$(uname -n)
ALL_CPUS=$(sed -n 's/^Cpus_allowed_list:[[:space:]]*//p' /proc/self/status)
NCPU=$(nproc)

# The per-rank lines of a log: "rank host pid cpus threads bind..."
rank_lines() { awk '$1 ~ /^[0-9]+$/ && $3 ~ /^[0-9]+$/ && $5 ~ /^[0-9]+$/' "$1"; }
# rank_ok LOG RANK CPUS THREADS: rank RANK's line names this host, a live-looking pid, CPUS, THREADS.
rank_ok() { rank_lines "$1" | awk -v r="$2" -v h="$HOST" -v c="$3" -v t="$4" \
  '$1 == r && $2 == h && $3 > 0 && $4 == c && $5 == t { ok = 1 } END { exit !ok }'; }

# live NAME THREADS OMP_ENV: trains at 2 ranks (no binding) until the step loop runs, records the
# kernel's thread count of every rank in NAME.tasks, then stops the job with USR1 (checkpoint, exit 3).
live() {
  local name=$1 thr=$2 env=$3 i p
  OMP_NUM_THREADS=$env $MPI --bind-to none -x OMP_NUM_THREADS -np 2 "$LONGVQ" train $CFG train.steps=100000 \
    train.threads="$thr" run.dir="$RUNS/$name" > "$name.log" 2> "$name.err" &
  local mp=$!
  for i in $(seq 1 300); do grep -q '^step' "$name.log" 2>/dev/null && break; sleep 0.1; done
  : > "$name.tasks"; : > "$name.comm"
  for p in $(rank_lines "$name.log" | awk '{ print $3 }'); do
    # every thread but rank 0's run-lock heartbeat (trainer/runlock.c names it lv-runlock)
    cat /proc/$p/task/*/comm 2>/dev/null | grep -cvx lv-runlock >> "$name.tasks"
    cat "/proc/$p/comm" >> "$name.comm" 2>/dev/null
  done
  kill -USR1 "$mp" 2>/dev/null
  wait "$mp"; echo $? > "$name.rc"
}

live t1 1 2 # the key (1) against OMP_NUM_THREADS=2
live t2 2 1 # the key (2) against OMP_NUM_THREADS=1
live e2 0 2 # key 0: OMP_NUM_THREADS=2 stays
live e1 0 1 # key 0: OMP_NUM_THREADS=1 stays
for n in t1 t2 e2 e1; do
  check "$n: ran, stopped on USR1 (exit 3)" '[ "$(cat $n.rc)" = 3 ] && grep -q "^step" $n.log'
  check "$n: /proc thread counts of both ranks read" '[ $(wc -l < $n.tasks) -eq 2 ]'
done
check "t1: 2 ranks x 1 thread, OMP_NUM_THREADS overridden" \
  'grep -q "^placement: 2 ranks x 1 thread (train.threads=1; OMP_NUM_THREADS=2 overridden), 1 host" t1.log'
check "t2: 2 ranks x 2 threads, OMP_NUM_THREADS overridden" \
  'grep -q "^placement: 2 ranks x 2 threads (train.threads=2; OMP_NUM_THREADS=1 overridden), 1 host" t2.log'
check "e2: key 0 leaves OMP_NUM_THREADS=2" 'grep -q "^placement: 2 ranks x 2 threads (train.threads=0: OMP_NUM_THREADS=2)" e2.log'
check "e1: key 0 leaves OMP_NUM_THREADS=1" 'grep -q "^placement: 2 ranks x 1 thread (train.threads=0: OMP_NUM_THREADS=1)" e1.log'
both_ok() { rank_ok "$1" 0 "$2" "$3" && rank_ok "$1" 1 "$2" "$3" && [ $(rank_lines "$1" | wc -l) -eq 2 ]; }
check "one line per rank: host, pid, all CPUs, threads" \
  'both_ok t1.log "$ALL_CPUS" 1 && both_ok t2.log "$ALL_CPUS" 2 && both_ok e2.log "$ALL_CPUS" 2 && both_ok e1.log "$ALL_CPUS" 1'
check "the printed pids are the ranks: 2 distinct running longvq processes" \
  '[ $(rank_lines t1.log | awk "{ print \$3 }" | sort -u | wc -l) -eq 2 ] && [ "$(sort -u t1.comm)" = longvq ] &&
   [ $(wc -l < t1.comm) -eq 2 ]'
# Independent: kernel thread counts. Every rank of a run alike; 2 OpenMP threads = 1 thread more.
same() { [ "$(sort -u "$1.tasks" | wc -l)" -eq 1 ]; }
base=$(head -1 t1.tasks)
check "kernel: both ranks of each run have the same thread count" 'same t1 && same t2 && same e2 && same e1'
check "kernel: train.threads=2 runs one OpenMP thread more than train.threads=1 ($(head -1 t2.tasks) vs $base)" \
  '[ "$(head -1 t2.tasks)" -eq $((base + 1)) ]'
check "kernel: key 0 follows OMP_NUM_THREADS (2: $(head -1 e2.tasks), 1: $(head -1 e1.tasks))" \
  '[ "$(head -1 e2.tasks)" -eq $((base + 1)) ] && [ "$(head -1 e1.tasks)" -eq "$base" ]'
# Oversubscription: 2 x 2 threads on a 2-CPU machine is warned about (rank 0, once); 2 x 1 is not.
if [ "$NCPU" -eq 2 ]; then
  check "2 x 2 on 2 CPUs: oversubscription warned once by rank 0" \
    '[ $(grep -c "warning: oversubscribed" t2.err) -eq 1 ] &&
     grep -q "^\[rank 0\] warning: oversubscribed: host $HOST runs 2 ranks x 2 threads = 4 threads on 2 CPUs ($ALL_CPUS);.*measure function, not speed" t2.err'
  check "2 x 1 on 2 CPUs: no warning" '! grep -q oversubscribed t1.err && ! grep -q oversubscribed e1.err'
fi

# eval shares the config and applies the key the same way.
OMP_NUM_THREADS=2 $MPI --bind-to none -x OMP_NUM_THREADS -np 2 "$LONGVQ" eval $CFG --model "$RUNS/t1/model_step0.h5" \
  train.threads=1 > eval.log 2>&1; rc=$?
check "eval: 2 ranks x 1 thread" '[ $rc -eq 0 ] && grep -q "^placement: 2 ranks x 1 thread (train.threads=1;" eval.log &&
  rank_ok eval.log 0 "$ALL_CPUS" 1 && grep -q "^eval " eval.log'

# Bound ranks: --bind-to core gives each rank one core; the log shows the narrower lists. With 2
# threads on one core each, the ranks are oversubscribed too.
if [ "$NCPU" -ge 2 ]; then
  $MPI --bind-to core -np 2 "$LONGVQ" train $CFG train.steps=2 train.warmup=1 train.threads=1 run.dir="$RUNS/core1" \
    > core1.log 2> core1.err; rc=$?
  check "bind-to core: 2 ranks x 1 thread, no warning" '[ $rc -eq 0 ] && grep -q "^placement: 2 ranks x 1 thread" core1.log && ! grep -q oversubscribed core1.err'
  check "bind-to core: each rank lists one CPU, different ones, inside the machine's" \
    'rank_lines core1.log > core1.ranks; [ $(wc -l < core1.ranks) -eq 2 ] &&
     [ $(awk "\$4 ~ /^[0-9]+\$/" core1.ranks | wc -l) -eq 2 ] && [ $(awk "{ print \$4 }" core1.ranks | sort -u | wc -l) -eq 2 ] &&
     [ "$(awk "{ print \$4 }" core1.ranks | head -1)" != "$ALL_CPUS" ]'
  $MPI --bind-to core -np 2 "$LONGVQ" train $CFG train.steps=2 train.warmup=1 train.threads=2 run.dir="$RUNS/core2" \
    > core2.log 2> core2.err; rc=$?
  check "bind-to core, 2 threads: each rank warned as 2 threads on 1 CPU" \
    '[ $rc -eq 0 ] && grep -q "warning: oversubscribed: .*rank 0 runs 2 threads on 1 CPU" core2.err'
  # OpenMP binding without rank binding: libgomp pins each rank's thread to its first place, the
  # same CPU for every rank; the log shows it and warns.
  $MPI --bind-to none -x OMP_PROC_BIND=close -x OMP_PLACES=cores -np 2 "$LONGVQ" train $CFG train.steps=2 train.warmup=1 \
    train.threads=1 run.dir="$RUNS/ompbind" > ompbind.log 2> ompbind.err; rc=$?
  check "OMP_PROC_BIND, unbound ranks: both on one CPU, warned" '[ $rc -eq 0 ] &&
    [ $(rank_lines ompbind.log | awk "\$4 ~ /^[0-9]+\$/ && \$6 == \"close\"" | wc -l) -eq 2 ] &&
    grep -q "warning: oversubscribed: host $HOST runs 2 ranks x 1 thread = 2 threads on 1 CPU .*pinned by OMP_PROC_BIND share CPUs" ompbind.err'
fi

[ $fail -eq 0 ] && echo "placement: all checks passed" || echo "placement: $fail check(s) FAILED"
exit $fail
