#!/usr/bin/env bash
# Integrity end to end with `longvq train/eval/inspect` (issue "Integrity", points 1, 2 and 7):
#  - checkpoints and model files carry a crc32 per dataset that h5py verifies, in the HDF5 1.10 format;
#  - a whole chunk zeroed together with its fletcher32 (which then passes) in the newest checkpoint:
#    inspect exits 2 naming the tensor, resume=auto warns naming file and tensor and falls back to
#    the previous checkpoint; in a model file: eval and train.init_from refuse it;
#  - files written before digests still load (with a note), inspect says they carry none;
#  - a FIFO named like a checkpoint does not block resume=auto (skipped with a warning); a FIFO or a
#    directory named like a checkpoint this run will write is refused before training starts.
# Every command runs under `timeout`: a hang is a failure, not a stuck test.
set -u
. "$SRC/tests/script_lib.sh"
rm -rf "$WORK" && mkdir -p "$WORK" && cd "$WORK"
singleton_env
DMG="/usr/bin/python3 $SRC/tests/ckpt_damage.py"
tiny_listops lo.h5
CFG="$SRC/configs/tiny.yaml data.train=lo.h5 data.val=lo.h5 train.eval_every=0 checkpoint.every=2 checkpoint.keep=10"
run() { local log=$1; shift; timeout -k 5 30 "$LONGVQ" "$@" > "$log" 2>&1; }
inspect() { timeout -k 5 30 "$LONGVQ" inspect "$2" > "$1.out" 2> "$1.err"; }

run r.log train $CFG run.dir=r train.steps=6
check "a run writes checkpoints 2, 4, 6 and its model files" '[ $? -eq 0 ] && [ -f r/ckpt_00000006.h5 ] && [ -f r/model_final.h5 ]'
/usr/bin/python3 - r/ckpt_00000004.h5 r/model_final.h5 r/model_step0.h5 > digests.log 2>&1 <<PY
import sys
sys.path.insert(0, "$SRC/tests")
from load_checkpoint import verify_digests
for path in sys.argv[1:]:
    bad = verify_digests(path)
    print(path + ":", bad or "every dataset matches its crc32 (h5py + zlib)")
    assert not bad
PY
check "h5py reads both kinds of file and zlib.crc32 matches every dataset's digest" '[ $? -eq 0 ]'
cat digests.log
check "both are in the HDF5 1.10 format (superblock version 3: checksummed metadata)" \
  'h5dump -B -H r/ckpt_00000006.h5 | grep -q "SUPERBLOCK_VERSION 3" && h5dump -B -H r/model_final.h5 | grep -q "SUPERBLOCK_VERSION 3"'

# A zeroed chunk in the newest checkpoint: inspect, then resume=auto falls back to step 4.
cp -r r z
$DMG zero z/ckpt_00000006.h5 /optimizer/exp_avg/layers/1/ffn/fc1/weight
inspect zi z/ckpt_00000006.h5; rc=$?
check "zeroed chunk: inspect exits 2" '[ $rc -eq 2 ]'
check "zeroed chunk: inspect marks the tensor's digest BAD" 'grep -q "^  layers.1.ffn.fc1.weight .* ok  *BAD$" zi.out'
check "zeroed chunk: ... and names it on stderr" 'grep -q "^longvq: error: z/ckpt_00000006.h5: optimizer tensor exp_avg of layers.1.ffn.fc1.weight does not match its crc32 digest" zi.err'
grep -E "^(checksums|digests|first problem)" zi.out
run zr.log train $CFG run.dir=z train.steps=8 checkpoint.resume=auto; rc=$?
check "zeroed chunk: resume=auto warns naming file and tensor" 'grep -q "warning: skipping checkpoint: z/ckpt_00000006.h5: optimizer tensor exp_avg of layers.1.ffn.fc1.weight does not match its crc32 digest" zr.log'
check "zeroed chunk: ... falls back to the previous checkpoint and finishes" '[ $rc -eq 0 ] && grep -q "resumed from z/ckpt_00000004.h5" zr.log'

