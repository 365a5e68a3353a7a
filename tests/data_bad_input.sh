# Bad input, each case made here (h5py, python gzip, head -c): `longvq` must print exactly ONE
# line on stderr that names the offending file (and what is wrong), and exit with code 2.
set -euo pipefail
: "${LONGVQ:?}" "${WORK:?}"
PY=/usr/bin/python3
rm -rf "$WORK" && mkdir -p "$WORK" && cd "$WORK"
fail() { echo "FAIL: $*" >&2; exit 1; }
n_cases=0

# expect_error NAME PATTERN... -- CMD...: exit code 2, one stderr line, matching every PATTERN.
expect_error() {
  local name=$1; shift
  local pats=()
  while [ "$1" != "--" ]; do pats+=("$1"); shift; done
  shift
  set +e; "$@" > "$name.out" 2> "$name.err"; local rc=$?; set -e
  [ "$rc" = 2 ] || { cat "$name.err" >&2; fail "$name: exit code $rc, expected 2"; }
  [ "$(wc -l < "$name.err")" = 1 ] || { cat "$name.err" >&2; fail "$name: stderr is not one line"; }
  for p in "${pats[@]}"; do grep -q -- "$p" "$name.err" || { cat "$name.err" >&2; fail "$name: no '$p' in the message"; }; done
  grep -qi "segmentation\|abort\|HDF5-DIAG" "$name.err" && fail "$name: crash or library noise"
  echo "ok  $name: $(cat "$name.err")"
  n_cases=$((n_cases + 1))
}

# A valid small dataset, and variants with one defect each (mk.py VARIANT OUT).
cat > mk.py <<'EOF'
import sys, h5py, numpy as np
variant, out = sys.argv[1], sys.argv[2]
tokens = np.array([1, 2, 3, 4, 5, 6, 7, 8, 9], dtype=np.uint8)
offsets = np.array([0, 3, 5, 9], dtype=np.int64)
labels = np.array([0, 1, 2], dtype=np.uint8)
attrs = dict(format="longvq-dataset", format_version=1, task="classification", vocab_size=16, n_classes=3,
             generator="mk.py", options="", seed=0, sources="", shard_index=0, shard_count=1)
if variant == "format": attrs["format"] = "some-other-format"
if variant == "version": attrs["format_version"] = 3
if variant == "noformat": del attrs["format"]
if variant == "novocab": del attrs["vocab_size"]
if variant == "task": attrs["task"] = "regression"
if variant == "vocab": tokens[6] = 16          # sample 2, position 1
if variant == "negative": tokens = tokens.astype(np.int32); tokens[0] = -1
if variant == "label": labels[1] = 3
if variant == "empty": offsets = np.array([0, 3, 3, 9], dtype=np.int64)
if variant == "decreasing": offsets = np.array([0, 5, 3, 9], dtype=np.int64)
if variant == "offsets_end": offsets = np.array([0, 3, 5, 8], dtype=np.int64)
if variant == "float_tokens": tokens = tokens.astype(np.float32)
with h5py.File(out, "w") as f:
    for k, v in attrs.items(): f.attrs[k] = v
    g = f.create_group("train")
    for k, v in dict(n_samples=3, global_offset=0, n_samples_total=3, n_tokens=len(tokens),
                     global_token_offset=0, n_tokens_total=len(tokens)).items():
        g.attrs[k] = v
    kw = dict(chunks=True, compression="gzip", fletcher32=True)
    g.create_dataset("tokens", data=tokens, **kw)
    if variant != "nolabels": g.create_dataset("labels", data=labels, **kw)
    g.create_dataset("offsets", data=offsets, **kw)
    if variant == "shard3":
        f.attrs["shard_count"] = 3
EOF
$PY mk.py good good.h5
"$LONGVQ" inspect --verify good.h5 > good.txt || fail "the valid h5py-made file is rejected"
grep -q "verified: all 3 samples" good.txt || fail "good file not verified"

# --- HDF5 files ---------------------------------------------------------------------------------
"$LONGVQ" data listops --out real.h5 --train 40 --val 4 --test 4 --min-len 50 --max-len 300 > /dev/null
head -c $(($(stat -c %s real.h5) / 2)) real.h5 > truncated.h5
expect_error truncated "truncated.h5" "truncated" -- "$LONGVQ" inspect truncated.h5
head -c 100 real.h5 > stub.h5
expect_error truncated_superblock "stub.h5" -- "$LONGVQ" inspect stub.h5
echo "just some text" > text.h5
expect_error not_hdf5 "text.h5: not an HDF5 file" -- "$LONGVQ" inspect text.h5
expect_error no_file "missing.h5" "cannot read" -- "$LONGVQ" inspect missing.h5
expect_error no_glob_match "nomatch-\*.h5" "no file matches" -- "$LONGVQ" inspect 'nomatch-*.h5'
for v in format version noformat novocab task vocab negative label empty decreasing offsets_end float_tokens nolabels shard3; do
  $PY mk.py "$v" "$v.h5"
