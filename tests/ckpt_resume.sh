#!/usr/bin/env bash
# Exact resume (issue: checkpoints). At the same world size, a run stopped by a signal or killed
# after a checkpoint and resumed gives bitwise identical parameters and identical metric lines to
# the run straight through; at another world size (4 -> 2, 4 -> 1, ZeRO-1 on/off) the run continues
# with the same sample order and its losses match within the multi-rank tolerance. A shape-changing
# config change is refused; a corrupt newest checkpoint falls back to the previous one.
set -u
. "$SRC/tests/script_lib.sh"
rm -rf "$WORK" && mkdir -p "$WORK" && cd "$WORK"
MPI="$MPIRUN --oversubscribe --bind-to none -x OMP_NUM_THREADS=1"
tiny_listops lo.h5
CFG="$SRC/configs/tiny.yaml data.train=lo.h5 data.val=lo.h5 data.seq_len=64 train.steps=24 train.batch_size=8
     train.eval_every=0 model.dropout=0.1 log.every=1 checkpoint.every=6 checkpoint.keep=10 dist.check_every=1"
wait_for() { for i in $(seq 1 300); do eval "$1" && return 0; sleep 0.1; done; return 1; }

# Reference: straight through at 2 ranks.
$MPI -np 2 "$LONGVQ" train $CFG run.dir=ref > ref.log 2>&1
check "reference run" '[ $? -eq 0 ] && [ -f ref/model_final.h5 ]'

# 1. A stop signal on ONE rank at step 9 (test hook): every rank agrees through the step's
#    reduction, checkpoints and exits 3; resume auto finishes bitwise identical.
resume_exact ref "signal"
# 1b. Real SIGUSR1 to every rank of a long run, twice in a row: still one clean checkpoint, exit 3.
$MPI -np 2 "$LONGVQ" train $CFG run.dir=sigreal train.steps=100000 log.every=100 > sigr.log 2>&1 &
mp=$!
wait_for 'grep -q "\"step\": 100," sigreal/metrics.jsonl 2>/dev/null'
ranks=$(rank_pids $mp); kill -USR1 $ranks; sleep 0.05; kill -USR1 $ranks
wait $mp; rc=$?
check "real SIGUSR1 (twice): exit 3 and a readable checkpoint" '[ $rc -eq 3 ] && "$LONGVQ" inspect $(ls sigreal/ckpt_*.h5 | tail -1) > /dev/null 2>&1'

# 2. kill -9 after a checkpoint: the lost steps are redone and the metrics file keeps no lost lines.
$MPI -np 2 "$LONGVQ" train $CFG run.dir=kill > kill1.log 2>&1 &
mp=$!
wait_for '[ -f kill/ckpt_00000012.h5 ] && grep -q "\"step\": 13," kill/metrics.jsonl 2>/dev/null'
kill -9 $(rank_pids $mp); wait $mp
$MPI -np 2 "$LONGVQ" train $CFG run.dir=kill --resume auto > kill2.log 2>&1
check "kill -9: resume finishes" '[ $? -eq 0 ]'
check "kill -9: parameters bitwise identical" 'same_model ref/model_final.h5 kill/model_final.h5'
check "kill -9: metric lines identical" 'diff <(loss_lines ref/metrics.jsonl) <(loss_lines kill/metrics.jsonl) >/dev/null'

# 3. Another world size: save at 4 ranks (ZeRO-1), resume at 2 (no ZeRO) and at 1.
$MPI -np 4 "$LONGVQ" train $CFG run.dir=w4 dist.zero=1 train.steps=24 > w4.log 2>&1
for np in 2 1; do
  for z in 0 1; do
    d=w4to${np}z$z; mkdir -p $d; cp w4/ckpt_00000012.h5 $d/
    $MPI -np $np "$LONGVQ" train $CFG run.dir=$d dist.zero=$z --resume $d/ckpt_00000012.h5 > $d.log 2>&1
    check "4 ranks -> $np rank(s), zero=$z: resumes" '[ $? -eq 0 ] && grep -q "written by 4 rank" $d.log'
    check "4 ranks -> $np rank(s), zero=$z: losses match" '/usr/bin/python3 - ref/metrics.jsonl $d/metrics.jsonl <<PY
import json, sys
a = {r["step"]: r for r in map(json.loads, open(sys.argv[1])) if "tokens_per_s" in r}
b = {r["step"]: r for r in map(json.loads, open(sys.argv[2])) if "tokens_per_s" in r}
assert sorted(b) == list(range(13, 25)), sorted(b)
for s in b:
    assert abs(a[s]["loss"] - b[s]["loss"]) <= 1e-4 * abs(a[s]["loss"]), (s, a[s]["loss"], b[s]["loss"])
PY'
  done
done

# 4. Shape change refused, naming the key; harmless change accepted and listed.
$MPI -np 1 "$LONGVQ" train $CFG run.dir=ref model.d_model=32 train.steps=30 --resume ref/ckpt_00000012.h5 > shape.log 2> shape.err
check "shape change refused naming the key" '[ $? -eq 2 ] && grep -q "model.d_model (16 -> 32)" shape.err'
mkdir -p harmless && cp ref/ckpt_00000012.h5 harmless/
$MPI -np 1 "$LONGVQ" train $CFG run.dir=harmless train.lr=1e-3 train.steps=14 --resume harmless/ckpt_00000012.h5 > harmless.log 2>&1
check "harmless change accepted and listed" '[ $? -eq 0 ] && grep -q "config change accepted: train.lr" harmless.log'

