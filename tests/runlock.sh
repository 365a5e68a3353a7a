#!/usr/bin/env bash
# One run per run directory (trainer/runlock.h, docs/slurm.md "One run per run directory"). A second
# training on a run.dir in use is refused with exit 2, once, naming the holder, and the first one
# finishes with every metric line; a lock left by a killed run (dead pid on this host), one whose
# heartbeat is older than run.lock_stale_s, or one of an earlier run of the same Slurm job is taken
# over with a warning; a fresh lock of another host is refused; the lock goes at the normal end, on
# the requeue exit (3) and on errors; a run that lost its lock to another stops.
set -u
. "$SRC/tests/script_lib.sh"
rm -rf "$WORK" && mkdir -p "$WORK" && cd "$WORK"
MPI="$MPIRUN --oversubscribe --bind-to none -x OMP_NUM_THREADS=1"
tiny_listops lo.h5
CFG="$SRC/configs/tiny.yaml data.train=lo.h5 data.val=lo.h5 train.eval_every=0 log.every=1 checkpoint.resume=auto"
wait_for() { for i in $(seq 1 300); do eval "$1" && return 0; sleep 0.1; done; return 1; }
field() { sed -n "s/^$1: *//p" "$2" | head -n 1; } # field NAME LOCKFILE
host=$(hostname)
# hand_lock DIR HOST HEARTBEAT [JOB RESTART]: a lock record written by hand, as another run's would be.
hand_lock() {
  mkdir -p "$1"
  printf 'longvq run lock\nhost: %s\npid: 4242\nslurm_job: %s\nslurm_restart: %s\nstarted: %s\nheartbeat: %s\n' \
    "$2" "${4:--}" "${5:-0}" "$3" "$3" > "$1/.lock"
}

# 1. Two trainings on one run.dir at once: the second is refused, the first goes on intact. The first
#    runs until this test stops it (SIGUSR1 to its ranks: checkpoint, exit 3), so the second surely
#    meets it running, however fast the machine.
$MPI -np 2 "$LONGVQ" train $CFG run.dir=a train.steps=1000000 checkpoint.every=100 > a1.log 2>&1 &
mp=$!
wait_for 'grep -q "\"step\": 10," a/metrics.jsonl 2>/dev/null'
holder=$(field pid a/.lock)
check "the lock names rank 0 of the running job (pid $holder, host $host)" \
  'rank_pids $mp | grep -qx "$holder" && [ "$(field host a/.lock)" = "$host" ]'
$MPI -np 2 "$LONGVQ" train $CFG run.dir=a train.steps=1000000 > a2.log 2>&1; rc=$?
check "second run: exit 2 naming the holder (host, pid)" \
  '[ $rc -eq 2 ] && grep -q "run.dir: a is in use by another training run: host $host, pid $holder, " a2.log'
check "... said once, by rank 0" '[ "$(grep -c "is in use" a2.log)" -eq 1 ] && ! grep -q "^\[rank" a2.log'
check "... while the first is still running" 'kill -0 $mp 2>/dev/null'
kill -USR1 $(rank_pids $mp); wait $mp; rc=$?
S=$(grep -o "^{\"step\": [0-9]*" a/metrics.jsonl | tail -1 | cut -d" " -f2)
check "first run stops on the signal (exit 3)" '[ $rc -eq 3 ]'
check "... with its $S metric lines, each step once" \
  '[ "$(grep -o "^{\"step\": [0-9]*" a/metrics.jsonl | cut -d" " -f2 | tr "\n" " ")" = "$(seq -s " " 1 $S) " ]'
check "... and removes the lock at its end" '[ ! -e a/.lock ] && [ ! -e a/.lock.takeover ]'

# 2. Errors release it: rank 0 alone cannot open its metrics file (DIE_INPUT: MPI_Abort, the abort
#    hook), every rank finds the batch larger than the data (DIE_INPUT_ALL: exit()).
$MPI -np 2 "$LONGVQ" train $CFG run.dir=e log.metrics=no/such/dir/m.jsonl > e1.log 2>&1; rc=$?
check "an error on rank 0 alone (exit $rc) removes the lock" '[ $rc -eq 2 ] && grep -q "cannot open no/such" e1.log && [ -d e ] && [ ! -e e/.lock ]'
$MPI -np 2 "$LONGVQ" train $CFG run.dir=e train.batch_size=4096 > e2.log 2>&1; rc=$?
check "an error of every rank (exit $rc) removes the lock" '[ $rc -eq 2 ] && grep -q "larger than the 96" e2.log && [ ! -e e/.lock ]'

# 3. The requeue exit (a stop signal: checkpoint, exit 3) removes the lock.
LONGVQ_TEST_SIGNAL_AT=6:1 $MPI -x LONGVQ_TEST_SIGNAL_AT -np 2 "$LONGVQ" train $CFG run.dir=q train.steps=100 > q.log 2>&1; rc=$?
check "requeue exit 3 removes the lock" '[ $rc -eq 3 ] && [ -f q/ckpt_00000006.h5 ] && [ ! -e q/.lock ]'

