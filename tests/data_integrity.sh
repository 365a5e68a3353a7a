# Integrity of datasets and sizes (docs/dataset-format.md "Integrity", "Limits"): every case is a
# reproduction; its comment says what the code before format version 2 did with it. Damaged or
# oversized inputs must end with exit 2 and one line naming the file (and object or field) and the
# limit; good files, old (version 1) files included, must load.
set -u
. "$SRC/tests/script_lib.sh"
: "${LONGVQ:?}" "${WORK:?}"
PY=/usr/bin/python3
rm -rf "$WORK" && mkdir -p "$WORK" && cd "$WORK"
export OMPI_MCA_ess_singleton_isolated=1 # one process, no helper daemon

# exit2 NAME CMD...: CMD exits 2 with one line on stderr and no crash or library noise; the line is in
# NAME.err for the pattern checks that follow.
exit2() {
  local name=$1; shift
  "$@" > "$name.out" 2> "$name.err"
  local rc=$?
  [ "$rc" = 2 ] && [ "$(wc -l < "$name.err")" = 1 ] && ! grep -qi "runtime error\|sanitizer\|HDF5-DIAG\|abort" "$name.err" ||
    { echo "  $name: exit $rc: $(head -c 600 "$name.err")"; return 1; }
}
TRAIN="$SRC/configs/tiny.yaml train.steps=1 train.warmup=0 train.eval_every=0 checkpoint.save_initial=false"

# mk.py VARIANT OUT: a small classification set as a user's h5py script writes it: format version 1,
# h5py's defaults (oldest HDF5 file format, variable-length strings), with one defect.
cat > mk.py <<'EOF'
import sys, h5py, numpy as np
variant, out = sys.argv[1], sys.argv[2]
tokens = np.array([1, 2, 3, 4, 5, 6, 7, 8, 9], dtype=np.uint8)
offsets, labels = np.array([0, 3, 5, 9], dtype=np.int64), np.array([0, 1, 2], dtype=np.uint8)
attrs = dict(format="longvq-dataset", format_version=1, task="classification", vocab_size=16, n_classes=3,
             generator="mk.py", options="", seed=0, sources="", shard_index=0, shard_count=1)
group = dict(n_samples=3, global_offset=0, n_samples_total=3, n_tokens=9, global_token_offset=0, n_tokens_total=9)
if variant == "huge_vocab": attrs["vocab_size"] = 2**31 - 1
if variant == "huge_classes": attrs["n_classes"] = 2**31 - 1
if variant == "many_classes": attrs["n_classes"] = 1000
if variant == "n_samples": group["n_samples"] = group["n_samples_total"] = 2**63 - 1
with h5py.File(out, "w") as f:
    for k, v in attrs.items(): f.attrs[k] = v
    g = f.create_group("train")
    kw = dict(chunks=True, compression="gzip", fletcher32=True)
    if variant == "huge_sample":  # one sample of 2^54 tokens, none stored: the file stays small
        n = 2**54
        group.update(n_samples=1, n_samples_total=1, n_tokens=n, n_tokens_total=n)
        g.create_dataset("tokens", shape=(n,), dtype=np.uint8, chunks=(65536,))
        offsets, labels = np.array([0, n], dtype=np.int64), np.array([1], dtype=np.uint8)
    elif variant == "sparse":  # tokens declared, never written: HDF5 reads its fill value, zeros
        g.create_dataset("tokens", shape=tokens.shape, dtype=tokens.dtype, **kw)
    else:
        g.create_dataset("tokens", data=tokens, **kw)
    for k, v in group.items(): g.attrs[k] = np.int64(v)
    g.create_dataset("offsets", data=offsets, **kw)
    g.create_dataset("labels", data=labels, **kw)
EOF
for v in good huge_sample n_samples huge_vocab huge_classes many_classes sparse; do $PY mk.py $v $v.h5; done
tiny_listops lo.h5 64

