#!/usr/bin/env bash
# Projections on a simulated cluster (launch/project.sh, launch/sim/skeleton.c; docs/scaling.md#projections).
# Needs the skeleton (cmake -DLONGVQ_SIM=ON; launch/test.sh installs SimGrid and turns it on): this
# test is only registered then, and fails, never skips, when something is missing.
#   1. `longvq profile` of the tiny model at 4 ranks: a valid longvq-profile/1 file whose grad-ready
#      events go down to 0 and whose layout covers the padded buffers;
#   2. bytes: the reducer's real byte count (metrics comm_bytes of a 4-rank training) = the profile's
#      bytes_per_step = the skeleton's simulated bytes per rank at 4 ranks (same code: reducer_layout);
#   3. a 4- and 64-node projection (ib100 and eth25): every point ok, the report in the sweep's format;
#   4. properties: more bandwidth never makes a step slower (10 .. 400 Gb/s, 4 and 64 nodes); with an
#      infinitely fast network exposed communication is 0; the sampled ring (64+ ranks) against the
#      full ring; SMPI's own collectives against the ring; the textbook alpha-beta cost of ring
#      reduce-scatter + all-gather on the flat network at 2, 4, 16, 64 ranks;
#   5. bad input: exit 2 with a message.
set -u
. "$SRC/tests/script_lib.sh"
rm -rf "$WORK" && mkdir -p "$WORK" && cd "$WORK" || exit 1
export LONGVQ_SKELETON=${LONGVQ_SKELETON:-$(dirname "$LONGVQ")/launch/sim/skeleton}
PROJECT=(/usr/bin/python3 "$SRC/launch/project.py")
check "skeleton built (cmake -DLONGVQ_SIM=ON)" '[ -x "$LONGVQ_SKELETON" ]'
check "smpirun on PATH (libsimgrid-dev)" 'command -v smpirun >/dev/null'
tiny_listops lo.h5
# the dataset's vocabulary and classes, so that profile (no dataset) builds the trained model
TINY=("$SRC/configs/tiny.yaml" data.train=lo.h5 data.val=lo.h5 data.seq_len=64 model.vocab_size=16 model.n_classes=10
      dist.bucket_mb=0.004)
