# Bounded fuzz of the dataset reader (docs/dataset-format.md "Integrity"): random single-bit flips
# and truncations of a small version 2 dataset, fixed seed, each through `longvq inspect --verify`
# and (every 4th trial, and every trial inspect accepted) a 1-step train, each under `timeout 10`.
# Every run must end with exit 0 or 2: no crash, no hang, no sanitizer report; an exit 2 is one line
# naming the file; an exit 0 of inspect prints exactly what the undamaged file prints (so nothing,
# a split of zeros included, is read differently without an error).
# Before format version 2 (oldest HDF5 format, no metadata checksums, no digests), 20 of 200 flips
# crashed or hung inside HDF5 and two made a split read as zeros with --verify exiting 0.
# LONGVQ_FUZZ_TRIALS (default 200) and LONGVQ_FUZZ_SEED (default 1) change the run.
set -u
. "$SRC/tests/script_lib.sh"
: "${LONGVQ:?}" "${WORK:?}"
PY=/usr/bin/python3
rm -rf "$WORK" && mkdir -p "$WORK" && cd "$WORK"
export OMPI_MCA_ess_singleton_isolated=1 # one process, no helper daemon left behind by a timeout
tiny_listops lo.h5 32
check "the set to damage" '[ -s lo.h5 ]'

TRIALS=${LONGVQ_FUZZ_TRIALS:-200} SEED=${LONGVQ_FUZZ_SEED:-1} CONFIG="$SRC/configs/tiny.yaml" $PY - <<'EOF'
import os, random, re, shutil, subprocess, sys
B, trials, seed = os.environ["LONGVQ"], int(os.environ["TRIALS"]), int(os.environ["SEED"])
train = ["train", os.environ["CONFIG"], "train.steps=1", "train.warmup=0", "train.eval_every=0", "train.batch_size=4",
         "checkpoint.save_initial=false", "checkpoint.every=0"]
noise = re.compile(r"runtime error|Sanitizer|HDF5-DIAG|Segmentation|Aborted|core dumped|H5[A-Z][a-z_]*\(")

def run(args):
    r = subprocess.run(["timeout", "10", B] + args, capture_output=True, text=True)
    return r.returncode, r.stdout, r.stderr

def plain(text, path):  # inspect's output without timings and the file name
    return re.sub(r"\([0-9.]+ s, [0-9]+ MB/s\)", "", text).replace(path, "F")

good = open("lo.h5", "rb").read()
_, ref, _ = run(["inspect", "--verify", "lo.h5"])
ref = plain(ref, "lo.h5")
rng = random.Random(seed)
bad, counts = [], {}
for i in range(trials):
    data = bytearray(good)
    if i % 4 == 3:  # a truncation
        cut = rng.randrange(len(data)); data = data[:cut]; what = "cut at %d" % cut
    else:
        bit = rng.randrange(len(data) * 8); data[bit // 8] ^= 1 << (bit % 8); what = "bit %d" % bit
    path = "t%03d.h5" % i
    open(path, "wb").write(data)
    runs = [("inspect", ["inspect", "--verify", path])]
    rc, out, err = run(runs[0][1])
    results = [(rc, out, err)]
    if i % 4 == 0 or rc == 0:
        runs.append(("train", train + ["data.train=" + path, "data.val=" + path, "run.dir=run%03d" % i]))
        results.append(run(runs[1][1]))
        shutil.rmtree("run%03d" % i, ignore_errors=True)
    failed = len(bad)
    for (kind, _), (rc, out, err) in zip(runs, results):
        counts[(kind, rc)] = counts.get((kind, rc), 0) + 1
        why = None
        if rc == 124: why = "hung (killed after 10 s)"
        elif rc not in (0, 2): why = "exit %d" % rc
        elif noise.search(err): why = "crash or library noise"
        elif rc == 2 and (path not in err or (kind == "inspect" and len(err.strip().splitlines()) != 1)):
            why = "the message does not name the file in one line"
        elif rc == 0 and kind == "inspect" and plain(out, path) != ref: why = "read differently without an error"
        if why:
            bad.append("%s %s (%s): %s: %s" % (path, kind, what, why, err.strip()[-400:]))
    if len(bad) == failed: os.remove(path)
print("trials %d (seed %d): %s" % (trials, seed, ", ".join("%s exit %d: %d" % (k, rc, n) for (k, rc), n in sorted(counts.items()))))
for b in bad[:10]: print("FAIL", b)
sys.exit(1 if bad else 0)
EOF
rc=$?
check "every damaged file is exit 0 (read identically) or 2 (named), never a crash or a hang" '[ $rc = 0 ]'
echo "data_fuzz: $fail failed"
exit $fail