# ---- sizes (point 3) ----------------------------------------------------------------------------
# Before: inspect --verify sized its buffer as 256 x 2^54 x 4 bytes, which wraps to 0, and wrote past
# it (ASan: heap-buffer-overflow at trainer/cmd_inspect.c:81).
check "a sample of 2^54 tokens: exit 2 naming n_tokens and its limit" \
  'exit2 huge_sample "$LONGVQ" inspect --verify huge_sample.h5 &&
   grep -q "huge_sample.h5: /train: n_tokens 18014398509481984 is outside \[1, 1099511627776\]" huge_sample.err'
# Before: n_samples + 1 overflowed (UBSan: signed overflow at io/dataset.c:224), then the offsets
# loop read past its 4 entries (ASan: heap-buffer-overflow at io/dataset.c:233).
check "n_samples = INT64_MAX: exit 2 naming n_samples" \
  'exit2 n_samples "$LONGVQ" inspect n_samples.h5 &&
   grep -q "n_samples.h5: /train: n_samples 9223372036854775807 is outside \[1, 9\]" n_samples.err'
# Before: S x Z overflowed in the layout (UBSan: layers/params.c:34 and :40), then the state arena
# was allocated at a wrapped size (ASan: allocation-size-too-big).
check "model.codebook_size = INT64_MAX: exit 2 naming the key and its limit" \
  'exit2 codebook "$LONGVQ" train $TRAIN data.train=lo.h5 run.dir=r_cb model.codebook_size=9223372036854775807 &&
   grep -q "model.codebook_size: .9223372036854775807. is out of range: must be in \[1, 1048576\]" codebook.err'
check "model.d_model beyond its limit: exit 2" \
  'exit2 d_model "$LONGVQ" train $TRAIN data.train=lo.h5 run.dir=r_dm model.d_model=65537 &&
   grep -q "model.d_model: .65537. is out of range: must be in \[1, 65536\]" d_model.err'
# Before: accepted; train then asked for a 2^31 x 16 embedding and failed with exit 1, out of memory.
check "a dataset vocab of 2^31 - 1: exit 2 naming vocab_size and the limit" \
  'exit2 huge_vocab "$LONGVQ" train $TRAIN data.train=huge_vocab.h5 train.batch_size=2 run.dir=r_hv &&
   grep -q "huge_vocab.h5: vocab_size 2147483647 is outside \[1, 16777216\]" huge_vocab.err'
# Before: inspect printed a class-balance line for each of 2^31 - 1 classes (still going after 60 s).
check "n_classes 2^31 - 1: exit 2 naming n_classes and the limit" \
  'exit2 huge_classes timeout 60 "$LONGVQ" inspect huge_classes.h5 &&
   grep -q "huge_classes.h5: n_classes 2147483647 is more than the limit 16777216" huge_classes.err'
check "inspect caps what it prints: 64 class lines of 1000" \
  '"$LONGVQ" inspect many_classes.h5 > many.txt && grep -q "\.\.\. 936 more classes" many.txt &&
   [ "$(grep -cE "^ +[0-9]+ +[0-9]+ +[0-9.]+%" many.txt)" = 64 ]'
# Before: the memory plan of a 2^40-token micro-batch was computed and allocated: exit 1, out of memory.
# (bench's own matmul probe, a separate child, still reports that it has no memory for such a batch.)
check "a micro-batch too large to plan (bench, 2^40 tokens): the model refuses it, exit 2" \
  '"$LONGVQ" bench "$SRC/configs/bench.yaml" --tokens 1099511627776 --lengths 1099511627776 --quick > big.out 2>&1
   [ $? = 2 ] && grep -q "encoder L=1099511627776: the child process failed (exit code 2)" big.out &&
   grep -q "a micro-batch of 1 sequences x 1099511627776 tokens is too large to plan" big.out'
check "inspect --seq-len beyond data.seq_len's limit: exit 2" \
  'exit2 seqlen "$LONGVQ" inspect --verify --seq-len 16777217 good.h5 && grep -q "limit 16777216" seqlen.err'

