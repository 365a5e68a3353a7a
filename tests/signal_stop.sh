#!/usr/bin/env bash
# Stop signals under mpirun (issue 13; docs/distributed.md "Stopping a run"), with a checkpoint
# write slowed to seconds (test hook LONGVQ_TEST_CKPT_WRITE_S, io/checkpoint_write.c):
#   1. `kill -TERM` of launch/run.sh (twice): exit 3, a complete checkpoint, and the resumed run
#      ends bitwise identical to an uninterrupted one (parameters and metric lines);
#   2. Ctrl-C on a terminal (a pseudo-terminal) running launch/run.sh: the same;
#   3. a second Ctrl-C during that checkpoint: the job ends at once (exit 130), leaving only a .tmp;
#   4. one process without mpirun, Ctrl-C: exit 3 and a complete checkpoint;
#   5. plain mpirun, `kill -TERM <mpirun>`: Open MPI's own abort, exit 1 whatever the ranks do (the
#      documented reason for launch/run.sh; if this changes, docs/distributed.md must too).
# Prints the checkpoint write times and the seconds from each signal to the job's end.
set -u
. "$SRC/tests/script_lib.sh"
rm -rf "$WORK" && mkdir -p "$WORK" && cd "$WORK" || exit 1
WRAP="$SRC/launch/run.sh $MPIRUN"
PTY="/usr/bin/python3 $SRC/tests/pty_ctrl_c.py"
SLOW=2 # seconds added to every stop checkpoint's write
MPIARGS=(--oversubscribe --bind-to none -x OMP_NUM_THREADS=1 -x LONGVQ_TEST_CKPT_WRITE_S -np 2)
tiny_listops lo.h5
# 30-50 ms steps on 2 ranks: a signal sent at step 5 must land before the end; 100 steps leave seconds
# of margin on a quiet machine (40 left about one) and keep the runs short.
CFG="$SRC/configs/tiny.yaml data.train=lo.h5 data.val=lo.h5 data.seq_len=64 train.steps=100 train.eval_every=0
     model.d_model=64 model.z_dim=32 model.v_dim=64 model.n_layers=4 train.batch_size=32 dist.bucket_mb=25
     checkpoint.every=0 log.every=1 log.progress=off dist.check_every=1"
