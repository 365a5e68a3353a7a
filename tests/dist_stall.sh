#!/usr/bin/env bash
# Stall watchdog (trainer/base/watchdog.c): a rank stopped mid-training (SIGSTOP: what a hung file
# system, a swapping node or a scheduler's stop look like to the others) ends the job with exit 1
# within dist.timeout_s plus a small margin, with a message naming the stopped rank and the phase;
# the ranks left waiting sleep instead of spinning. Cases: rank 1 of 2, rank 0 of 2, rank 2 of 4
# stopped from outside mid-training; a rank stopping itself as it enters a checkpoint and an
# evaluation (the others are caught in those phases' collectives).
set -u
. "$SRC/tests/script_lib.sh"
rm -rf "$WORK" && mkdir -p "$WORK" && cd "$WORK"
MPI="$MPIRUN --oversubscribe --bind-to none -x OMP_NUM_THREADS=1"
tiny_listops lo.h5
# Only the step's reduction communicates (no eval, checkpoints or replica checks mid-run): the
# waiting ranks must be found in "step N: gradient reduction".
CFG="$SRC/configs/tiny.yaml data.train=lo.h5 data.seq_len=64 train.batch_size=8 train.steps=10000000
     train.eval_every=0 checkpoint.every=0 checkpoint.save_initial=false dist.check_every=0 log.every=100000"
