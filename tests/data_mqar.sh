# `longvq data mqar` (io/data_mqar.c) and the eval_mask of LM datasets: determinism (same seed ->
# byte-identical files, a split does not depend on the sizes of the others, shards = the single
# file); every block checked by an independent evaluation in Python (key/value alternation, one
# binding per block, every recall near (<= 1 chunk back) or far (>= M chunks back), never between;
# val/test eval_mask = exactly the far recalls' values, test_near = the near ones, train none);
# blocks re-derived bit for bit from the documented Philox key layout; the trainer's evaluation
# counts exactly the eval_mask targets; a corrupt eval_mask and bad options exit 2 naming them.
set -euo pipefail
: "${LONGVQ:?}" "${WORK:?}" "${SRC:?}"
PY=/usr/bin/python3
rm -rf "$WORK" && mkdir -p "$WORK" && cd "$WORK"
fail() { echo "FAIL: $*" >&2; exit 1; }

"$LONGVQ" data --help | grep -q "mqar" || fail "data --help does not list mqar"
"$LONGVQ" data mqar --help | grep -q -- "--far-chunks" || fail "data mqar --help"

A="--train 60 --val 8 --test 6"
"$LONGVQ" data mqar --out a.h5 --seed 3 $A > a.log
"$LONGVQ" data mqar --out sub/b.h5 --seed 3 $A > /dev/null
"$LONGVQ" data mqar --out c.h5 --seed 4 $A > /dev/null
"$LONGVQ" data mqar --out d.h5 --seed 3 --train 25 --val 8 --test 2 > /dev/null
cmp -s a.h5 sub/b.h5 || fail "same seed, different files"
grep -q "oracle bits/token" a.log || fail "no oracle figures in the log"
# A second configuration: more keys and values (uint16 tokens), other sizes, weights, 3 shards.
B="--seq-len 240 --chunk 6 --keys 90 --values 300 --far-chunks 5 --near-weight 1 --far-weight 2 --fresh-weight 0.5"
"$LONGVQ" data mqar --out e.h5 --seed 9 --train 30 --val 5 --test 5 $B > /dev/null
"$LONGVQ" data mqar --out s.h5 --seed 9 --train 30 --val 5 --test 5 $B --shards 3 > /dev/null

SRC="$SRC" $PY - <<'PYEOF'
import os, sys, h5py, numpy as np
sys.path.insert(0, os.path.join(os.environ["SRC"], "tests"))
from lv_rng import Stream

def opts(f):
    w = f.attrs["options"].decode().split()
    return {w[i].lstrip("-"): float(w[i + 1]) if "." in w[i + 1] else int(w[i + 1]) for i in range(0, len(w), 2)}