wait_for() { for _ in $(seq 1 600); do eval "$1" && return 0; sleep 0.05; done; return 1; }
now() { date +%s.%N; }
since() { echo "$(now) - $1" | bc; }
# The stop checkpoint of run dir D: exactly one, complete (inspect verifies every checksum), no .tmp.
stop_ckpt() { ls "$1"/ckpt_*.h5 2>/dev/null; }
complete() {
  local c
  c=$(stop_ckpt "$1")
  [ "$(echo "$c" | wc -w)" -eq 1 ] && ! ls "$1"/*.tmp > /dev/null 2>&1 &&
    "$LONGVQ" inspect "$c" > "$1.inspect" 2>&1 && grep -q "^checksums *OK" "$1.inspect"
}
write_s() { sed -n 's/.*saved (step [0-9]*, \([0-9.]*\) s).*/\1/p' "$1" | tail -n 1; }
# resume D: continue D to the end with the wrapper; the result must equal the reference bitwise.
resume_same() {
  $WRAP "${MPIARGS[@]}" "$LONGVQ" train $CFG run.dir="$1" checkpoint.resume=auto > "$1.resume.log" 2>&1 &&
    grep -q "resumed from .*ckpt_" "$1.resume.log" && same_model ref/model_final.h5 "$1/model_final.h5" &&
    diff <(loss_lines ref/metrics.jsonl) <(loss_lines "$1/metrics.jsonl") > /dev/null
}

# Reference: straight through.
$WRAP "${MPIARGS[@]}" "$LONGVQ" train $CFG run.dir=ref > ref.log 2>&1
check "reference run" '[ $? -eq 0 ] && [ -f ref/model_final.h5 ]'

# 1. kill -TERM of the launcher, a second TERM during the write.
LONGVQ_TEST_CKPT_WRITE_S=$SLOW $WRAP "${MPIARGS[@]}" "$LONGVQ" train $CFG run.dir=term > term.log 2>&1 &
wp=$!
wait_for 'grep -q "\"step\": 5," term/metrics.jsonl 2>/dev/null'
t0=$(now); kill -TERM $wp
wait_for 'grep -q "stop requested" term.log'; kill -TERM $wp
wait $wp; rc=$?; dt=$(since "$t0")
echo "     1. TERM to launch/run.sh: exit $rc, ${dt} s from the signal to the end; checkpoint write $(write_s term.log) s"
check "1. TERM (twice) to launch/run.sh: exit 3" '[ $rc -eq 3 ]'
check "1. ... the stop checkpoint is complete (inspect: checksums OK, no .tmp)" 'complete term'
check "1. ... its write took >= ${SLOW} s" '[ "$(echo "$(write_s term.log) >= $SLOW" | bc)" = 1 ]'
check "1. ... resumed, bitwise identical to the uninterrupted run" 'resume_same term'

# 2. Ctrl-C on a terminal.
LONGVQ_TEST_CKPT_WRITE_S=$SLOW $PTY --log int.log --when 'int/metrics.jsonl:"step": 5,' -- \
  $WRAP "${MPIARGS[@]}" "$LONGVQ" train $CFG run.dir=int > int.pty 2>&1
rc=$(sed -n 's/^exit //p' int.pty)
echo "     2. Ctrl-C: exit $rc, $(sed -n 's/^ctrl_c_to_end //p' int.pty) s from Ctrl-C to the end; checkpoint write $(write_s int.log) s"
check "2. Ctrl-C on launch/run.sh: exit 3" '[ "$rc" = 3 ]'
check "2. ... the stop checkpoint is complete" 'complete int'
check "2. ... resumed, bitwise identical to the uninterrupted run" 'resume_same int'

# 3. Ctrl-C twice: the second during the (10 s) checkpoint write ends the job at once (in about twice
#    odls_base_sigkill_timeout, launch/env.sh: ~2 s).
LONGVQ_TEST_CKPT_WRITE_S=10 $PTY --log int2.log --when 'int2/metrics.jsonl:"step": 5,' --again "stop requested" -- \
  $WRAP "${MPIARGS[@]}" "$LONGVQ" train $CFG run.dir=int2 > int2.pty 2>&1
rc=$(sed -n 's/^exit //p' int2.pty); dt=$(sed -n 's/^ctrl_c_to_end //p' int2.pty)
echo "     3. Ctrl-C twice: exit $rc, $dt s from the first Ctrl-C to the end"
check "3. second Ctrl-C: exit 130 within 8 s, before the 10 s write could finish" \
  '[ "$rc" = 130 ] && [ "$(echo "$dt < 8" | bc)" = 1 ]'
check "3. ... no checkpoint completed (at most a .tmp, never picked), no rank left" \
  '[ -z "$(stop_ckpt int2)" ] && ! pgrep -f "run.dir=int2" > /dev/null'

# 4. One process, no mpirun: Ctrl-C reaches the trainer itself.
LONGVQ_TEST_CKPT_WRITE_S=$SLOW $PTY --log one.log --when 'one/metrics.jsonl:"step": 5,' -- \
  "$LONGVQ" train $CFG run.dir=one > one.pty 2>&1
rc=$(sed -n 's/^exit //p' one.pty)
echo "     4. Ctrl-C, one process: exit $rc, $(sed -n 's/^ctrl_c_to_end //p' one.pty) s; checkpoint write $(write_s one.log) s"
check "4. Ctrl-C on one process: exit 3 and a complete checkpoint" '[ "$rc" = 3 ] && complete one'

# 5. Plain mpirun (quick checkpoints): Open MPI aborts the job on TERM and exits 1.
$MPIRUN "${MPIARGS[@]}" "$LONGVQ" train $CFG train.steps=100000 run.dir=plain > plain.log 2>&1 &
mp=$!
wait_for 'grep -q "\"step\": 5," plain/metrics.jsonl 2>/dev/null'
t0=$(now); kill -TERM $mp; wait $mp; rc=$?; dt=$(since "$t0")
echo "     5. TERM to plain mpirun: exit $rc, ${dt} s to the end"
check "5. TERM to plain mpirun: exit 1 (Open MPI's abort; use launch/run.sh)" '[ $rc -eq 1 ]'

echo "signal_stop: $fail failed"
exit $fail
