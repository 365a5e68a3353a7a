# `longvq data recall` (io/data_recall.c): determinism (same seed -> byte-identical files, other
# seed -> other samples, a split does not depend on the sizes of the others); every sample checked
# by an independent evaluation in Python (structure, distinct keys, the label is the value paired
# with the queried key, every pair >= M chunks before the first query chunk, except the "near"
# curriculum samples of --train-near-fraction, which only train may hold); a few samples
# re-derived bit for bit from the documented Philox key layout (docs/dataset-format.md); bad
# options exit 2 naming the option.
set -euo pipefail
: "${LONGVQ:?}" "${WORK:?}"
PY=/usr/bin/python3
rm -rf "$WORK" && mkdir -p "$WORK" && cd "$WORK"
fail() { echo "FAIL: $*" >&2; exit 1; }

"$LONGVQ" data --help | grep -q "recall" || fail "data --help does not list recall"
"$LONGVQ" data recall --help | grep -q -- "--min-distance-chunks" || fail "data recall --help"

# --- determinism --------------------------------------------------------------------------------
A="--train 300 --val 40 --test 50"
"$LONGVQ" data recall --out a.h5 --seed 3 $A > /dev/null
"$LONGVQ" data recall --out sub/b.h5 --seed 3 $A > /dev/null
"$LONGVQ" data recall --out c.h5 --seed 4 $A > /dev/null
"$LONGVQ" data recall --out d.h5 --seed 3 --train 120 --val 40 --test 7 > /dev/null
cmp -s a.h5 sub/b.h5 || fail "same seed, different files"
# A second configuration: odd sizes, several fillers, a short query, 2 shards, uint16 tokens.
B="--seq-len 96 --chunk 8 --pairs 5 --keys 7 --values 230 --fillers 40 --min-distance-chunks 9 --query-len 3"
"$LONGVQ" data recall --out e.h5 --seed 11 --train 200 --val 30 --test 0 $B > /dev/null
"$LONGVQ" data recall --out s.h5 --seed 11 --train 200 --val 30 --test 0 $B --shards 2 > /dev/null
# The near curriculum: 40% of the train samples hold their pairs in the query's chunk.
N="--train 400 --val 50 --test 50 --pairs 6 --query-len 1 --train-near-fraction 0.4"
"$LONGVQ" data recall --out n.h5 --seed 2 $N > /dev/null

$PY - <<'EOF'
import h5py, numpy as np

def opts(f):
    w = f.attrs["options"].decode().split()
    return {w[i].lstrip("-"): float(w[i + 1]) if "." in w[i + 1] else int(w[i + 1]) for i in range(0, len(w), 2)}

