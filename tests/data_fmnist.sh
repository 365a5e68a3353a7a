# Fashion-MNIST from the real Debian files (dataset-fashion-mnist): every pixel and label of
# train / val (the last 5000 train images) / test compared with the raw IDX bytes, which the
# test reads itself (python gzip + struct), and the class balance of the test split (1000 each).
set -euo pipefail
: "${LONGVQ:?}" "${WORK:?}"
PY=/usr/bin/python3
DIR=/usr/share/datasets/fashion-mnist
rm -rf "$WORK" && mkdir -p "$WORK" && cd "$WORK"
fail() { echo "FAIL: $*" >&2; exit 1; }
[ -f "$DIR/train-images-idx3-ubyte.gz" ] || fail "$DIR: dataset-fashion-mnist is not installed"

"$LONGVQ" data fashion-mnist --out fm.h5 --shards 2 > convert.txt
"$LONGVQ" inspect 'fm-*-of-00002.h5' > inspect.txt
grep -q "split train: 55000 samples, 43120000 tokens" inspect.txt || fail "train size"
grep -q "split val: 5000 samples" inspect.txt && grep -q "split test: 10000 samples" inspect.txt || fail "val/test sizes"
grep -q "length: min 784, mean 784.0, max 784" inspect.txt || fail "lengths"
[ "$(sed -n '/^split test/,$p' inspect.txt | grep -c ' 1000  10.00%')" = 10 ] || fail "test class balance"
grep -q "Ankle boot" inspect.txt || fail "class names"

DIR="$DIR" $PY - <<'PYEOF'
import gzip, os, struct, h5py, numpy as np
d = os.environ["DIR"]
def idx(name, magic, ndim):
    raw = gzip.open(os.path.join(d, name)).read()
    m, = struct.unpack(">I", raw[:4]); assert m == magic, hex(m)
    dims = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    return np.frombuffer(raw[4 + 4 * ndim:], dtype=np.uint8).reshape(dims)
tri, trl = idx("train-images-idx3-ubyte.gz", 0x803, 3), idx("train-labels-idx1-ubyte.gz", 0x801, 1)
tei, tel = idx("t10k-images-idx3-ubyte.gz", 0x803, 3), idx("t10k-labels-idx1-ubyte.gz", 0x801, 1)
want = {"train": (tri[:55000], trl[:55000]), "val": (tri[55000:], trl[55000:]), "test": (tei, tel)}
shards = [h5py.File("fm-%05d-of-00002.h5" % k, "r") for k in range(2)]
f = shards[0]
assert f.attrs["task"] == b"classification" and f.attrs["vocab_size"] == 256 and f.attrs["n_classes"] == 10
assert b"train-images-idx3-ubyte.gz" in f.attrs["sources"]
for s, (img, lab) in want.items():
    toks = np.concatenate([g[s]["tokens"][:] for g in shards])
    labs = np.concatenate([g[s]["labels"][:] for g in shards])
    offs = shards[0][s]["offsets"][:]
    assert toks.dtype == np.uint8 and np.all(np.diff(offs) == 784), s
    assert np.array_equal(toks.reshape(-1, 28, 28), img), s + ": pixels differ"
    assert np.array_equal(labs, lab), s + ": labels differ"
# Spot checks spelled out: pixel (row 14, col 14) of three images, by raw byte offset.
raw = gzip.open(os.path.join(d, "train-images-idx3-ubyte.gz")).read()
for i in (0, 12345, 54999):
    assert shards[i >= 27500]["train/tokens"][(i - 27500 * (i >= 27500)) * 784 + 14 * 28 + 14] == raw[16 + i * 784 + 14 * 28 + 14]
print("fashion-mnist: all pixels and labels match the IDX files")
PYEOF