TIMEOUT=5
# Margin: the watchdog looks every 0.5 s (WATCHDOG_PERIOD_S), then waits 3 s for the other ranks'
# answers (WATCHDOG_ANSWER_S; a stopped rank never answers), then mpirun kills the job (~1 s
# measured); the waiting starts at most one tiny step (milliseconds) after the stop. Expected
# TIMEOUT + ~4.5 s; 6 s more absorbs a loaded 2-core machine. It must not end before TIMEOUT.
MAX_S=$((TIMEOUT + 3 + 6))
HZ=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; } # utime + stime of the whole process
# runnable PID: of 40 looks over 2 s, in how many was a thread of PID running or ready to run (state
# R)? A spinning wait is runnable all the time, even when a busy machine gives it little CPU time; a
# sleeping one is awake for microseconds per millisecond.
runnable() {
  local n=0
  for i in $(seq 1 40); do
    grep -q '^[0-9]* ([^)]*) R' /proc/$1/task/*/stat 2>/dev/null && n=$((n + 1))
    sleep 0.05
  done
  echo $n
}

# stall NAME NP VICTIM WAITER HOW: trains on NP ranks, stops rank VICTIM, measures the CPU time of
# rank WAITER over 3 s of waiting, and waits for the job's end. HOW=self: the victim stops itself
# (raise(SIGSTOP), LONGVQ_TEST_STOP_AT) as it enters step 200, before that step's collectives;
# HOW=kill: `kill -STOP` from outside at any moment of training (it may land inside a collective's
# data exchange, after every rank arrived: the others then spin in Open MPI's blocking algorithm
# until the watchdog ends the job, so only the end, not the CPU, is judged).
stall() {
  local name=$1 np=$2 victim=$3 waiter=$4 how=$5 at=""
  [ "$how" = self ] && at="step 200:$victim"
  LONGVQ_TEST_STOP_AT="$at" $MPI -x LONGVQ_TEST_STOP_AT -np "$np" "$LONGVQ" train $CFG run.dir="$name" \
    dist.timeout_s=$TIMEOUT > "$name.log" 2> "$name.err" &
  local mp=$!
  # rank -> pid from the start-up log's per-rank lines ("rank host pid cpus threads bind"), each
  # checked to be a rank this mpirun started
  local vpid="" wpid="" t0
  for i in $(seq 1 150); do
    vpid=$(awk -v r="$victim" '$1 == r && NF == 6 {print $3}' "$name.log")
    wpid=$(awk -v r="$waiter" '$1 == r && NF == 6 {print $3}' "$name.log")
    [ -n "$vpid" ] && [ -n "$wpid" ] && break
    sleep 0.2
  done
  local pids=" $(rank_pids $mp | tr '\n' ' ')"
  check "$name: pids of ranks $victim and $waiter found ($vpid, $wpid among$pids)" \
    '[ -n "$vpid" ] && [ -n "$wpid" ] && [[ "$pids" == *" $vpid "* ]] && [[ "$pids" == *" $wpid "* ]]'
  if [ "$how" = kill ]; then
    for i in $(seq 1 150); do grep -q '^step' "$name.log" 2>/dev/null && break; sleep 0.2; done
    sleep 1 # well into training
    t0=$(date +%s.%N)
    kill -STOP "$vpid"
  else # the moment it stopped: its state turns T (looked at every 20 ms)
    for i in $(seq 1 1500); do [ "$(awk '{print $3}' /proc/$vpid/stat 2>/dev/null)" = T ] && break; sleep 0.02; done
    t0=$(date +%s.%N)
  fi
  # the guard's sleep is ended with it (a leftover sleep would hold ctest's output pipe)
  ( trap 'kill $! 2>/dev/null; exit 0' TERM; sleep 60 & wait $!; kill -9 $mp $(rank_pids $mp) 2>/dev/null ) & local guard=$!
  sleep 1 # the others are now waiting
  local c0=$(cpu_ticks "$wpid") w0=$(date +%s.%N)
  sleep 3
  local c1=$(cpu_ticks "$wpid") w1=$(date +%s.%N)
  local run=$(runnable "$wpid")
  wait $mp; local rc=$?
  local t1=$(date +%s.%N)
  kill $guard 2>/dev/null
  kill -9 "$vpid" 2>/dev/null # (mpirun has killed it; never leave a stopped process behind)
  local el=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", b - a}')
  local cpu=$(awk -v c="$((c1 - c0))" -v hz="$HZ" -v a="$w0" -v b="$w1" 'BEGIN {printf "%.1f", 100 * c / hz / (b - a)}')
  echo "$name: rank $victim of $np stopped ($how): job ended after $el s with exit $rc; waiting rank $waiter used $cpu% of a core, runnable in $run of 40 looks"
  check "$name: exit 1 (rc $rc)" '[ $rc -eq 1 ]'
  check "$name: ended within $TIMEOUT..$MAX_S s of the stop ($el s)" \
    "awk -v e=$el 'BEGIN {exit !(e >= $TIMEOUT && e <= $MAX_S)}'"
  # A sleeping wait tests every 1 ms (measured: 1-2% of a core); a spinning one takes a whole core
  # on a quiet machine (2/3 of one when 3 spinning ranks share 2 cores), but on a busy machine only
  # its share (measured at load 17: 11-34% for the blocking collectives before the watchdog), so the
  # wait is judged by its state too: a spinning rank is runnable in every look (measured 40 of 40);
  # a sleeping one is awake ~1% of the time, though at load 17 a thread woken every millisecond
  # waits in the run queue (measured 8 of 40). Half the looks tells them apart.
  [ "$how" = self ] && check "$name: a waiting rank does not spin ($cpu% of a core < 20%; runnable in $run of 40 looks < 20)" \
    "awk -v c=$cpu 'BEGIN {exit !(c < 20)}' && [ $run -lt 20 ]"
  # Every message names the stopped rank, alone, as not arrived, and the phase.
  local re="^\[rank [0-9]+\] error: step [0-9]+: gradient reduction has not completed after [0-9]+ s: rank $victim did not arrive \(no answer within 3 s: stopped, hung or dead\); .*dist.timeout_s"
  check "$name: a rank says that rank $victim did not arrive in step N's gradient reduction" 'grep -Eq "$re" "$name.err"'
  check "$name: every such message names rank $victim alone" \
    '[ $(grep -c "did not arrive" "$name.err") -ge 1 ] && [ $(grep -c "did not arrive" "$name.err") -eq $(grep -Ec "$re" "$name.err") ]'
  check "$name: no message from the stopped rank" '! grep -q "^\[rank $victim\] error" "$name.err"'
}

stall np2_stop1 2 1 0 self
stall np2_stop0 2 0 1 self
stall np4_stop2 4 2 3 self
stall np2_kill1 2 1 0 kill

# Other phases: rank VICTIM stops itself on entering PHASE (LONGVQ_TEST_STOP_AT, read by
# trainer/base/watchdog.c), so that the others are caught in that phase's first collective.
# stall_at NAME PHASE VICTIM WHAT [key=value ...]: 2 ranks; the message must say "PHASE: WHAT".
stall_at() {
  local name=$1 phase=$2 victim=$3 what=$4; shift 4
  local t0=$(date +%s.%N)
  LONGVQ_TEST_STOP_AT="$phase:$victim" $MPI -x LONGVQ_TEST_STOP_AT -np 2 "$LONGVQ" train $CFG \
    train.steps=20 run.dir="$name" dist.timeout_s=$TIMEOUT "$@" > "$name.log" 2> "$name.err" &
  local mp=$!
  ( trap 'kill $! 2>/dev/null; exit 0' TERM; sleep 60 & wait $!; kill -9 $mp $(rank_pids $mp) 2>/dev/null ) & local guard=$!
  wait $mp; local rc=$?
  local t1=$(date +%s.%N)
  kill $guard 2>/dev/null
  local el=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", b - a}')
  echo "$name: rank $victim stopped entering $phase: job ended $el s after its start with exit $rc"
  check "$name: exit 1 (rc $rc)" '[ $rc -eq 1 ]'
  # (the stop comes a few seconds after the start: start-up and 10 tiny steps)
  check "$name: ended within $((MAX_S + 10)) s of the start ($el s)" "awk -v e=$el 'BEGIN {exit !(e <= $MAX_S + 10)}'"
  check "$name: the message says '$phase: $what' and names rank $victim" \
    'grep -Eq "^\[rank [0-9]+\] error: $phase: $what has not completed after [0-9]+ s: rank $victim did not arrive \(no answer" "$name.err"'
}
stall_at ckpt "checkpoint at step 10" 1 "equality check over ranks" checkpoint.every=10
stall_at eval "evaluation after step 10" 0 "sum over ranks" data.val=lo.h5 train.eval_every=10 train.eval_batches=2

echo "dist_stall: $fail failed"
exit $fail