# ---- the format (point 2) -----------------------------------------------------------------------
check "converters write HDF5's latest format (superblock 3: checksummed metadata)" \
  'h5dump -B -H lo.h5 | grep -q "SUPERBLOCK_VERSION 3"'
check "h5py reads version 2 and recomputes every digest (zlib.crc32 of the little-endian entries)" \
  '$PY - <<EOF
import h5py, zlib, numpy as np
f = h5py.File("lo.h5", "r")
assert f.attrs["format_version"] == 2 and f.attrs["format"] == b"longvq-dataset"
n = 0
for s in f:
    for a in f[s]:
        d = f[s][a]; v = d[:]
        assert zlib.crc32(v.astype(v.dtype.newbyteorder("<")).tobytes()) == d.attrs["crc32"], (s, a)
        n += 1
assert n == 9, n
EOF'
check "inspect --verify checks the digests" \
  '"$LONGVQ" inspect --verify lo.h5 > lo.txt && [ "$(grep -c "digests: 3 arrays, .* crc32 match" lo.txt)" = 3 ]'
check "a run checks the digests at start (data.verify) and says what it cost" \
  '"$LONGVQ" train $TRAIN data.train=lo.h5 data.val=lo.h5 run.dir=r_ok > ok.log 2>&1 &&
   grep -q "^data.train: split .train. verified: 3 arrays, .* MB, digests match (.* s, .* MB/s over 1 rank" ok.log'

# ---- a split read as zeros (point 2) ------------------------------------------------------------
# Before: tokens that the file declares but does not store read as zeros, valid ids: inspect
# --verify printed "verified: all 3 samples" and exited 0.
check "unstored tokens (they would read as zeros): exit 2, even in a version 1 file" \
  'exit2 sparse "$LONGVQ" inspect --verify sparse.h5 &&
   grep -q "sparse.h5: /train/tokens: 1 of its 1 chunks are not stored (they would read as zeros)" sparse.err'
$PY - <<'EOF'
import h5py, shutil
shutil.copy("lo.h5", "zeros.h5")   # the stored tokens of /train replaced by zeros, digests kept
with h5py.File("zeros.h5", "r+") as f:
    t = f["train/tokens"]; t[:] = 0
shutil.copy("lo.h5", "nodigest.h5")
with h5py.File("nodigest.h5", "r+") as f:
    del f["val/labels"].attrs["crc32"]
EOF
check "tokens rewritten as zeros: inspect --verify finds the digest mismatch" \
  'exit2 zeros "$LONGVQ" inspect --verify zeros.h5 &&
   grep -q "zeros.h5: /train/tokens: digest mismatch (crc32 [0-9a-f]* stored, [0-9a-f]* read): the file is damaged" zeros.err'
check "tokens rewritten as zeros: a run refuses to start, naming data.train" \
  'exit2 zeros_train "$LONGVQ" train $TRAIN data.train=zeros.h5 run.dir=r_z &&
   grep -q "^longvq: error: data.train: zeros.h5: /train/tokens: digest mismatch" zeros_train.err'
check "data.verify=false skips the check (and the zeros train)" \
  '"$LONGVQ" train $TRAIN data.train=zeros.h5 data.verify=false run.dir=r_zoff > zoff.log 2>&1 &&
   ! grep -q verified zoff.log'
check "a version 2 file without a digest: exit 2" \
  'exit2 nodigest "$LONGVQ" inspect nodigest.h5 && grep -q "nodigest.h5: /val/labels: attribute .crc32. is missing" nodigest.err'

# ---- old files (point 2) ------------------------------------------------------------------------
check "a version 1 file loads, with a note that it has no digests (inspect)" \
  '"$LONGVQ" inspect --verify good.h5 > good.txt &&
   grep -q "^format     longvq-dataset version 1 (no digests" good.txt && grep -q "digests: none" good.txt &&
   grep -q "verified: all 3 samples" good.txt'
