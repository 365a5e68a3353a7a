#!/usr/bin/env bash
# Exact statistics at any global batch: one step whose global batch holds more than 2^24 valid tokens
# (150000 byte sequences of 99..128 tokens, 17.1M tokens in all, an odd count that float32 cannot
# represent), on 2 ranks x 75 micro-batches. The step's reduction carries the token/target counts,
# correct predictions, per-code counts and the loss sum in double (trainer/stats.h), so:
#  - the logged token count equals the dataset's own count (h5py over the offsets) exactly, and the
#    target count equals the number of samples;
#  - the logged task loss and accuracy of step 1 (taken at the initial parameters, dropout off) equal
#    what `longvq eval` computes for the saved initial model over the same 150000 samples, through
#    another path (its own double sums, dist_sum_f64). Tolerance: both take the same float32
#    per-sample losses (each sample's forward does not depend on its micro-batch neighbours), summed
#    in double in a different order: the relative difference is <= 150000 * 2^-53 ~ 2e-11, and a
#    float32 rounding of the sum (the old reduction) would be up to 2^-24 ~ 6e-8. We allow 1e-9;
#    accuracy is a ratio of two exact integers, so it must agree to the printed digits.
set -u
. "$SRC/tests/script_lib.sh"
rm -rf "$WORK" && mkdir -p "$WORK" && cd "$WORK"
MPI="$MPIRUN --oversubscribe --bind-to none -x OMP_NUM_THREADS=1"

# 150000 training sequences; the total token count is made odd so that float32 (spacing 2 above
# 2^24) cannot hold it.
/usr/bin/python3 - <<'PY'
import numpy as np
rng = np.random.default_rng(7)
n = 150000
lens = rng.integers(100, 129, n)
if lens.sum() % 2 == 0:
    lens[0] -= 1
chars = rng.integers(97, 123, int(lens.sum())).astype(np.uint8)
labels = rng.integers(0, 4, n)
out, pos = bytearray(), 0
for i in range(n):
    out += b"%d\t" % labels[i] + chars[pos:pos + lens[i]].tobytes() + b"\n"
    pos += lens[i]
open("big.tsv", "wb").write(out)
open("val.tsv", "wb").write(b"0\tabc\n1\tbcd\n")
PY
"$LONGVQ" data tsv --out big.h5 --train big.tsv --val val.tsv --classes 4 > data.log 2>&1
check "dataset written" '[ $? -eq 0 ]'
expected=$(/usr/bin/python3 -c '
import h5py, numpy as np
o = h5py.File("big.h5")["train/offsets"][()]
print(int(np.diff(o).sum()))')
check "the batch holds more than 2^24 tokens, a count float32 cannot represent ($expected)" \
  '/usr/bin/python3 -c "import numpy as np, sys; n = $expected; sys.exit(not (n > 2**24 and int(np.float32(n)) != n))"'

# A tiny model (1 layer, D 4): the step is about 30 s of compute on 2 ranks of one core each.
CFG="$SRC/configs/tiny.yaml data.train=big.h5 data.val=big.h5 data.test=big.h5 data.seq_len=128
     model.d_model=4 model.z_dim=4 model.v_dim=4 model.ema_dim=2 model.codebook_size=4 model.n_layers=1
     train.batch_size=150000 train.micro_batch=75 train.eval_batches=0 dist.bucket_mb=25"
$MPI -np 2 "$LONGVQ" train $CFG run.dir=run train.steps=1 train.warmup=0 train.eval_every=0 checkpoint.every=0 \
  checkpoint.save_initial=true > train.log 2>&1
check "one step over the whole set on 2 ranks" '[ $? -eq 0 ]'
$MPI -np 2 "$LONGVQ" eval $CFG --model run/model_step0.h5 --split train > eval.log 2>&1
check "eval of the initial model over the same samples" '[ $? -eq 0 ]'
check "logged counts and loss equal the independent ones" '/usr/bin/python3 - "$expected" <<PY
import json, re, sys
m = [json.loads(l) for l in open("run/metrics.jsonl") if "tokens_per_s" in l][0]
ev = re.search(r"loss ([0-9.]+) \| accuracy ([0-9.]+) \| ([0-9]+) samples", open("eval.log").read())
loss, acc, n = float(ev.group(1)), float(ev.group(2)), int(ev.group(3))
print("logged: tokens %d targets %d task_loss %.10g accuracy %.10g" % (m["tokens"], m["targets"], m["task_loss"], m["accuracy"]))
print("independent: tokens %s (h5py) samples %d loss %.9f accuracy %.7f (longvq eval)" % (sys.argv[1], n, loss, acc))
ok = m["tokens"] == int(sys.argv[1]) and m["targets"] == 150000 == n
ok &= abs(m["task_loss"] - loss) <= 1e-9 * loss + 5e-10  # + half a unit of the 9 printed decimals
ok &= abs(m["accuracy"] - acc) <= 5e-8                    # the 7 printed decimals
sys.exit(not ok)
PY'
echo "dist_exact: $fail failed"
exit $fail
