# `longvq data` and `longvq inspect` end to end: help texts; listops determinism (same seed ->
# byte-identical files, other seed -> other content); shards hold exactly the unsharded samples;
# text and tsv converters; h5dump and h5py read what we write.
set -euo pipefail
: "${LONGVQ:?}" "${WORK:?}"
PY=/usr/bin/python3
rm -rf "$WORK" && mkdir -p "$WORK" && cd "$WORK"
fail() { echo "FAIL: $*" >&2; exit 1; }

# --- help ---------------------------------------------------------------------------------------
"$LONGVQ" data --help | grep -q "fashion-mnist" || fail "data --help lists no kinds"
kinds=$("$LONGVQ" data --help | sed -nE 's/^  ([a-z-]+) .*/\1/p')
[ "$(echo $kinds)" = "listops fashion-mnist text tsv recall mqar" ] || fail "data --help kinds: $kinds"
for k in $kinds; do
  "$LONGVQ" data "$k" --help | grep -q -- "--shards" || fail "data $k --help"
  "$LONGVQ" --help | grep -E "^  data .*\b$k\b" > /dev/null || fail "longvq --help does not list the converter $k"
done
"$LONGVQ" inspect --help | grep -q -- "--verify" || fail "inspect --help"
set +e; "$LONGVQ" data nosuchkind 2>/dev/null; rc=$?; set -e
[ "$rc" = 2 ] || fail "unknown kind: exit $rc"

# --- listops: determinism ---------------------------------------------------------------------
OPTS="--train 150 --val 12 --test 10 --min-len 100 --max-len 700"
"$LONGVQ" data listops --out a.h5 --seed 5 $OPTS > /dev/null
"$LONGVQ" data listops --out sub/b.h5 --seed 5 $OPTS > /dev/null
"$LONGVQ" data listops --out c.h5 --seed 6 $OPTS > /dev/null
cmp -s a.h5 sub/b.h5 || fail "same seed, different files"
set +e; "$LONGVQ" data listops --out a.h5 --seed 5 $OPTS > /dev/null 2> over.err; rc=$?; set -e
[ "$rc" = 2 ] && grep -q "a.h5: exists" over.err || fail "overwrote an existing file (exit $rc)"
"$LONGVQ" data listops --out a.h5 --seed 5 $OPTS --force > /dev/null
cmp -s a.h5 sub/b.h5 || fail "--force rewrite differs"

# --- listops: 4 shards equal the single file ----------------------------------------------------
"$LONGVQ" data listops --out s.h5 --seed 5 $OPTS --shards 4 > /dev/null
for k in 0 1 2 3; do [ -f "s-0000$k-of-00004.h5" ] || fail "missing shard $k"; done

# Strings are fixed-length UTF-8 (format version 2): h5py returns bytes.
$PY - <<'EOF'
import h5py, numpy as np, sys
a, c = h5py.File("a.h5", "r"), h5py.File("c.h5", "r")
assert a.attrs["format"] == b"longvq-dataset" and a.attrs["format_version"] == 2, dict(a.attrs)
assert a.attrs["task"] == b"classification" and a.attrs["vocab_size"] == 16 and a.attrs["n_classes"] == 10
assert a.attrs["seed"] == 5 and b"--min-len 100" in a.attrs["options"], a.attrs["options"]
voc = [t.decode() for t in a.attrs["vocab_tokens"]]
assert voc[11] == "[MIN" and voc[15] == "]" and voc[0] == "<pad>", voc
assert a["train/tokens"].dtype == np.uint8 and a["train/offsets"].dtype == np.int64
assert a["train/labels"].dtype == np.uint8
assert a["train/tokens"].fletcher32 and a["train/tokens"].compression == "gzip"
assert not np.array_equal(a["train/labels"][:], c["train/labels"][:]) or \
       not np.array_equal(a["train/tokens"][:200], c["train/tokens"][:200]), "seeds 5 and 6 agree"
shards = [h5py.File("s-%05d-of-00004.h5" % k, "r") for k in range(4)]
for split, n in (("train", 150), ("val", 12), ("test", 10)):
    g = a[split]
    assert g.attrs["n_samples"] == n and len(g["labels"]) == n
    off = g["offsets"][:]
    assert off[0] == 0 and np.all(np.diff(off) > 0) and off[-1] == len(g["tokens"])
    lens = np.diff(off)
    assert lens.min() > 100 and lens.max() < 700, (lens.min(), lens.max())
    toks, labs, offs, start = [], [], [0], 0
    for k, s in enumerate(shards):
        h = s[split]
        assert s.attrs["shard_index"] == k and s.attrs["shard_count"] == 4
        assert h.attrs["global_offset"] == start and h.attrs["n_samples_total"] == n
        start += h.attrs["n_samples"]
        toks.append(h["tokens"][:]); labs.append(h["labels"][:])
        offs.extend((h["offsets"][1:] + offs[-1]).tolist())
    assert start == n
    assert np.array_equal(np.concatenate(toks), g["tokens"][:]), split
    assert np.array_equal(np.concatenate(labs), g["labels"][:]), split
    assert np.array_equal(np.array(offs), off), split
