#!/usr/bin/env bash
# Generation speed and memory against the position (figures in docs/generate.md): one `longvq
# generate` run of N tokens (default 131072) that prints tokens/s (wall and per CPU-second of the
# process: on a shared machine the wall figure includes waiting for a core) and RSS every 1024 tokens; the
# table shows the windows ending near positions 1K, 16K and 128K (and every power of two between).
# Speed and memory must be flat: the decoder's state does not grow with the position.
# Usage: ./launch/bench_generate.sh CONFIG MODEL.h5 [N] [key=value ...]
#   e.g. the text model of docs/results.md:
#   ./launch/bench_generate.sh configs/text.yaml runs/text-small/model_final.h5 131072 \
#       model.d_model=128 model.z_dim=64 model.v_dim=256 model.ffn_dim=256 model.n_layers=2 model.chunk_size=256
# OMP_NUM_THREADS is left as set (docs/generate.md gives 1 and 2 threads).
set -euo pipefail
cd "$(dirname "$0")/.."
. launch/env.sh
[ $# -ge 2 ] || { sed -n 2,11p "$0"; exit 2; }
cfg=$1 model=$2; shift 2
n=131072
if [ $# -gt 0 ] && [[ $1 != *=* ]]; then n=$1; shift; fi
log=$(mktemp)
./build/longvq generate "$cfg" --model "$model" --tokens "$n" --progress 1024 --seed 1 "$@" > /dev/null 2> "$log"
grep -E "^generate: (prompt|[0-9]+ tokens in)|^decoder state" "$log"
echo
printf "%10s %12s %14s %10s %10s\n" "length" "tokens/s" "per CPU-s" "RSS MiB" "peak MiB"
awk 'BEGIN { for (p = 1024; p <= 1073741824; p *= 2) show[p] = 1 }
     /sequence length/ { len = $4; sub(":", "", len); if (show[len - 1]) printf "%10d %12d %14d %10.1f %10.1f\n", len, $5, $11, $16, $19 }' "$log"
rm -f "$log"
