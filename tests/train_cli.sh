#!/usr/bin/env bash
# `longvq train` / `eval` end to end on a tiny generated ListOps set: training runs and writes
# metrics and model files that h5py reads by the spec's names; eval reloads the model; bad configs
# and data/config mismatches are clear errors (exit 2) before any compute.
set -u
. "$SRC/tests/script_lib.sh"
rm -rf "$WORK" && mkdir -p "$WORK" && cd "$WORK"
tiny_listops lo.h5 64
check "listops tiny set" '[ -f lo.h5 ]'
CFG="$SRC/configs/tiny.yaml data.train=lo.h5 data.val=lo.h5 data.seq_len=64 train.steps=12 run.dir=run"

"$LONGVQ" train $CFG > train.log 2>&1; rc=$?
check "train exits 0" '[ $rc -eq 0 ]'
check "12 metric lines + evals" '[ $(grep -c "\"tokens_per_s\"" run/metrics.jsonl) -eq 12 ]'
check "metrics keys" 'grep -q "\"step\": 12, \"loss\"" run/metrics.jsonl && grep -q "\"grad_norm\"" run/metrics.jsonl && grep -q "\"lr\"" run/metrics.jsonl'
check "losses finite" '! grep -E "\"loss\": (nan|inf|-nan)" run/metrics.jsonl'
check "memory plan printed" 'grep -q "memory plan" train.log'
check "run.name in the log and in every metrics line" \
  'grep -q "^run: tiny, dir run" train.log && [ $(grep -c "\"run\": \"tiny\"}" run/metrics.jsonl) -eq $(wc -l < run/metrics.jsonl) ]'
check "model files" '[ -f run/model_step0.h5 ] && [ -f run/model_final.h5 ]'
check "h5py reads spec names" '/usr/bin/python3 - <<PY
import h5py
f = h5py.File("run/model_final.h5", "r")
assert f["/model/embed/weight"].shape[1] == 16
assert f["/model/layers/1/mixer/ema/delta"].shape == (32, 4)      # encoder: D'"'"' = 2D
assert f["/model/layers/0/mixer/codebook/c_sum"].shape == (8, 8)
assert f["/model/layers/0/mixer/rel_pos_bias"].shape == (15,)     # 2C-1
assert f.attrs["step"] == 12
assert b"d_model: 16" in f["/config"][()]
PY'
# Deterministic: the same run twice gives identical metric lines (timings aside).
"$LONGVQ" train $CFG run.dir=run2 > /dev/null 2>&1
check "deterministic given the seed" 'diff <(strip_timing run/metrics.jsonl) <(strip_timing run2/metrics.jsonl) > /dev/null'
"$LONGVQ" eval $CFG --model run/model_final.h5 > eval.log 2>&1; rc=$?
check "eval runs" '[ $rc -eq 0 ] && grep -q "accuracy" eval.log'
# eval opens only the split it evaluates, once, and sizes the model from it: with data.seq_len 0 it
# must not look for a train split in the file it evaluates (this one has none).
"$LONGVQ" data listops --out valonly.h5 --train 4 --val 16 --test 16 --min-len 20 --max-len 60 --max-depth 3 \
  --seed 8 > /dev/null 2>&1
/usr/bin/python3 -c 'import h5py; del h5py.File("valonly.h5", "a")["train"]'
"$LONGVQ" eval $CFG --model run/model_final.h5 data.val=valonly.h5 data.seq_len=0 > eval0.log 2>&1; rc=$?
check "eval of a file without a train split (data.seq_len 0)" '[ $rc -eq 0 ] && grep -q "16 samples" eval0.log'
# Live progress line only where a person watches a terminal (log.progress: auto): under mpirun
# rank 0's stdout is a pseudo-terminal even when the job's output goes to a file, and a file must get
# plain lines; a real terminal (script(1) gives mpirun one) gets the line rewritten in place.
LIVE="train.steps=12 log.progress=auto log.every=5 checkpoint.every=0"
$MPIRUN --oversubscribe -np 2 "$LONGVQ" train $CFG $LIVE run.dir=live1 > live1.log 2>&1
check "mpirun output to a file: plain lines, no control codes" \
  '[ $(grep -c "^step" live1.log) -eq 4 ] && ! grep -q $'"'"'[\r\033]'"'"' live1.log'
script -qec "$MPIRUN --oversubscribe -np 2 $LONGVQ train $CFG $LIVE run.dir=live2" live2.tty > /dev/null 2>&1
check "mpirun on a terminal: live line rewritten in place" 'grep -q $'"'"'\033\[K'"'"' live2.tty'
# Nothing written is lost silently: a full disk under the metrics file or under the log (/dev/full
# fails every write with ENOSPC) stops the run with a message naming what failed.
"$LONGVQ" train $CFG run.dir=full1 log.metrics=/dev/full > full1.log 2> full1.err; rc=$?
check "metrics on a full disk: the run stops, naming the file" \
  '[ $rc -ne 0 ] && grep -q "log.metrics: writing /dev/full failed: No space left on device" full1.err'