# 4. kill -9 of the job: the lock stays; the next run sees its pid gone on this host, takes over
#    with a warning and resumes.
$MPI -np 2 "$LONGVQ" train $CFG run.dir=k train.steps=100000 checkpoint.every=5 > k1.log 2>&1 &
mp=$!
wait_for '[ -f k/.lock ] && grep -q "\"step\": 12," k/metrics.jsonl 2>/dev/null'
dead=$(field pid k/.lock)
kill -9 $(rank_pids $mp); wait $mp
check "kill -9 leaves the lock" '[ -f k/.lock ]'
# The newest complete checkpoint, as resume=auto picks it (not k/latest: the kill can land between a
# checkpoint's rename and the update of latest).
last=$(ls k | sed -nE 's/^ckpt_0*([0-9]+)\.h5$/\1/p' | sort -n | tail -n 1)
$MPI -np 2 "$LONGVQ" train $CFG run.dir=k train.steps=$((last + 3)) checkpoint.every=5 > k2.log 2>&1; rc=$?
check "... taken over at once (pid $dead gone) with a warning" \
  'grep -q "warning: run.dir: took over the lock k/.lock of host $host, pid $dead, .*its process no longer exists" k2.log'
check "... and the run resumes (step $last) and finishes" \
  '[ $rc -eq 0 ] && grep -q "resumed from k/ckpt_$(printf %08d $last).h5" k2.log && [ ! -e k/.lock ]'

# 5. Another host's lock: refused while its heartbeat is fresh (naming host, pid and Slurm job),
#    taken over once it is older than run.lock_stale_s.
hand_lock f other-node.example "$(date +%s)" 7777
$MPI -np 2 "$LONGVQ" train $CFG run.dir=f train.steps=4 run.lock_stale_s=3 > f1.log 2>&1; rc=$?
check "fresh foreign lock: exit 2 naming host, pid and Slurm job" \
  '[ $rc -eq 2 ] && grep -q "in use by another training run: host other-node.example, pid 4242 (Slurm job 7777, restart 0)" f1.log'
check "... and nothing written into run.dir" '[ "$(ls -A f)" = ".lock" ]'
sleep 3.5
$MPI -np 2 "$LONGVQ" train $CFG run.dir=f train.steps=4 run.lock_stale_s=3 > f2.log 2>&1; rc=$?
check "... after run.lock_stale_s without heartbeat: taken over with a warning" \
  '[ $rc -eq 0 ] && grep -q "warning: run.dir: took over the lock f/.lock of host other-node.example, pid 4242 .*heartbeat is older than run.lock_stale_s (3 s)" f2.log && [ ! -e f/.lock ]'

# 6. A requeued Slurm job takes over its own earlier run's lock at once (same SLURM_JOB_ID, higher
#    SLURM_RESTART_COUNT); another job's fresh lock is refused.
hand_lock s other-node.example "$(date +%s)" 5555 0
$MPI -x SLURM_JOB_ID=5556 -x SLURM_RESTART_COUNT=1 -np 2 "$LONGVQ" train $CFG run.dir=s train.steps=4 > s1.log 2>&1; rc=$?
check "another Slurm job's fresh lock: refused" '[ $rc -eq 2 ] && grep -q "Slurm job 5555" s1.log'
$MPI -x SLURM_JOB_ID=5555 -x SLURM_RESTART_COUNT=1 -np 2 "$LONGVQ" train $CFG run.dir=s train.steps=4 > s2.log 2>&1; rc=$?
check "the same job, requeued: taken over at once" \
  '[ $rc -eq 0 ] && grep -q "took over the lock s/.lock of host other-node.example, pid 4242 (Slurm job 5555, restart 0).*earlier run of this Slurm job" s2.log'

# 7. A run whose lock was taken over (it looked dead: suspended, cut off) stops at its next heartbeat
#    (exit 1) and leaves the other run's lock alone.
$MPI -np 2 "$LONGVQ" train $CFG run.dir=l train.steps=$S run.lock_stale_s=2 > l.log 2>&1 &
mp=$!
wait_for 'grep -q "\"step\": 10," l/metrics.jsonl 2>/dev/null'
hand_lock l other-node.example "$(date +%s)" 8888
wait $mp; rc=$?
check "lock taken over under a live run: it stops (exit 1) naming the new holder" \
  '[ $rc -eq 1 ] && grep -q "error: run.dir: lost the lock l/.lock, which now names host other-node.example, pid 4242" l.log'
check "... and leaves the new holder's lock in place" '[ "$(field slurm_job l/.lock)" = 8888 ]'

echo "runlock: $fail failed"
exit $fail