def check(path):
    """Independent evaluation of every sample: structure, distinct keys, label, distance.
    Returns {split: (tokens (n, L), labels, near flags)}."""
    f = h5py.File(path, "r")
    o = opts(f)
    L, C, P, K, V, F, M, Q, R, X = (o[k] for k in ("seq-len", "chunk", "pairs", "keys", "values", "fillers",
                                                   "min-distance-chunks", "query-len", "pair-chunks",
                                                   "train-near-fraction"))
    assert f.attrs["task"] == b"classification" and f.attrs["n_classes"] == V
    assert f.attrs["vocab_size"] == 1 + F + K + V and f.attrs["generator"] == b"longvq data recall"
    voc = [t.decode() for t in f.attrs["vocab_tokens"]]
    assert voc[0] == "<pad>" and voc[1] == "_0" and voc[1 + F] == "k0" and voc[1 + F + K] == "v0"
    assert [c.decode() for c in f.attrs["class_names"]] == ["v%d" % v for v in range(V)]
    k0, v0 = 1 + F, 1 + F + K
    q_chunk = (L - Q) // C
    assert 1 <= R <= q_chunk - M + 1
    out = {}
    for s in ("train", "val", "test"):
        if s not in f:
            continue
        g = f[s]
        off, tok, lab = g["offsets"][:], g["tokens"][:].astype(np.int64), g["labels"][:]
        n = len(lab)
        assert np.array_equal(off, np.arange(n + 1) * L), s + ": lengths"
        T = tok.reshape(n, L)
        near = np.zeros(n, bool)
        for i in range(n):
            x = T[i]
            q = x[L - 1]
            assert k0 <= q < v0 and np.all(x[L - Q:] == q), (s, i, "query block")
            head = x[:L - Q]
            kpos = np.nonzero((head >= k0) & (head < v0))[0]
            vpos = np.nonzero(head >= v0)[0]
            assert len(kpos) == P and np.array_equal(vpos, kpos + 1), (s, i, "pairs are key, value")
            keys = head[kpos]
            assert len(set(keys.tolist())) == P, (s, i, "keys not distinct")
            if kpos.min() >= q_chunk * C:
                # a near (curriculum) sample: train only, every pair in the query's chunk
                assert s == "train" and X > 0, (s, i, "near sample outside train")
                assert np.all((kpos - q_chunk * C) % 2 == 0), (s, i, "near pairs sit on 2-token slots")
                near[i] = True
            else:
                # distance: both tokens of every pair lie in chunk <= q_chunk - M, i.e. >= M chunks
                # before the chunk of the first query position (and inside the first R chunks)
                assert np.all(kpos % 2 == 0), (s, i, "pairs sit on 2-token slots")
                assert np.all((kpos + 1) // C <= q_chunk - M) and np.all((kpos + 1) // C < R), (s, i, "distance")
                assert (L - Q) // C - (kpos + 1).max() // C >= M
            hit = kpos[keys == q]
            assert len(hit) == 1, (s, i, "query key not among the pairs")
            assert lab[i] == head[hit[0] + 1] - v0, (s, i, "label is not the queried value")
            fill = np.ones(L - Q, bool)
            fill[kpos] = fill[kpos + 1] = False
            assert np.all((head[fill] >= 1) & (head[fill] <= F)), (s, i, "filler ids")
        out[s] = (T, lab, near)
    return out

a, c, d = check("a.h5"), check("c.h5"), check("d.h5")
e = check("e.h5")
nr = check("n.h5")
assert not any(r[2].any() for r in (a, c, d, e) for r in r.values()), "near samples without the option"
frac = nr["train"][2].mean()
assert 0.3 < frac < 0.5, frac  # 400 draws of p = 0.4
assert not nr["val"][2].any() and not nr["test"][2].any()
for s in ("train", "val", "test"):
    assert not np.array_equal(a[s][0], c[s][0]), s + ": seeds 3 and 4 agree"
# split independence: d has fewer train/test samples than a but the same seed
assert np.array_equal(d["train"][0], a["train"][0][:120]) and np.array_equal(d["val"][0], a["val"][0])
assert np.array_equal(d["test"][0], a["test"][0][:7]) and np.array_equal(d["test"][1], a["test"][1][:7])
# labels roughly uniform over the 16 values (300 samples: each class expected ~19)
cnt = np.bincount(a["train"][1], minlength=16)
assert cnt.min() >= 5 and cnt.max() <= 40, cnt
# the several-filler configuration: uint16 tokens (vocab 1 + 40 + 7 + 230 = 278), several filler
# ids in use; its 2 shards hold exactly the unsharded samples
assert h5py.File("e.h5", "r")["train/tokens"].dtype == np.uint16
assert len(set(e["train"][0][:, :60].ravel().tolist()) & set(range(1, 41))) > 30
sh = [h5py.File("s-%05d-of-00002.h5" % k, "r") for k in range(2)]
for s in ("train", "val"):
    t = np.concatenate([h["%s/tokens" % s][:] for h in sh]).reshape(-1, 96)
    assert np.array_equal(t, e[s][0]), s + ": shards differ from the single file"
assert "test" not in h5py.File("e.h5", "r")

# --- the documented generator, re-implemented: Philox4x32-10, stream (seed, "recall", i, split) --
import os, sys
sys.path.insert(0, os.path.join(os.environ["SRC"], "tests"))
from lv_rng import Stream
def sample(seed, split, i, L, C, P, K, V, F, Q, R, X=0.0):
    st = Stream(seed, "recall", i, split)
    word, below = st.word, st.below
    def distinct(n):
        perm = list(range(n))
        for j in range(P):
            r = j + below(n - j)
            perm[j], perm[r] = perm[r], perm[j]
        return perm[:P]
    near = word() * 2.0**-32 < X and split == 0
    base = (L - Q) // C * C if near else 0
    slots = distinct((L - Q - base) // 2 if near else R * C // 2)
    keys = distinct(K)
    vals = [below(V) for _ in range(P)]
    q = below(P)
    x = [0] * L
    for s_, k_, v_ in zip(slots, keys, vals):
        x[base + 2 * s_], x[base + 2 * s_ + 1] = 1 + F + k_, 1 + F + K + v_
    for t in range(L - Q, L):
        x[t] = 1 + F + keys[q]
    for t in range(L):
        if x[t] == 0:
            x[t] = 1 + (below(F) if F > 1 else 0)
    return x, vals[q]
for path, res, seed, args in (("a.h5", a, 3, (256, 16, 8, 16, 16, 1, 16, 8)),
                              ("e.h5", e, 11, (96, 8, 5, 7, 230, 40, 3, 3)),   # R = (96-3)//8 - 9 + 1
                              ("n.h5", nr, 2, (256, 16, 6, 16, 16, 1, 1, 8, 0.4))):
    for s, split in (("train", 0), ("val", 1), ("test", 2)):
        if s not in res:
            continue
        near = np.nonzero(res[s][2])[0].tolist()
        for i in [0, 1, len(res[s][1]) - 1] + near[:3]:
            x, y = sample(seed, split, i, *args)
            assert np.array_equal(res[s][0][i], x) and res[s][1][i] == y, (path, s, i, "differs from the spec")
print("recall: all samples checked; generator matches the documented key layout")
EOF

# --- bad options: exit 2 and a message naming the option ---------------------------------------
bad() {
  local want="$1"; shift
  set +e; "$LONGVQ" data recall --out bad.h5 "$@" > /dev/null 2> bad.err; local rc=$?; set -e
  [ "$rc" = 2 ] && grep -q -- "$want" bad.err || { cat bad.err >&2; fail "$* -> exit $rc, want 2 and '$want'"; }
  [ ! -e bad.h5 ] || fail "$*: wrote a file"
}
bad "--min-distance-chunks" --seq-len 128 --chunk 16 --min-distance-chunks 8   # query chunk 7: no room
bad "--pairs" --pairs 17 --keys 16
bad "--pairs" --pairs 9 --keys 16 --pair-chunks 1 --chunk 16                    # 8 slots
bad "--pair-chunks" --pair-chunks 9
bad "--chunk" --chunk 7
bad "--seq-len" --seq-len 250
bad "--query-len" --query-len 256
bad "--train-near-fraction" --train-near-fraction 1.5
bad "--train-near-fraction" --train-near-fraction 0.5 --pairs 8 --query-len 1   # 7 slots before the query
bad "--train-near-fraction" --train-near-fraction 0.5 --pairs 1 --query-len 15  # no slot before the query
echo "data_recall: ok"
