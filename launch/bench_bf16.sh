#!/usr/bin/env bash
# f32 against bf16 (model.precision) with `longvq bench` on this machine: runs the bench twice with the
# same arguments and prints tokens/s of both and their ratio per mode and L (docs/performance.md,
# "bf16"). Run it on a quiet machine; the full tables are kept in OUT (default runs/bench-bf16).
#   ./launch/bench_bf16.sh                       # configs/bench.yaml --mode both, L = 1K, 4K, 16K
#   ./launch/bench_bf16.sh configs/bench.yaml --mode encoder --steps 5
set -euo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-runs/bench-bf16}
mkdir -p "$out"
cfg=${1:-configs/bench.yaml}
[ $# -gt 0 ] && shift
args=("$@")
[ ${#args[@]} -eq 0 ] && args=(--mode both)
./build/longvq bench "$cfg" "${args[@]}" | tee "$out/f32.txt"
./build/longvq bench "$cfg" model.precision=bf16 "${args[@]}" | tee "$out/bf16.txt"
/usr/bin/python3 - "$out/f32.txt" "$out/bf16.txt" <<'PY'
import sys
def speed(path):
    rows, on = {}, False
    for line in open(path):
        f = line.split()
        if f[:1] == ["speed"]:
            on = True
        elif not f:
            on = False
        elif on and len(f) >= 13 and f[1].isdigit():
            rows[(f[0], int(f[1]))] = (float(f[6]), float(f[8]), f[12], f[13] if len(f) > 13 else "n/a")
    return rows
a, b = speed(sys.argv[1]), speed(sys.argv[2])
print("\nf32 vs bf16 (tokens/s; step ms; MFU of bf16 against the f32 and the bf16 probe)")
print(f"{'mode':8} {'L':>6} {'f32 tok/s':>10} {'bf16 tok/s':>10} {'speed-up':>8} {'f32 ms':>8} {'bf16 ms':>8} {'MFU f32':>8} {'bf16 MFU':>8} {'MFUbf16':>8}")
for k in sorted(a):
    if k in b:
        print(f"{k[0]:8} {k[1]:6d} {a[k][1]:10.0f} {b[k][1]:10.0f} {b[k][1] / a[k][1]:7.2f}x {a[k][0]:8.1f} {b[k][0]:8.1f} "
              f"{a[k][2]:>8} {b[k][2]:>8} {b[k][3]:>8}")
PY