print("h5py checks ok")
EOF

"$LONGVQ" inspect a.h5 --verify > a.txt
"$LONGVQ" inspect 's-*-of-00004.h5' --verify > s.txt
grep -q "4 shards" s.txt || fail "inspect of the shards"
grep -q "split train: 150 samples" a.txt || fail "inspect sizes"
grep -q "class balance" a.txt && grep -q "length histogram" a.txt || fail "inspect sections"
grep -q "verified: all 150 samples" a.txt || fail "inspect --verify"
# Everything from the first split on is a function of the samples: identical for both (but the
# digests line: one set of arrays per shard, and timings).
diff <(sed -n '/^split /,$p' a.txt | grep -v digests:) <(sed -n '/^split /,$p' s.txt | grep -v digests:) ||
  fail "inspect differs sharded/unsharded"
grep -q "digests: 12 arrays, .* crc32 match" s.txt || fail "inspect --verify checks the digests of every shard"

# --- interoperability: h5dump -------------------------------------------------------------------
h5dump -H a.h5 > dump.txt || fail "h5dump -H failed"
grep -q '"format"' dump.txt && grep -q 'DATASET "tokens"' dump.txt || fail "h5dump header content"
h5dump -p -H -d /train/tokens a.h5 | grep -q "CHECKSUM FLETCHER32\|FLETCHER32" || fail "h5dump: no fletcher32"
h5dump -d /val/labels a.h5 > /dev/null || fail "h5dump cannot read data"

# --- text (LM) ----------------------------------------------------------------------------------
head -c 3000 /dev/urandom | base64 > t1.txt
printf 'second file\nwith \xc3\xa9 UTF-8 and \x01 bytes\n' > t2.txt
"$LONGVQ" data text --out t.h5 --val-fraction 0.1 --test-fraction 0.05 --shards 2 t1.txt t2.txt > /dev/null
"$LONGVQ" inspect 't-*-of-00002.h5' --seq-len 16 --verify > t.txt
grep -q "task       lm, vocab 256" t.txt || fail "text: inspect task"
grep -q "windows of seq_len 16" t.txt || fail "text: windows"
$PY - <<'EOF'
import h5py, numpy as np
raw = np.frombuffer(open("t1.txt", "rb").read() + open("t2.txt", "rb").read(), dtype=np.uint8)
got = {}
for k in range(2):
    f = h5py.File("t-%05d-of-00002.h5" % k, "r")
    assert f.attrs["task"] == b"lm" and f.attrs["n_classes"] == 0 and f.attrs["vocab_size"] == 256
    assert f.attrs["sources"] == b"t1.txt\nt2.txt"
    for s in ("train", "val", "test"):
        got.setdefault(s, []).append(f[s]["tokens"][:])
parts = [np.concatenate(got[s]) for s in ("train", "val", "test")]
T = len(raw)
assert len(parts[2]) == int(T * 0.05) and len(parts[1]) == int(T * 0.1), [len(p) for p in parts]
assert np.array_equal(np.concatenate(parts), raw)
print("text checks ok")
EOF

# --- tsv (classification) -----------------------------------------------------------------------
printf 'label\ttext\n1\thello world\n0\tsecond\twith a tab\r\n\n2\tthird\n1\tx\n' > tr.tsv
printf 'l\tt\n0\tvalidation line\n' > va.tsv
"$LONGVQ" data tsv --out int.h5 --train tr.tsv --val va.tsv --skip-header > /dev/null
printf 'pos\tgood film\nneg\tbad film\npos\tgreat\nneutral\tok\n' > names.tsv
"$LONGVQ" data tsv --out names.h5 --train names.tsv --label-kind name --val-fraction 0.5 --seed 3 > /dev/null
"$LONGVQ" inspect names.h5 --verify > names.txt
$PY - <<'EOF'
import h5py, numpy as np
f = h5py.File("int.h5", "r")
assert f.attrs["n_classes"] == 3 and list(f) == ["train", "val"]
g = f["train"]; t = g["tokens"][:].tobytes(); o = g["offsets"][:]
texts = [t[o[i]:o[i + 1]] for i in range(len(o) - 1)]
assert texts == [b"hello world", b"second\twith a tab", b"third", b"x"], texts
assert g["labels"][:].tolist() == [1, 0, 2, 1]
assert f["val/tokens"][:].tobytes() == b"validation line"
n = h5py.File("names.h5", "r")
assert list(n.attrs["class_names"]) == [b"neg", b"neutral", b"pos"], list(n.attrs["class_names"])
labels = np.concatenate([n[s]["labels"][:] for s in n])
assert sorted(labels.tolist()) == [0, 1, 2, 2] and n["train"].attrs["n_samples"] >= 1 and "val" in n
print("tsv checks ok")
EOF
grep -q "neutral" names.txt || fail "inspect shows class names"
echo "data_cli: all checks passed"