check "a version 1 file trains, with the note" \
  '"$LONGVQ" train $TRAIN data.train=good.h5 train.batch_size=2 data.seq_len=8 model.chunk_size=8 run.dir=r_v1 > v1.log 2>&1 &&
   grep -q "^note: data.train: good.h5 is a version 1 dataset: it carries no digests" v1.log'
check "a version 2 file written with h5py as docs/dataset-format.md shows verifies" \
  '$PY - <<EOF && "$LONGVQ" inspect --verify user2.h5 > user2.txt && grep -q "digests: 3 arrays, .* crc32 match" user2.txt
import h5py, zlib, numpy as np
def put(g, name, values):
    d = g.create_dataset(name, data=values, chunks=True, compression="gzip", fletcher32=True)
    d.attrs["crc32"] = np.uint32(zlib.crc32(values.astype(values.dtype.newbyteorder("<")).tobytes()))
with h5py.File("user2.h5", "w", libver="latest") as f:
    for k, v in dict(format="longvq-dataset", format_version=2, task="classification", vocab_size=16, n_classes=3,
                     generator="user", options="", seed=0, sources="", shard_index=0, shard_count=1).items():
        f.attrs[k] = np.bytes_(v) if isinstance(v, str) else v
    g = f.create_group("train")
    for k, v in dict(n_samples=2, global_offset=0, n_samples_total=2, n_tokens=5, global_token_offset=0,
                     n_tokens_total=5).items():
        g.attrs[k] = v
    put(g, "tokens", np.array([3, 1, 4, 1, 5], dtype=np.uint8))
    put(g, "offsets", np.array([0, 2, 5], dtype=np.int64))
    put(g, "labels", np.array([2, 0], dtype=np.uint8))
EOF'

# ---- HDF5 failures name the file and the object (point 2) ---------------------------------------
# Before (version 1 file, its root B-tree or local heap damaged): exit 1 with the call site,
# "io/dataset.c:437: H5Literate(f, H5_INDEX_NAME, ...): wrong B-tree signature".
$PY - <<'EOF'
import h5py
def flip(src, out, at, bit=0x20):
    d = bytearray(open(src, "rb").read()); d[at] ^= bit; open(out, "wb").write(d)
d = open("good.h5", "rb").read()
flip("good.h5", "btree.h5", d.find(b"TREE") + 2)
flip("good.h5", "lheap.h5", d.find(b"HEAP") + 1)
with h5py.File("lo.h5", "r") as f:  # inside the checksummed object header of group /val
    addr = h5py.h5o.get_info(f["val"].id).addr
flip("lo.h5", "valhdr.h5", addr + 12, 0x01)
EOF
check "version 1, damaged root B-tree: exit 2 naming the file" \
  'exit2 btree "$LONGVQ" inspect btree.h5 && grep -q "btree.h5: /: cannot list its groups: wrong B-tree signature" btree.err'
check "version 1, damaged local heap: exit 2 naming the file" \
  'exit2 lheap "$LONGVQ" inspect lheap.h5 && grep -q "lheap.h5: /: cannot list its groups" lheap.err'
check "version 2, one bit of /val's object header: the checksum fails, exit 2 naming /val" \
  'exit2 valhdr "$LONGVQ" inspect valhdr.h5 && grep -q "valhdr.h5: /val: cannot open: incorrect metadata checksum" valhdr.err'
check "... and a run that reads /val says so too" \
  'exit2 valhdr_train "$LONGVQ" train $TRAIN data.train=valhdr.h5 data.val=valhdr.h5 run.dir=r_vh &&
   grep -q "valhdr.h5.*/val.*incorrect metadata checksum" valhdr_train.err'

# A FIFO given as a dataset (or to inspect) is refused, never opened: opening it would block forever.
mkfifo fifo.h5
timeout 20 "$LONGVQ" inspect fifo.h5 > fifo.log 2> fifo.err; rc=$?
check "a FIFO given to inspect: exit 2 (not a hang), not a regular file" '[ $rc -eq 2 ] && grep -q "fifo.h5: not a regular file" fifo.err'

echo "data_integrity: $fail failed"
exit $fail
