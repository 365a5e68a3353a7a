#!/usr/bin/env bash
# f32 against bf16 (model.precision) with `longvq bench` on this machine: runs the bench twice with the
# same arguments and prints tokens/s of both and their ratio per mode and L (docs/performance.md,
# "bf16"), then where the step goes in both (the bench's split tables) and the speed-up bf16 could
# reach at most on this model. Run it on a quiet machine; the full tables are kept in OUT (default
# runs/bench-bf16).
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
def tables(path):
    speed, split, on = {}, {}, None
    for line in open(path):
        f = line.split()
        if f[:1] in (["speed"], ["split"]):
            on = f[0]
        elif not f:
            on = None
        elif on == "speed" and len(f) >= 13 and f[1].isdigit():
            speed[(f[0], int(f[1]))] = (float(f[6]), float(f[8]), f[12], f[13] if len(f) > 13 else "n/a")
        elif on == "split" and len(f) == 9 and f[1].isdigit():
            split[(f[0], int(f[1]))] = (float(f[3]), float(f[4]), float(f[6]), float(f[7]))  # step, matmul, round, other
    return speed, split
(a, sa), (b, sb) = tables(sys.argv[1]), tables(sys.argv[2])
print("\nf32 vs bf16 (tokens/s; step ms; MFU of bf16 against the f32 and the bf16 probe)")
print(f"{'mode':8} {'L':>6} {'f32 tok/s':>10} {'bf16 tok/s':>10} {'speed-up':>8} {'f32 ms':>8} {'bf16 ms':>8} {'MFU f32':>8} {'bf16 MFU':>8} {'MFUbf16':>8}")
for k in sorted(a):
    if k in b:
        print(f"{k[0]:8} {k[1]:6d} {a[k][1]:10.0f} {b[k][1]:10.0f} {b[k][1] / a[k][1]:7.2f}x {a[k][0]:8.1f} {b[k][0]:8.1f} "
              f"{a[k][2]:>8} {b[k][2]:>8} {b[k][3]:>8}")
# What bf16 could give at most on this model: it changes the products only. From the split tables:
#   kernels  = f32 matmul ms / (bf16 matmul ms - bf16 rounding ms): the products alone, rounding free
#   no-round = f32 step / (bf16 step - bf16 rounding): the step if rounding cost nothing
#   products = f32 step / (f32 step - f32 matmul): the step if the products cost nothing at all
print("\nwhere the step goes (ms per step: matmul products incl. rounding, rounding, everything else) and the bounds")
print(f"{'mode':8} {'L':>6} {'f32 mm':>8} {'f32 rest':>8} {'bf16 mm':>8} {'round':>7} {'bf16 rest':>9} {'kernels':>8} {'no-round':>8} {'products':>8}")
for k in sorted(sa):
    if k in sb:
        (s1, m1, _, o1), (s2, m2, r2, o2) = sa[k], sb[k]
        print(f"{k[0]:8} {k[1]:6d} {m1:8.1f} {o1:8.1f} {m2:8.1f} {r2:7.1f} {o2:9.1f} {m1 / (m2 - r2):7.2f}x "
              f"{s1 / (s2 - r2):7.2f}x {s1 / o1:7.2f}x")
PY