"$LONGVQ" train $CFG run.dir=full2 > /dev/full 2> full2.err; rc=$?
check "log on a full disk: the run stops, saying so" '[ $rc -ne 0 ] && grep -q "writing the log to stdout failed" full2.err'
# An LM val split too short for one window is refused at start (it would log a loss of 0/0).
head -c 3000 "$SRC/README.md" > short.txt
"$LONGVQ" data text --out short.h5 --val-fraction 0.003 short.txt > /dev/null 2>&1
"$LONGVQ" train $CFG run.dir=short data.train=short.h5 data.val=short.h5 model.mode=decoder data.seq_len=32 \
  > short.log 2> short.err; rc=$?
check "LM val split shorter than seq_len+1 refused" '[ $rc -eq 2 ] && grep -q "data.val: split .val. of short.h5 has [0-9]* tokens, fewer than seq_len + 1 = 33" short.err'
"$LONGVQ" train $CFG --print-config > eff.yaml 2>&1
check "print-config loads back" '"$LONGVQ" train eff.yaml --print-config | diff - eff.yaml > /dev/null'

# Bad input: exit 2, one clear message, before any compute.
bad() { # name, expected message regex, args...
  local name=$1 re=$2; shift 2
  "$LONGVQ" train "$@" > out.log 2> err.log; local rc=$?
  check "bad: $name" '[ $rc -eq 2 ] && grep -Eq "$re" err.log && ! grep -q "^step" out.log'
}
bad "seq_len not a multiple of chunk" "seq_len.*multiple" $CFG data.seq_len=60
bad "vocab mismatch" "vocab_size.*has vocab size" $CFG model.vocab_size=300
bad "classes mismatch" "n_classes.*has 10 classes" $CFG model.n_classes=3
bad "sequence longer than seq_len" "longer than seq_len.*truncate" $CFG data.truncate=false data.seq_len=32
bad "decoder on classification data" "needs a language-modelling dataset" $CFG model.mode=decoder
bad "batch larger than data" "larger than the 64 training samples" $CFG train.batch_size=128
bad "batch does not divide micro-batches" "does not divide" $CFG train.micro_batch=3
bad "missing dataset file" "nope.h5" $CFG data.train=nope.h5
bad "unknown key" "modle.d_model|unknown" $CFG modle.d_model=3
mkdir -p mdir/model_final.h5
bad "a directory where the final model goes: refused before training" "mdir/model_final.h5 is not a regular file" \
  $CFG run.dir=mdir
bad "a model within the limits that does not fit in memory" "memory plan needs [0-9.]* GiB per rank, more than this node" \
  $CFG model.d_model=65536 model.v_dim=65536

# Fine-tuning: train.init_from makes a model file the step-0 model (fresh optimizer); a file of
# another shape, or no file, is an error naming the key.
"$LONGVQ" train $CFG run.dir=ft train.init_from=run/model_final.h5 train.steps=2 > ft.log 2>&1; rc=$?
check "train.init_from: the given model is step 0" '[ $rc -eq 0 ] && /usr/bin/python3 - <<PY
import h5py, numpy as np
a, b = h5py.File("run/model_final.h5", "r"), h5py.File("ft/model_step0.h5", "r")
names = []
a["model"].visit(lambda n: names.append(n) if isinstance(a["model"][n], h5py.Dataset) else None)
assert len(names) > 10 and all(np.array_equal(a["model"][n][()], b["model"][n][()]) for n in names)
PY'
bad "init_from of another shape" "train.init_from: run/model_final.h5: tensor embed.weight has shape" $CFG run.dir=ft2 train.init_from=run/model_final.h5 model.d_model=32
bad "init_from missing" "train.init_from: nope.h5" $CFG run.dir=ft3 train.init_from=nope.h5

# A diverging run stops at the first non-finite loss, naming the step and where it appeared.
"$LONGVQ" train $CFG run.dir=runnan train.lr=1e30 train.clip=0 train.warmup=0 > nan.log 2>&1; rc=$?
check "non-finite loss stops with step and layer" '[ $rc -eq 1 ] && grep -Eq "step [0-9]+: non-finite.*first at (layer [0-9]+ |embedding|final norm|logits|gradient of)" nan.log'
"$LONGVQ" train $CFG run.dir=runskip train.lr=1e30 train.clip=0 train.warmup=0 train.nonfinite=skip > skip.log 2>&1; rc=$?
check "train.nonfinite=skip keeps going" '[ $rc -eq 0 ] && grep -q "step skipped" skip.log'

echo "train_cli: $((fail)) failed"
[ $fail -eq 0 ] && echo "train_cli: all passed"
exit $fail
