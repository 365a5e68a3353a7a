#!/usr/bin/env bash
# `longvq inspect ckpt.h5`: the run fields, the config, one row per tensor whose L2 norms (param,
# exp_avg, exp_avg_sq) agree with h5py's, checksums and crc32 digests OK; a flipped byte in one moment's chunk makes
# that row FAILED, the summary name the dataset and the exit code 2; a truncated file exits 2.
set -u
fail=0
check() { if eval "$2"; then echo "ok   $1"; else echo "FAIL $1"; fail=$((fail+1)); fi; }
rm -rf "$WORK" && mkdir -p "$WORK" && cd "$WORK"
MPI="$MPIRUN --oversubscribe --bind-to none"
T="$CKPT_TEST"

$MPI -np 2 "$T" write . 7 zero > write.log 2>&1
check "checkpoint written by 2 ranks with ZeRO-1" '[ $? -eq 0 ] && [ -f ckpt_00000007.h5 ]'
"$LONGVQ" inspect ckpt_00000007.h5 > ok.out 2> ok.err
check "inspect exits 0" '[ $? -eq 0 ]'
cat ok.out | head -20
for pat in "^format +longvq-checkpoint version 1" "^step +7$" "^samples seen +7007$" "^seed +4242$" \
           "^world size +2$" "^zero +1 " "^restart count +0$" "^    d_model: 24$" "^checksums +OK \(" \
           "^digests +OK \(every dataset read matches its crc32\)$" \
           "^  layers\.1\.mixer\.ema\.delta +\(48, 4\) " "^  layers\.0\.mixer\.codebook\.c_sum +\(8, 8\) +[0-9.e+-]+ +- +- +ok +ok$"; do
  check "inspect prints /$pat/" 'grep -Eq "$pat" ok.out'
done
check "norms and shapes agree with h5py, one row per /model tensor" '/usr/bin/python3 - <<PY
import h5py, numpy as np, re
rows = {}
for line in open("ok.out"):
    m = re.match(r"  (\S+) +\(([0-9, ]+)\) +(\S+) +(\S+) +(\S+) +(ok|FAILED) +ok$", line)
    if m: rows[m.group(1)] = m.groups()
f = h5py.File("ckpt_00000007.h5", "r")
names = []
f["model"].visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
assert len(rows) == len(names) > 50, (len(rows), len(names))
for n in names:
    r = rows[n.replace("/", ".")]
    assert tuple(int(x) for x in r[1].split(",")) == f["model"][n].shape, n
    for k, g in enumerate(["model", "optimizer/exp_avg", "optimizer/exp_avg_sq"]):
        if g + "/" + n not in f:
            assert r[2 + k] == "-", (n, g); continue
        want = np.sqrt(np.sum(f[g][n][()].astype(np.float64) ** 2))
        assert abs(float(r[2 + k]) - want) <= 1e-5 * want, (n, g, r[2 + k], want)
print(len(names), "rows checked")
PY'

"$T" corrupt ckpt_00000007.h5 /optimizer/exp_avg/layers/1/mixer/mx_proj/weight bad.h5
"$LONGVQ" inspect bad.h5 > bad.out 2> bad.err; rc=$?
check "flipped byte: exit 2" '[ $rc -eq 2 ]'
check "flipped byte: the row says FAILED" 'grep -Eq "^  layers\.1\.mixer\.mx_proj\.weight .* FAILED +[0-9.e+-]+ +FAILED +ok$" bad.out'
check "flipped byte: summary counts it" 'grep -q "^checksums *FAILED in 1 of 158 datasets$" bad.out'
check "flipped byte: ... and names the tensor" 'grep -q "^first problem bad.h5: optimizer tensor exp_avg of layers.1.mixer.mx_proj.weight cannot be read (checksum" bad.out'
check "flipped byte: one error line on stderr" '[ $(wc -l < bad.err) -eq 1 ] && grep -q "bad.h5" bad.err'
head -c 50000 ckpt_00000007.h5 > trunc.h5
"$LONGVQ" inspect trunc.h5 > trunc.out 2> trunc.err; rc=$?
check "truncated: exit 2, names the file" '[ $rc -eq 2 ] && grep -q "trunc.h5" trunc.err'
cat trunc.err

echo "ckpt_inspect: $fail failure(s)"
[ $fail -eq 0 ]