def check(path):
    """Independent evaluation of every block; returns {split: (blocks (n, L), categories (n, L/2))}."""
    f = h5py.File(path, "r")
    o = opts(f)
    L, C, K, V, M = o["seq-len"], o["chunk"], o["keys"], o["values"], o["far-chunks"]
    assert f.attrs["task"] == b"lm" and f.attrs["vocab_size"] == 1 + K + V
    voc = [t.decode() for t in f.attrs["vocab_tokens"]]
    assert voc[0] == "<end>" and voc[1] == "k0" and voc[1 + K] == "v0"
    assert "eval_mask" not in f["train"], "train must count every target"
    out = {}
    for s, want in (("train", None), ("val", "far"), ("test", "far"), ("test_near", "near")):
        tok = f[s + "/tokens"][:].astype(np.int64)
        assert len(tok) % L == 1 and tok[-1] == 0, (s, "stream is n*L blocks + <end>")
        n = len(tok) // L
        X = tok[:-1].reshape(n, L)
        mask = f[s + "/eval_mask"][:] if want else None
        cats = np.zeros((n, L // 2), int)
        for b in range(n):
            x = X[b]
            keys, vals = x[0::2] - 1, x[1::2] - 1 - K
            assert keys.min() >= 0 and keys.max() < K and vals.min() >= 0 and vals.max() < V, (s, b, "key, value")
            last, bind = {}, {}
            for j, (k, v) in enumerate(zip(keys, vals)):
                assert bind.setdefault(k, v) == v, (s, b, j, "one value per key in a block")
                if k not in last:
                    c = 2
                else:
                    back = (2 * j) // C - last[k] // C
                    assert back <= 1 or back >= M, (s, b, j, "recall %d chunks back: neither near nor far" % back)
                    c = 0 if back <= 1 else 1
                cats[b, j] = c
                last[k] = 2 * j
            if want:
                m = mask[b * L:(b + 1) * L]
                assert not m[0::2].any(), (s, b, "eval_mask on a key")
                assert np.array_equal(m[1::2], cats[b] == (1 if want == "far" else 0)), (s, b, "eval_mask")
        if want:
            assert mask[-1] == 0
        out[s] = (X, cats)
    return out, (L, C, K, V, M, o["near-weight"], o["far-weight"], o["fresh-weight"])

(a, pa), (c, _), (d, _), (e, pe) = check("a.h5"), check("c.h5"), check("d.h5"), check("e.h5")
for s in a:
    assert not np.array_equal(a[s][0], c[s][0]), s + ": seeds 3 and 4 agree"
assert np.array_equal(d["train"][0], a["train"][0][:25]) and np.array_equal(d["val"][0], a["val"][0])
assert np.array_equal(d["test_near"][0], a["test_near"][0][:2]), "split sizes change other blocks"
# every category occurs, roughly in the proportions of the weights (60 blocks of 128 pairs)
frac = np.bincount(a["train"][1].ravel(), minlength=3) / a["train"][1].size
assert 0.35 < frac[0] < 0.65 and 0.15 < frac[1] < 0.4 and 0.1 < frac[2] < 0.35, frac
assert h5py.File("e.h5", "r")["train/tokens"].dtype == np.uint16
sh = [h5py.File("s-%05d-of-00003.h5" % k, "r") for k in range(3)]
ef = h5py.File("e.h5", "r")
for s in ("train", "val", "test", "test_near"):
    for name in ("tokens", "eval_mask") if s != "train" else ("tokens",):
        t = np.concatenate([h["%s/%s" % (s, name)][:] for h in sh])
        assert np.array_equal(t, ef["%s/%s" % (s, name)][:]), (s, name, "shards differ from the single file")

# --- the documented generator, re-implemented ----------------------------------------------------
def block(seed, split, b, L, C, K, V, M, wn, wf, wr):
    st = Stream(seed, "mqar", b, split)
    f = [st.below(V) for _ in range(K)]
    last, x, w = [-1] * K, [], (wn, wf, wr)
    def cat(k, cp):
        if last[k] < 0:
            return 2
        back = cp - last[k] // C
        return 0 if back <= 1 else 1 if back >= M else -1
    for j in range(L // 2):
        cp = 2 * j // C
        sets = [[k for k in range(K) if cat(k, cp) == q] for q in range(3)]
        total = sum(w[q] for q in range(3) if sets[q])
        u, run, c = st.word() * 2.0**-32 * total, 0.0, None
        for q in range(3):
            run += w[q] if sets[q] else 0.0
            if sets[q] and u < run and c is None:
                c = q
        k = sets[c][st.below(len(sets[c]))]
        x += [1 + k, 1 + K + f[k]]
        last[k] = 2 * j
    return x
for res, seed, p in ((a, 3, pa), (e, 9, pe)):
    for s, split in (("train", 0), ("val", 1), ("test", 2), ("test_near", 3)):
        for b in (0, len(res[s][0]) - 1):
            assert np.array_equal(res[s][0][b], block(seed, split, b, *p)), (seed, s, b, "differs from the spec")
# the eval_mask target counts the trainer must report
with open("counts", "w") as fh:
    fh.write("%d %d\n" % (h5py.File("a.h5", "r")["val/eval_mask"][:].sum(), h5py.File("a.h5", "r")["test_near/eval_mask"][:].sum()))
print("mqar: all blocks checked; generator matches the documented key layout")
PYEOF

# --- the trainer counts exactly the eval_mask targets in evaluation --------------------------------
read -r n_val n_near < counts
T="model.d_model=16 model.z_dim=8 model.v_dim=16 model.ffn_dim=16 model.n_layers=1 model.codebook_size=8
   data.train=a.h5 data.val=a.h5 data.test=a.h5 train.steps=4 train.warmup=1 train.batch_size=4 train.eval_every=4 log.every=2
   run.dir=run"
"$LONGVQ" train "$SRC/configs/mqar.yaml" $T > train.log 2>&1 || { cat train.log; fail "train"; }
grep -q "^eval .*val acc .* | $n_val targets" train.log || { grep "^eval" train.log; fail "val: want $n_val targets"; }
"$LONGVQ" eval "$SRC/configs/mqar.yaml" --model run/model_final.h5 --split test_near $T > near.log 2>&1 \
  || { cat near.log; fail "eval --split test_near"; }
grep -q "accuracy .* | $n_near targets" near.log || { cat near.log; fail "test_near: want $n_near targets"; }

# --- a corrupt eval_mask: exit 2 naming the file and the field ----------------------------------
cp a.h5 bad_mask.h5
$PY -c "import h5py; f = h5py.File('bad_mask.h5', 'r+'); m = f['val/eval_mask']; m[3] = 2"
# The digests find it at start-up; without them (data.verify=false) the reader's own check does.
set +e; "$LONGVQ" eval "$SRC/configs/mqar.yaml" --model run/model_final.h5 $T data.val=bad_mask.h5 > /dev/null 2> bad.err
rc=$?; set -e
[ "$rc" = 2 ] && grep -q "bad_mask.h5: /val/eval_mask: digest mismatch" bad.err || { cat bad.err; fail "corrupt eval_mask, digest: exit $rc"; }
set +e; "$LONGVQ" eval "$SRC/configs/mqar.yaml" --model run/model_final.h5 $T data.val=bad_mask.h5 data.verify=false \
  > /dev/null 2> bad.err
rc=$?; set -e
[ "$rc" = 2 ] && grep -q "bad_mask.h5: /val/eval_mask\[3\] is 2" bad.err || { cat bad.err; fail "corrupt eval_mask: exit $rc"; }

# --- bad options: exit 2 and a message naming the option ---------------------------------------
bad() {
  local want="$1"; shift
  set +e; "$LONGVQ" data mqar --out bad.h5 "$@" > /dev/null 2> bad.err; local rc=$?; set -e
  [ "$rc" = 2 ] && grep -q -- "$want" bad.err || { cat bad.err >&2; fail "$* -> exit $rc, want 2 and '$want'"; }
  [ ! -e bad.h5 ] || fail "$*: wrote a file"
}
bad "--chunk" --chunk 7
bad "--seq-len" --seq-len 250
bad "--far-chunks" --far-chunks 1
bad "--far-chunks" --far-chunks 32          # 256 / 8 = 32 chunks: no recall can be 32 back
bad "--near-weight" --near-weight 0
bad "--fresh-weight" --fresh-weight 0
bad "--far-weight" --far-weight -1
bad "--keys" --keys 1
echo "data_mqar: ok"