done
expect_error wrong_format "format.h5" "some-other-format" -- "$LONGVQ" inspect format.h5
expect_error wrong_version "version.h5" "version 3 is not supported" -- "$LONGVQ" inspect version.h5
expect_error no_format_attr "noformat.h5" "not a longvq dataset" -- "$LONGVQ" inspect noformat.h5
expect_error missing_attr "novocab.h5" "vocab_size" "missing" -- "$LONGVQ" inspect novocab.h5
expect_error bad_task "task.h5" "regression" -- "$LONGVQ" inspect task.h5
expect_error label_range "label.h5" "sample 1" "label 3 outside" -- "$LONGVQ" inspect label.h5
expect_error empty_sample "empty.h5" "sample 1" "is empty" -- "$LONGVQ" inspect empty.h5
expect_error offsets_decrease "decreasing.h5" "not monotonic" -- "$LONGVQ" inspect decreasing.h5
expect_error offsets_end "offsets_end.h5" "offsets end at 8" -- "$LONGVQ" inspect offsets_end.h5
expect_error float_tokens "float_tokens.h5" "not an integer dataset" -- "$LONGVQ" inspect float_tokens.h5
expect_error no_labels "nolabels.h5" "/train/labels is missing" -- "$LONGVQ" inspect nolabels.h5
expect_error missing_shards "shard3.h5" "3 shards" -- "$LONGVQ" inspect shard3.h5
# Token ids are only read at read time (never all at open): --verify reads every sample.
"$LONGVQ" inspect vocab.h5 > /dev/null || fail "open should not read tokens"
expect_error token_vocab "vocab.h5" "sample 2" "position 1" "token id 16 outside vocab_size 16" -- \
  "$LONGVQ" inspect --verify vocab.h5
expect_error token_negative "negative.h5" "sample 0" "token id -1" -- "$LONGVQ" inspect --verify negative.h5
expect_error too_long "good.h5" "sample 2" "4 tokens, more than the sequence length 3" -- \
  "$LONGVQ" inspect --verify --seq-len 3 good.h5
"$LONGVQ" inspect good.h5 real.h5 > /dev/null 2> mixed.err && fail "two different datasets accepted as shards"
grep -q "not a shard of the same dataset\|shard_count\|given twice" mixed.err || fail "mixed datasets message"

# A flipped byte inside the compressed tokens: fletcher32 catches it at read time (here while
# --verify reads the array for its digest).
cp real.h5 corrupt.h5
$PY - <<'EOF'
import h5py
with h5py.File("corrupt.h5", "r") as f:
    info = f["train/tokens"].id.get_chunk_info(0)
