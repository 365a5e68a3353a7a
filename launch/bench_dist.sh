#!/usr/bin/env bash
# Distributed benchmarks on this machine (figures in docs/distributed.md):
#  1. throughput of 2 ranks x 1 OpenMP thread against 1 rank x 2 threads (same global batch);
#  2. the fraction of gradient-reduction time hidden behind backward (per-step comm vs exposed wait);
#  3. allreduce bus bandwidth of the bucketed path against a plain MPI_Allreduce of the same bytes.
# Usage: ./launch/bench_dist.sh [steps]   (needs ./build and data/fmnist.h5 from quickstart)
set -euo pipefail
cd "$(dirname "$0")/.."
. launch/env.sh
steps=${1:-30}
out=$(mktemp -d)
common="configs/quickstart.yaml train.steps=$steps train.eval_every=0 log.every=1 checkpoint.save_initial=false dist.bucket_mb=0.25"
summ() { # metrics.jsonl -> median tokens/s, comm, exposed, hidden %
  /usr/bin/python3 - "$1" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if '"tokens_per_s"' in l][3:]  # skip warm-up steps
tps = statistics.median(r["tokens_per_s"] for r in rows)
comm = sum(r["comm_s"] for r in rows); exp = sum(r["exposed_comm_s"] for r in rows)
hidden = 100.0 * (1 - exp / comm) if comm > 0 else float("nan")
bw = statistics.median(r["busbw_gbs"] for r in rows)
print(f"{tps:10.0f} tok/s | comm {comm/len(rows)*1e3:7.1f} ms/step | exposed {exp/len(rows)*1e3:7.1f} ms/step | hidden {hidden:5.1f}% | busbw {bw:.2f} GB/s")
PY
}
mpirun -np 1 --bind-to none -x OMP_NUM_THREADS=2 ./build/longvq train $common run.dir=$out/r1t2 > $out/r1t2.log
mpirun -np 2 --bind-to none -x OMP_NUM_THREADS=1 ./build/longvq train $common run.dir=$out/r2t1 > $out/r2t1.log
echo "1 rank  x 2 threads: $(summ $out/r1t2/metrics.jsonl)"
echo "2 ranks x 1 thread : $(summ $out/r2t1/metrics.jsonl)"
echo
mpirun -np 2 --bind-to none ./build/tests/bench_allreduce 0.5 2 8 32 128
rm -rf "$out"