# 5. A truncated newest checkpoint: auto resume reports it and uses the previous one.
mkdir -p trunc && cp ref/ckpt_00000012.h5 ref/ckpt_00000018.h5 trunc/
truncate -s 20000 trunc/ckpt_00000018.h5
$MPI -np 2 "$LONGVQ" train $CFG run.dir=trunc --resume auto > trunc.log 2>&1
check "truncated newest checkpoint skipped, previous used" '[ $? -eq 0 ] && grep -q "ckpt_00000018" trunc.log && grep -q "resumed from .*ckpt_00000012" trunc.log'
check "... and the run still ends bitwise identical" 'same_model ref/model_final.h5 trunc/model_final.h5'

# 6. A fresh run (no checkpoint.resume) into a run.dir that holds a run's checkpoints is refused
#    before anything is written: the other run's checkpoints, latest record and metrics stay as they were.
sum_before=$(cat ref/latest ref/metrics.jsonl ref/ckpt_*.h5 | md5sum)
$MPI -np 2 "$LONGVQ" train $CFG run.dir=ref > fresh.log 2> fresh.err; rc=$?
check "fresh run into a run.dir with checkpoints refused, naming the way out" '[ $rc -eq 2 ] && grep -q "run.dir: ref already holds the checkpoints of a run (newest: ckpt_00000024.h5, step 24): set checkpoint.resume=auto" fresh.err'
check "... and the run.dir is untouched" '[ "$(cat ref/latest ref/metrics.jsonl ref/ckpt_*.h5 | md5sum)" = "$sum_before" ]'

# 7. Resume only what belongs. (a) A run killed before its first checkpoint leaves metric lines: a
#    fresh start without resume is refused (those lines are a run's record), and resume=auto starts
#    fresh and replaces them, so no step appears twice and the lines equal the straight run's.
$MPI -np 2 "$LONGVQ" train $CFG run.dir=early checkpoint.every=1000 train.steps=100000 > early1.log 2>&1 &
mp=$!
wait_for 'grep -q "\"step\": 5," early/metrics.jsonl 2>/dev/null'
kill -9 $(rank_pids $mp); wait $mp
check "(a) a run killed before its first checkpoint left metric lines and no checkpoint" \
  '[ $(grep -c "\"step\"" early/metrics.jsonl) -ge 5 ] && ! ls early/ckpt_*.h5 > /dev/null 2>&1'
$MPI -np 2 "$LONGVQ" train $CFG run.dir=early > early2.log 2> early2.err; rc=$?
check "(a) fresh start into it refused, naming the lines" '[ $rc -eq 2 ] && grep -q "already holds [0-9]* metric lines of a run that made no checkpoint" early2.err'
$MPI -np 2 "$LONGVQ" train $CFG run.dir=early --resume auto > early3.log 2>&1; rc=$?
check "(a) resume=auto starts fresh, dropping the stale lines" '[ $rc -eq 0 ] && grep -q "dropped [0-9]* metric lines" early3.log'
check "(a) ... and each step appears once, as in the straight run" 'diff <(loss_lines ref/metrics.jsonl) <(loss_lines early/metrics.jsonl) > /dev/null'
# (b) Resuming with train.steps below the checkpoint's step is refused before anything is written.
mkdir -p below && cp ref/ckpt_00000012.h5 below/ && sum_before=$(md5sum < below/ckpt_00000012.h5)
$MPI -np 2 "$LONGVQ" train $CFG run.dir=below train.steps=6 --resume auto > below.log 2> below.err; rc=$?
check "(b) train.steps below the checkpoint's step refused" '[ $rc -eq 2 ] && grep -q "train.steps: 6 is below the step 12 of" below.err'
check "(b) ... the checkpoint untouched, no final model" '[ "$(md5sum < below/ckpt_00000012.h5)" = "$sum_before" ] && [ ! -e below/model_final.h5 ]'

# (c) The checkpoint records what it trained on (sizes and the dataset's digests, not the path): a
#    dataset swapped under the same path is refused at resume unless data.allow_change says so.
mkdir -p swap && cp ref/ckpt_00000012.h5 swap/
"$LONGVQ" data listops --out other.h5 --train 96 --val 16 --test 16 --min-len 20 --max-len 60 --max-depth 3 \
  --seed 8 > /dev/null 2>&1
cp lo.h5 lo_copy.h5; cp other.h5 lo.h5 # the same path, other content
$MPI -np 2 "$LONGVQ" train $CFG run.dir=swap --resume auto > swap.log 2> swap.err; rc=$?
check "(c) a dataset swapped under the same path: refused, naming both" \
  '[ $rc -eq 2 ] && grep -q "data.train: lo.h5 is not the data .*ckpt_00000012.h5 was trained on (then: .*; now: .*): set data.allow_change=true" swap.err'
$MPI -np 2 "$LONGVQ" train $CFG run.dir=swap --resume auto data.allow_change=true > swap2.log 2> swap2.err; rc=$?
check "(c) ... accepted with data.allow_change=true, with a warning" '[ $rc -eq 0 ] && grep -q "differs from the data" swap2.err'
cp lo_copy.h5 lo.h5
mkdir -p moved && cp ref/ckpt_00000012.h5 moved/
$MPI -np 2 "$LONGVQ" train $CFG run.dir=moved --resume auto data.train=lo_copy.h5 data.val=lo_copy.h5 > moved.log 2>&1
check "(c) the same data under another path resumes" '[ $? -eq 0 ] && same_model ref/model_final.h5 moved/model_final.h5'

echo "ckpt_resume: $fail failed"
exit $fail