with open("corrupt.h5", "r+b") as g:
    g.seek(info.byte_offset + info.size // 2); b = g.read(1)
    g.seek(info.byte_offset + info.size // 2); g.write(bytes([b[0] ^ 0xFF]))
EOF
expect_error checksum "corrupt.h5" "/train/tokens" "Fletcher32" -- "$LONGVQ" inspect --verify corrupt.h5

# Shards: one missing, one given twice, shards of different datasets.
"$LONGVQ" data listops --out sh.h5 --shards 3 --train 30 --val 3 --test 3 --min-len 20 --max-len 200 > /dev/null
"$LONGVQ" data listops --out other.h5 --shards 3 --seed 9 --train 30 --val 3 --test 3 --min-len 20 --max-len 200 > /dev/null
expect_error shard_missing "sh-00000-of-00003.h5" "3 shards but 2 files" -- \
  "$LONGVQ" inspect sh-00000-of-00003.h5,sh-00002-of-00003.h5
expect_error shard_twice "shard 1 given twice" -- \
  "$LONGVQ" inspect sh-00000-of-00003.h5,sh-00001-of-00003.h5,sh-00001-of-00003.h5
expect_error shard_foreign "other-00001-of-00003.h5" "not a shard of the same dataset" -- \
  "$LONGVQ" inspect sh-00000-of-00003.h5,other-00001-of-00003.h5,sh-00002-of-00003.h5

# --- IDX (Fashion-MNIST) --------------------------------------------------------------------------
cat > mkidx.py <<'EOF'
import gzip, struct, sys, os
d, variant = sys.argv[1], sys.argv[2]
os.makedirs(d, exist_ok=True)
def write(name, magic, dims, payload, cut=None):
    raw = struct.pack(">I", magic) + b"".join(struct.pack(">I", x) for x in dims) + payload
    data = gzip.compress(raw)
    if cut: data = data[:cut]
    open(os.path.join(d, name), "wb").write(data)
n = 6
img = bytes((i * 7) % 256 for i in range(n * 784))
write("train-images-idx3-ubyte.gz", 0x803 if variant != "magic" else 0x802, [n, 28, 28], img,
      cut=60 if variant == "truncgz" else None)
write("train-labels-idx1-ubyte.gz", 0x801, [n if variant != "count" else n - 1],
      bytes(i % 10 for i in range(n if variant != "count" else n - 1)))
write("t10k-images-idx3-ubyte.gz", 0x803, [2, 28, 28 if variant != "dims" else 27], img[:2 * 784])
write("t10k-labels-idx1-ubyte.gz", 0x801, [2], bytes([3, 11 if variant == "label" else 4]))
if variant == "shortdata":
    write("t10k-images-idx3-ubyte.gz", 0x803, [3, 28, 28], img[:2 * 784])
if variant == "missing":
    os.remove(os.path.join(d, "t10k-labels-idx1-ubyte.gz"))
EOF
$PY mkidx.py idx_good good
"$LONGVQ" data fashion-mnist --dir idx_good --val 1 --out fm_small.h5 > /dev/null || fail "small IDX set"
for v in magic truncgz count dims label shortdata missing; do $PY mkidx.py "idx_$v" "$v"; done
expect_error idx_missing "idx_missing/t10k-labels-idx1-ubyte.gz" "cannot open" -- \
  "$LONGVQ" data fashion-mnist --dir idx_missing --out x.h5
expect_error idx_magic "idx_magic/train-images-idx3-ubyte.gz" "bad IDX magic number 0x00000802" -- \
  "$LONGVQ" data fashion-mnist --dir idx_magic --out x.h5
expect_error idx_truncated_gz "idx_truncgz/train-images-idx3-ubyte.gz" "truncated\|corrupt" -- \
  "$LONGVQ" data fashion-mnist --dir idx_truncgz --out x.h5
expect_error idx_count "idx_count/train-labels-idx1-ubyte.gz" "5 labels for 6 images" -- \
  "$LONGVQ" data fashion-mnist --dir idx_count --out x.h5
expect_error idx_dims "idx_dims/t10k-images-idx3-ubyte.gz" "28 x 27" -- \
  "$LONGVQ" data fashion-mnist --dir idx_dims --out x.h5
expect_error idx_label "idx_label/t10k-labels-idx1-ubyte.gz" "label 11" -- \
  "$LONGVQ" data fashion-mnist --dir idx_label --out x.h5
expect_error idx_short "idx_shortdata/t10k-images-idx3-ubyte.gz" "truncated" -- \
  "$LONGVQ" data fashion-mnist --dir idx_shortdata --out x.h5

# --- TSV and text -------------------------------------------------------------------------------
printf '0\tfine\n1\talso fine\nno tab on this line\n' > notab.tsv
expect_error tsv_no_tab "notab.tsv:3: no tab" -- "$LONGVQ" data tsv --train notab.tsv --out x.h5
printf '0\tfine\npositive\tword label\n' > wordlabel.tsv
expect_error tsv_int_label "wordlabel.tsv:2" "not an integer" -- "$LONGVQ" data tsv --train wordlabel.tsv --out x.h5
printf '0\tfine\n1\t\n' > emptytext.tsv
expect_error tsv_empty_text "emptytext.tsv:2" "empty text" -- "$LONGVQ" data tsv --train emptytext.tsv --out x.h5
expect_error tsv_missing "nothere.tsv" "cannot open" -- "$LONGVQ" data tsv --train nothere.tsv --out x.h5
expect_error text_missing "gone.txt" "cannot open" -- "$LONGVQ" data text --out x.h5 gone.txt
printf 'ab' > tiny.txt
expect_error text_too_small "tiny.txt" "split 'val'" -- "$LONGVQ" data text --out x.h5 tiny.txt

# --- command lines ----------------------------------------------------------------------------
expect_error unknown_option "unknown option '--bogus'" -- "$LONGVQ" data listops --out x.h5 --bogus
expect_error no_out "--out FILE.h5 is required" -- "$LONGVQ" data listops --train 5
expect_error bad_number "--train 'ten'" -- "$LONGVQ" data listops --out x.h5 --train ten
expect_error impossible_listops "widen the length range" -- \
  "$LONGVQ" data listops --out x.h5 --max-depth 1 --train 5 --val 0 --test 0
echo "data_bad_input: $n_cases error cases passed"