# Model files: eval and init_from refuse a zeroed chunk.
cp r/model_final.h5 bad_model.h5
$DMG zero bad_model.h5 /model/layers/0/mixer/mx_proj/weight
run ze.log eval $CFG --model bad_model.h5; rc=$?
check "zeroed chunk in a model file: eval exits 2 naming the tensor" '[ $rc -eq 2 ] && grep -q "bad_model.h5: tensor layers.0.mixer.mx_proj.weight does not match its crc32 digest" ze.log'
run zf.log train $CFG run.dir=zf train.steps=2 train.init_from=bad_model.h5; rc=$?
check "zeroed chunk in a model file: train.init_from exits 2 naming it" '[ $rc -eq 2 ] && grep -q "train.init_from: bad_model.h5: tensor layers.0.mixer.mx_proj.weight does not match" zf.log'

# Files written before digests load, with a note; inspect says they carry none.
cp r/model_final.h5 old_model.h5 && $DMG strip old_model.h5
run oe.log eval $CFG --model old_model.h5; rc=$?
check "a model file without digests: eval works, with a note" '[ $rc -eq 0 ] && grep -q "note: old_model.h5 carries no crc32 digests" oe.log'
mkdir o && cp r/ckpt_00000004.h5 o/ && $DMG strip o/ckpt_00000004.h5
inspect oi o/ckpt_00000004.h5; rc=$?
check "a checkpoint without digests: inspect exits 0 and says so" '[ $rc -eq 0 ] && grep -q "^digests  *none: the file predates them" oi.out && grep -q "^  embed.weight .* ok  *none$" oi.out'
run or.log train $CFG run.dir=o train.steps=6 checkpoint.resume=auto; rc=$?
check "a checkpoint without digests: resume works, with a note" '[ $rc -eq 0 ] && grep -q "resumed from o/ckpt_00000004.h5" or.log && grep -q "note: o/ckpt_00000004.h5 carries no crc32 digests" or.log'

# Odd run-dir entries.
cp -r r f && mkfifo f/ckpt_00000099.h5
run f1.log train $CFG run.dir=f train.steps=8 checkpoint.resume=auto; rc=$?
check "a FIFO named ckpt_00000099.h5: resume=auto does not block, warns and resumes from step 6" '[ $rc -eq 0 ] && grep -q "warning: ignoring f/ckpt_00000099.h5: a FIFO, not a regular file" f1.log && grep -q "resumed from f/ckpt_00000006.h5" f1.log'
mkfifo f/ckpt_00000010.h5
lines=$(wc -l < f/metrics.jsonl)
run f2.log train $CFG run.dir=f train.steps=10 checkpoint.resume=auto; rc=$?
check "a FIFO named like a checkpoint this run writes: refused before training (exit 2)" '[ $rc -eq 2 ] && grep -q "longvq: error: run.dir: f/ckpt_00000010.h5 is a FIFO, not a regular file, and this run may save its step-10 checkpoint under that name" f2.log && [ $(wc -l < f/metrics.jsonl) -eq $lines ]'
rm f/ckpt_00000010.h5 && mkdir f/ckpt_00000010.h5
run f3.log train $CFG run.dir=f train.steps=10 checkpoint.resume=auto; rc=$?
check "a directory named like the next checkpoint: refused before training (exit 2)" '[ $rc -eq 2 ] && grep -q "f/ckpt_00000010.h5 is a directory, not a regular file" f3.log && ! grep -q "\"step\": 9," f/metrics.jsonl'
grep error f3.log
rmdir f/ckpt_00000010.h5
run f4.log train $CFG run.dir=f train.steps=10 checkpoint.resume=auto; rc=$?
check "... once it is moved away the run continues to step 10" '[ $rc -eq 0 ] && [ -f f/ckpt_00000010.h5 ] && [ -p f/ckpt_00000099.h5 ]'

echo "ckpt_integrity: $fail failure(s)"
[ $fail -eq 0 ]
