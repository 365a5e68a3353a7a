#!/usr/bin/env bash
# Simulated against measured (docs/scaling.md#projections, "Checked against reality"): on this
# machine, a weak sweep of CONFIG (16 sequences per rank, 1 thread per rank) at 1, 2, 4 and 8 ranks
# (4 and 8 oversubscribe the 2 cores), the step profile before and after it (the mean is simulated),
# bench_allreduce at 2 ranks for the machine platform's memory-copy bandwidth and latency; then the
# same points simulated on that one-host platform, and DIR/check.md comparing them.
#   launch/sim/validate.sh DIR [CONFIG]      (DIR must not exist; CONFIG default configs/quickstart.yaml)
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
out=$1 config=${2:-configs/quickstart.yaml}
[ ! -e "$out" ] || { echo "validate.sh: $out exists" >&2; exit 2; }
mkdir -p "$out"
. "$here/launch/env.sh"
LONGVQ=${LONGVQ:-$here/build/longvq}
export LONGVQ_SKELETON=${LONGVQ_SKELETON:-$here/build/launch/sim/skeleton}
points="1x1 2x1 4x1 8x1"
OMP_NUM_THREADS=1 "$LONGVQ" profile "$config" --ranks 2 --out "$out/profile_before.json"
"$here/launch/scaling.sh" --config "$config" --mode weak --batch-per-rank 16 --points "$points" --steps 10 \
  --warmup 3 --out "$out/measured" train.warmup=1
OMP_NUM_THREADS=1 "$LONGVQ" profile "$config" --ranks 2 --out "$out/profile_after.json"
mpirun -np 2 "$here/build/tests/bench_allreduce" 0.0001 4 16 --iters 50 > "$out/bench_allreduce.txt"
/usr/bin/python3 "$here/launch/sim/validate.py" "$out"
