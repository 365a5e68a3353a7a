#!/usr/bin/env bash
# Checkpoints are plain h5py: tests/load_checkpoint.py (Debian's /usr/bin/python3) loads one written
# by 2 ranks with random ranges as a PyTorch-style state dict and checks every name, shape and value
# against the writer's manifest and every dataset's crc32 digest with zlib; the snippet in
# docs/checkpoints.md runs as printed.
set -u
fail=0
check() { if eval "$2"; then echo "ok   $1"; else echo "FAIL $1"; fail=$((fail+1)); fi; }
rm -rf "$WORK" && mkdir -p "$WORK" && cd "$WORK"
MPI="$MPIRUN --oversubscribe --bind-to none"
$MPI -np 2 "$CKPT_TEST" write . 5 cut > write.log 2>&1
check "checkpoint written" '[ $? -eq 0 ] && [ -f ckpt_00000005.h5 ] && [ -f manifest_5.txt ]'
/usr/bin/python3 "$SRC/tests/load_checkpoint.py" ckpt_00000005.h5 --manifest manifest_5.txt > py.log 2>&1
check "load_checkpoint.py: names, shapes, values, moments, metadata, crc32 digests" '[ $? -eq 0 ] && grep -q "^digests: every dataset matches its crc32" py.log'
cat py.log
# The documented snippet, extracted from the first python block of docs/checkpoints.md.
sed -n '/^```python/,/^```/p' "$SRC/docs/checkpoints.md" | sed '1d;$d' | awk 'BEGIN{n=0} /^```/{exit} {print}' > snippet.py
check "docs snippet extracted" '[ -s snippet.py ]'
CKPT=ckpt_00000005.h5 /usr/bin/python3 - > snip.log 2>&1 <<'PY'
import os
src = open("snippet.py").read().replace('"run/ckpt_00001000.h5"', repr(os.environ["CKPT"]))
ns = {}
exec(src, ns)
sd = ns["state_dict"]
assert sd["embed.weight"].shape == (30, 24), sd["embed.weight"].shape
assert sd["layers.1.mixer.codebook.c_sum"].shape == (8, 8)
print("snippet:", len(sd), "tensors")
PY
check "docs snippet runs and gives the state dict" '[ $? -eq 0 ]'
cat snip.log

echo "ckpt_python: $fail failure(s)"
[ $fail -eq 0 ]