json() { /usr/bin/python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"; }

# 1. the profile
OMP_NUM_THREADS=1 "$LONGVQ" profile "${TINY[@]}" --ranks 4 --steps 2 --warmup 1 --out prof4.json > prof.log 2>&1
rc=$?
check "profile exit 0" '[ $rc = 0 ]'
check "profile: format, events down to 0, layout tiling the padded buffers" '/usr/bin/python3 - prof4.json <<EOF
import json, sys
d = json.load(open(sys.argv[1]))
assert d["format"] == "longvq-profile/1"
ev = d["backward_events"]  # head, layer n-1 .. 0, embedding: lo decreasing to 0, times increasing
assert len(ev) == 2 + d["model"]["n_layers"] and ev[-1]["lo"] == 0, ev
assert all(a["lo"] > b["lo"] and a["t_s"] <= b["t_s"] for a, b in zip(ev, ev[1:])), ev
r = d["reducer"]; b = r["buckets"]
assert b[0]["f64"] == 1 and b[0]["hi"] >= r["n_stat"] and len(b) > 2, b   # statistics first, several buckets
assert b[1]["hi"] >= r["n_grad"] and b[-1]["lo"] == 0 and all(x["lo"] == y["hi"] for x, y in zip(b[1:], b[2:]))
assert all((x["hi"] - x["lo"]) % (16 * r["world"]) == 0 for x in b)
EOF'

# 2. bytes: real reducer, profile, skeleton
MPI="$MPIRUN --oversubscribe --bind-to none -x OMP_NUM_THREADS=1"
$MPI -np 4 "$LONGVQ" train "${TINY[@]}" run.dir=real4 train.steps=2 train.eval_every=0 checkpoint.every=0 \
  > real4.log 2>&1
check "4-rank training ran" '[ $? = 0 ] && [ -s real4/metrics.jsonl ]'
real=$(/usr/bin/python3 -c "import json; print([json.loads(l) for l in open('real4/metrics.jsonl') if '\"comm_bytes\"' in l][-1]['comm_bytes'])")
prof=$(json prof4.json 'd["reducer"]["bytes_per_step"]')
"${PROJECT[@]}" prof4.json --network ib100 --nodes 4 --out bytes > bytes.log 2>&1
sim=$(/usr/bin/python3 -c "import csv; print(next(csv.DictReader(open('bytes/scaling.csv')))['comm_bytes'])")
echo "bytes per rank and step: real reducer $real, profile $prof, simulated $sim"
check "real bytes = profile bytes = simulated bytes" '[ -n "$real" ] && [ "${real%.*}" = "$prof" ] && [ "$sim" = "$prof" ]'

# 3. projections of the tiny model at 4 and 64 nodes on both networks
for net in ib100 eth25; do
  "${PROJECT[@]}" prof4.json --network $net --nodes "4 64" --out p_$net > p_$net.log 2>&1
  check "projection $net exit 0" '[ $? = 0 ]'
  check "projection $net: 2 points ok, csv in the sweep format" '/usr/bin/python3 - p_$net/scaling.csv "$SRC/launch" <<EOF
import csv, sys
sys.path.insert(0, sys.argv[2]); import scaling_report as sr
rows = list(csv.reader(open(sys.argv[1])))
assert rows[0] == sr.COLUMNS, rows[0]
d = [dict(zip(rows[0], r)) for r in rows[1:]]
assert [r["status"] for r in d] == ["ok", "ok"] and [r["nodes"] for r in d] == ["4", "64"], d
assert all(float(r["step_s"]) > 0 and r["launcher"] == "simgrid" for r in d)
EOF'
  check "projection $net: markdown and png" '[ -s p_$net/scaling.md ] && [ -s p_$net/scaling.png ]'
done
step() { /usr/bin/python3 -c "import csv,sys; print(' '.join(r['$2'] for r in csv.DictReader(open(sys.argv[1]))))" "$1/scaling.csv"; }

# 4. properties. A larger model's profile (same events, 2M parameters, 1 MiB buckets) makes the
# network matter.
/usr/bin/python3 - prof4.json big.json <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
d["reducer"].update(n_grad=2_000_000, bucket_mb=1)
n = d["model"]["params"]
for e in d["backward_events"]:
    e["lo"] = int(e["lo"] * 2_000_000 / n)
json.dump(d, open(sys.argv[2], "w"))
EOF
prev=""
for gbps in 10 25 100 400; do
  "${PROJECT[@]}" big.json --network eth25 --link-gbps $gbps --nodes "4 64" --out bw$gbps > bw$gbps.log 2>&1
  cur=$(step bw$gbps step_s)
  echo "step at $gbps Gb/s (4, 64 nodes): $cur"
  [ -n "$prev" ] && check "more bandwidth ($gbps Gb/s) never slower" \
    "/usr/bin/python3 -c 'import sys; a, b = sys.argv[1].split(), sys.argv[2].split(); sys.exit(not (len(a) == len(b) == 2 and all(float(y) <= float(x) for x, y in zip(a, b))))' '$prev' '$cur'"
  prev=$cur
done
"${PROJECT[@]}" big.json --network ib100 --link-gbps 1e9 --link-lat-us 0 --loopback-gbs 1e9 --loopback-lat-us 0 \
  --nodes "4 64" --out inf > inf.log 2>&1
echo "exposed with an infinitely fast network (4, 64 nodes): $(step inf exposed_comm_s)"
check "infinitely fast network: exposed communication 0 (< 1 ns)" \
  "/usr/bin/python3 -c 'import sys; v = sys.argv[1].split(); sys.exit(not (len(v) == 2 and all(float(x) < 1e-9 for x in v)))' '$(step inf exposed_comm_s)'"
# the sampled ring (beyond 64 ranks; here forced at 64) against every step simulated (bw25: eth25 at 25 Gb/s)
"${PROJECT[@]}" big.json --network eth25 --nodes 64 --ring-sample 8 --ring-full-upto 0 --out sampled > sampled.log 2>&1
echo "comm at 64 nodes, eth25: full ring $(step bw25 comm_s | cut -d' ' -f2), sampled (8 steps) $(step sampled comm_s)"
check "sampled ring within 3% of the full ring" \
  "/usr/bin/python3 -c 'import sys; a, b = map(float, sys.argv[1:]); sys.exit(not abs(a - b) <= 0.03 * b)' $(step sampled comm_s) $(step bw25 comm_s | cut -d' ' -f2)"
# SMPI's own collectives (MPI_Reduce_scatter_block + MPI_Allgather, ompi selection) against the ring at 4 nodes
"${PROJECT[@]}" big.json --network ib100 --nodes 4 --collectives mpi --out mpi > mpi.log 2>&1
"${PROJECT[@]}" big.json --network ib100 --nodes 4 --out ring > ring.log 2>&1
echo "comm at 4 nodes: ring $(step ring comm_s), SMPI collectives $(step mpi comm_s)"
check "SMPI collectives within 2% of the ring at 4 nodes" \
  "/usr/bin/python3 -c 'import sys; a, b = map(float, sys.argv[1:]); sys.exit(not abs(a - b) <= 0.02 * b)' $(step mpi comm_s) $(step ring comm_s)"
# alpha-beta: per bucket 2(W-1)/W x bytes / bw + 2(W-1) x alpha, alpha = 2 x 0.5 us, bw = 100 Gb/s
"${PROJECT[@]}" big.json --network flat --compute-scale 0 --nodes "2 4 16 64" --ring-sample 0 --out ab > ab.log 2>&1
check "alpha-beta: simulated comm within 1% of 2(W-1)/W x bytes/bw + 2(W-1) x alpha x buckets" '/usr/bin/python3 - ab <<EOF
import csv, json, sys
for r in csv.DictReader(open(sys.argv[1] + "/scaling.csv")):
    W = int(r["ranks"])
    p = [q for q in json.load(open(sys.argv[1] + "/projection.json"))["points"] if q["ranks"] == W][0]
    t = 2 * (W - 1) / W * float(r["comm_bytes"]) / 12.5e9 + 2 * (W - 1) * 1e-6 * p["buckets"]
    s = float(r["comm_s"])
    print(f"W={W}: simulated {s * 1e3:.3f} ms, alpha-beta {t * 1e3:.3f} ms ({(s - t) / t * 100:+.2f}%)")
    assert abs(s - t) <= 0.01 * t
EOF'

# 5. bad input
"${PROJECT[@]}" nothere.json --out x > bad1.log 2>&1; rc=$?
check "missing profile: exit 2, named" '[ $rc = 2 ] && grep -q "nothere.json" bad1.log'
"${PROJECT[@]}" prof4.json --out y --network token-ring > bad2.log 2>&1; rc=$?
check "unknown network: exit 2" '[ $rc = 2 ] && grep -q "must be ib100" bad2.log && [ ! -e y ]'
"$LONGVQ" profile "${TINY[@]}" --ranks 3 > bad3.log 2>&1; rc=$?
check "profile: batch not dividing over --ranks: exit 2" '[ $rc = 2 ] && grep -q "does not divide" bad3.log'
[ $fail = 0 ] && echo "sim: all checks passed" || echo "sim: $fail check(s) failed"
exit $((fail > 0))
