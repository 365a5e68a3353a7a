#!/usr/bin/env bash
# `longvq eval` by position bucket (trainer/eval_pos.h, docs/training.md "Loss by position") on a
# small decoder trained here:
#   1. the buckets add up to the whole: their target counts exactly, their loss sums within the
#      rounding of two summation orders of the same doubles;
#   2. a hand-checkable case through another path: on window 0 alone, bucket 0-15 of a 64-token
#      window is the whole loss of an evaluation with 16-token windows (the model is causal: the
#      first 16 predictions see the same tokens), and buckets 0-31 that of 32-token windows;
#   3. 2 ranks give the 1-rank buckets (same counts, sums within the same rounding);
#   4. the default buckets, and bad --position-buckets / --json (exit 2).
set -u
. "$SRC/tests/script_lib.sh"
rm -rf "$WORK" && mkdir -p "$WORK" && cd "$WORK"
cat "$SRC"/docs/*.md > text.txt
"$LONGVQ" data text --out text.h5 --val-fraction 0.1 text.txt > /dev/null 2>&1
CFG="$SRC/configs/tiny.yaml data.train=text.h5 data.val=text.h5 model.mode=decoder data.seq_len=64 train.eval_every=0
     checkpoint.every=0 run.dir=run"
OMP_NUM_THREADS=1 "$LONGVQ" train $CFG train.steps=20 > train.log 2>&1
check "a small decoder trains" '[ $? -eq 0 ] && [ -f run/model_final.h5 ]'
ev() { # name, args...: eval of the trained model with --json name.json
  local name=$1; shift
  OMP_NUM_THREADS=1 "$LONGVQ" eval $CFG --model run/model_final.h5 --json "$name.json" "$@" > "$name.log" 2>&1
}
py() { /usr/bin/python3 -c "import json, math, sys; $1" "${@:2}"; }

# 1. The whole split, buckets 0-15, 16-31, 32-63.
ev all --position-buckets 16,32 train.eval_batches=0 train.batch_size=1
check "eval with buckets: exit 0, a table of three buckets" \
  '[ $? -eq 0 ] && grep -q "^  0-15 " all.log && grep -q "^  16-31 " all.log && grep -q "^  32-63 " all.log'
# The same doubles summed in two orders: each sum is within (n-1) u sum|x| of the exact one (u =
# 2^-53, recursive summation), so they differ by at most (n+1) 2^-52 sum|x|, with 2 more roundings
# for loss x targets (nll >= 0: sum|x| = the sum).
check "buckets add up: counts exactly (1/4, 1/4, 1/2 of the targets), loss sums within (n+1) 2^-52 sum" "py '
e = json.load(open(\"all.json\")); n = e[\"targets\"]; s = sum(e[\"position_loss_sum\"])
print(\"   \", n, \"targets, loss x targets\", repr(e[\"loss\"] * n), \"sum of buckets\", repr(s), \"diff\", abs(e[\"loss\"] * n - s))
assert e[\"position_from\"] == [0, 16, 32] and e[\"position_to\"] == [16, 32, 64]
assert n > 0 and e[\"position_targets\"] == [n / 4, n / 4, n / 2]
assert abs(e[\"loss\"] * n - s) <= (n + 3) * 2.0**-52 * s
for c, l, b in zip(e[\"position_targets\"], e[\"position_loss_sum\"], e[\"position_bits_per_token\"]):
    assert abs(l / c / math.log(2) - b) <= 1e-9 * b
'"

# 2. Window 0 alone (batch 1, one batch): bucket 0-15 at seq_len 64 vs seq_len 16, 0-31 vs 32.
ev w64 --position-buckets 16,32 train.eval_batches=1 train.batch_size=1
ev w16 train.eval_batches=1 train.batch_size=1 data.seq_len=16
ev w32 train.eval_batches=1 train.batch_size=1 data.seq_len=32
# float32 forwards of other shapes: a few ulps per activation, ~1e-6 of a nll of ~5, summed over
# 16-32 targets: 1e-5 relative is ample; one target moved between buckets changes the sum by ~1/16.
check "window 0: bucket 0-15 (L 64) = the loss at L 16, buckets 0-31 = the loss at L 32 (1e-5 relative)" "py '
a, b, c = (json.load(open(f + \".json\")) for f in (\"w64\", \"w16\", \"w32\"))
s16, s32 = b[\"loss\"] * b[\"targets\"], c[\"loss\"] * c[\"targets\"]
p = a[\"position_loss_sum\"]
print(\"   \", repr(p[0]), \"vs\", repr(s16), \"|\", repr(p[0] + p[1]), \"vs\", repr(s32))
assert a[\"position_targets\"] == [16, 16, 32] and b[\"targets\"] == 16 and c[\"targets\"] == 32
assert abs(p[0] - s16) <= 1e-5 * s16 and abs(p[0] + p[1] - s32) <= 1e-5 * s32
'"

# 3. Two ranks of one window each = one rank of one window per micro-batch: the same per-target
#    doubles, summed in another order.
$MPIRUN --oversubscribe -np 2 -x OMP_NUM_THREADS=1 "$LONGVQ" eval $CFG --model run/model_final.h5 --json np2.json \
  --position-buckets 16,32 train.eval_batches=0 train.batch_size=2 > np2.log 2>&1
check "2 ranks: the 1-rank buckets (counts exactly, sums within (n+1) 2^-52 sum)" "[ \$? -eq 0 ] && py '
a, b = json.load(open(\"all.json\")), json.load(open(\"np2.json\"))
assert a[\"position_targets\"] == b[\"position_targets\"], (a[\"position_targets\"], b[\"position_targets\"])
for x, y, c in zip(a[\"position_loss_sum\"], b[\"position_loss_sum\"], a[\"position_targets\"]):
    assert abs(x - y) <= (c + 1) * 2.0**-52 * x, (x, y)
'"

# 4. Default buckets: powers of 4 from 64 below seq_len (at 256: 0-63, 64-255).
ev def train.eval_batches=2 data.seq_len=256
check "default buckets at seq_len 256: 0-63, 64-255" \
  "[ \$? -eq 0 ] && grep -q '^  0-63 ' def.log && grep -q '^  64-255 ' def.log && py 'assert json.load(open(\"def.json\"))[\"position_from\"] == [0, 64]'"
badev() { # name, expected message (regex), args...
  local name=$1 re=$2; shift 2
  "$LONGVQ" eval $CFG --model run/model_final.h5 "$@" > bad.log 2> bad.err; local rc=$?
  check "bad: $name" '[ $rc -eq 2 ] && grep -Eq -- "$re" bad.err && ! grep -q "^eval " bad.log'
}
badev "a boundary of 0" "--position-buckets '0,16': boundary 0 must be above the previous one \(0\)" --position-buckets 0,16
badev "not increasing" "boundary 16 must be above the previous one \(32\)" --position-buckets 32,16
badev "beyond seq_len" "boundary 64 must be above the previous one \(16\) and below seq_len 64" --position-buckets 16,64
badev "not numbers" "'a,b': expected positions separated by commas" --position-buckets a,b
badev "a trailing comma" "'16,': ends with a comma" --position-buckets 16,
badev "--json to a directory that does not exist" "--json no/such/e.json: cannot open for writing" --json no/such/e.json
tiny_listops lo.h5 32
"$LONGVQ" train "$SRC/configs/tiny.yaml" data.train=lo.h5 data.val=lo.h5 data.seq_len=64 train.steps=2 checkpoint.every=0 \
  run.dir=enc > enc.log 2>&1
"$LONGVQ" eval "$SRC/configs/tiny.yaml" data.train=lo.h5 data.val=lo.h5 data.seq_len=64 --model enc/model_final.h5 \
  --position-buckets 16 > bad.log 2> bad.err; rc=$?
check "bad: buckets for a classifier" '[ $rc -eq 2 ] && grep -q "only for a language-modelling split" bad.err'
exit $fail
