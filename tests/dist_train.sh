#!/usr/bin/env bash
# Data parallelism: the same config at 1, 2 and 4 ranks, at 2 ranks x 2 micro-batches, and with
# ZeRO-1, gives the same loss trajectory over 20 steps, and every rank holds bitwise identical
# parameters and codebooks (dist.check_every=1 aborts the job otherwise). Bad distributed setups are
# clear errors from rank 0 and every rank exits. A rank killed mid-run ends the job non-zero fast.
set -u
. "$SRC/tests/script_lib.sh"
rm -rf "$WORK" && mkdir -p "$WORK" && cd "$WORK"
MPI="$MPIRUN --oversubscribe --bind-to none -x OMP_NUM_THREADS=1"
tiny_listops lo.h5
# dropout on, so that the counter-based masks are part of what must agree
CFG="$SRC/configs/tiny.yaml data.train=lo.h5 data.val=lo.h5 data.seq_len=64 train.steps=20 train.batch_size=8
     train.eval_every=0 model.dropout=0.1 model.hidden_dropout=0.1 dist.check_every=1 log.every=1"
train_np np1 1;                           check "1 rank runs" '[ $? -eq 0 ]'
train_np np2 2;                           check "2 ranks run" '[ $? -eq 0 ]'
train_np np4 4;                           check "4 ranks run" '[ $? -eq 0 ]'
train_np np2mb2 2 train.micro_batch=2;    check "2 ranks x 2 micro-batches run" '[ $? -eq 0 ]'
train_np np2z 2 dist.zero=1;              check "2 ranks ZeRO-1 run" '[ $? -eq 0 ]'
train_np np4z 4 dist.zero=1 dist.bucket_mb=0.002; check "4 ranks ZeRO-1, many buckets run" '[ $? -eq 0 ]'
train_np np1mb4 1 train.micro_batch=4;    check "1 rank x 4 micro-batches runs" '[ $? -eq 0 ]'
train_np np2inl 2 dist.comm_thread=false; check "2 ranks, reduction inline (no thread) run" '[ $? -eq 0 ]'

# Loss trajectories: float32 sums in another order (per-rank partial gradients, then the reduction)
# differ by a few ulps per step; over 20 Adam steps that stays far below 1e-4 relative on the loss
# of this tiny model. A bug (a sample counted twice, a wrong normalizer, a mask keyed by rank)
# moves the loss by 1e-2 or more.
check "same losses at 1/2/4 ranks, 2x2 micro, 1x4 micro" 'cmp_runs --steps 20 np1 np2 np4 np2mb2 np1mb4'
check "ZeRO-1 on and off agree" 'cmp_runs --steps 20 np2 np2z np4z'
# Without the communication thread the same collectives run in the same order, after backward: the
# same bits, and all of the communication is exposed.
check "reduction inline: metric lines identical to the threaded run" \
  'diff <(strip_timing np2/metrics.jsonl) <(strip_timing np2inl/metrics.jsonl) > /dev/null'
check "reduction inline: exposed = communication time" '/usr/bin/python3 - <<PY
import json
rows = [json.loads(l) for l in open("np2inl/metrics.jsonl") if "tokens_per_s" in l]
assert all(r["exposed_comm_s"] >= r["comm_s"] for r in rows), rows[0]
PY'
check "replica check ran every step" 'grep -q "\"step\": 20," np4/metrics.jsonl'
check "ZeRO-1 reports less optimizer memory" 'grep -q "ZeRO-1 on" np2z.log'
# The final models: identical across rank counts up to float summation order.
check "final codebooks agree across rank counts" '/usr/bin/python3 - <<PY
import h5py, numpy as np
a = h5py.File("np1/model_final.h5"); b = h5py.File("np4/model_final.h5")
for i in range(2):
    p = f"/model/layers/{i}/mixer/codebook/c_sum"
    assert np.allclose(a[p][()], b[p][()], rtol=1e-3, atol=1e-5), p
PY'

# Bad distributed setups: rank 0 says it once, every rank exits with code 2, nothing trains.
bad() { # name regex np args...
  local name=$1 re=$2 np=$3; shift 3
  timeout 60 $MPI -np "$np" "$LONGVQ" train $CFG run.dir=bad "$@" > bad.log 2> bad.err; local rc=$?
  check "bad: $name" '[ $rc -eq 2 ] && grep -Eq "$re" bad.err && [ $(grep -c "error" bad.err) -eq 1 ] && ! grep -q "^step" bad.log'
}
bad "batch does not divide over ranks" "does not divide over 3 ranks" 3
bad "pinned world size differs" "pins 4 ranks but the job has 2" 2 dist.world_size=4
tiny_listops lo3.h5 3
bad "more ranks than samples" "more ranks \(4\) than training samples \(3\)|larger than the 3 training" 4 data.train=lo3.h5 data.val=lo3.h5 train.batch_size=4
# Errors only rank 1 knows (an MPMD launch gives it another command line): rank 0 prints rank 1's
# message once, naming the rank, and every rank exits 2 (the collective error form, trainer/check.h).
mpmd() { # name regex rank1-args...
  local name=$1 re=$2; shift 2
  timeout 60 $MPI -np 1 "$LONGVQ" train $CFG run.dir=bad1 train.init_from=np1/model_final.h5 : \
    -np 1 "$LONGVQ" train $CFG run.dir=bad1 "$@" > bad.log 2> bad.err; local rc=$?
  check "only rank 1 knows: $name" \
    '[ $rc -eq 2 ] && grep -Eq "$re" bad.err && [ $(grep -c "error" bad.err) -eq 1 ] && ! grep -q "^step" bad.log'
}
mpmd "bad config value" "^longvq: error: override .train.steps=abc.*not an integer \(rank 1 of 2\)" \
  train.init_from=np1/model_final.h5 train.steps=abc
mpmd "model file it cannot read" "^longvq: error: train.init_from: nope.h5.* \(rank 1 of 2\)" train.init_from=nope.h5

# A rank killed mid-run: the job must end non-zero within 60 s, never hang.
$MPI -np 2 "$LONGVQ" train $CFG run.dir="$WORK/killme" train.steps=100000 dist.check_every=0 log.every=50 > kill.log 2>&1 &
mp=$!
for i in $(seq 1 100); do grep -q '^step' kill.log 2>/dev/null && break; sleep 0.2; done
victim=$(rank_pids $mp | tail -1)
t0=$(date +%s)
kill -9 "$victim"
# the guard's sleep is ended with it (a leftover sleep would hold ctest's output pipe for 60 s)
( trap 'kill $! 2>/dev/null; exit 0' TERM; sleep 60 & wait $!; kill -9 $mp 2>/dev/null ) & guard=$!
wait $mp; rc=$?
t1=$(date +%s)
kill $guard 2>/dev/null
check "killed rank ends the job non-zero within 60 s (rc $rc after $((t1-t0)) s)" '[ $rc -ne 0 ] && [ $((t1-t0)) -lt 60 ]'
kill -9 $(rank_pids $mp) 2>/dev/null

echo "dist_train: $fail failed"
exit $fail
