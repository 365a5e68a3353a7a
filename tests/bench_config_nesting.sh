#!/usr/bin/env bash
# Benchmark (not a test): the time `longvq train FILE --print-config` takes on a config whose one
# value is N KB of nested `[` (issue 13 point 4: quadratic in libyaml's scanner before the depth
# limit; docs/config.md "Input limits"). Prints, per size, the exit code, wall and user CPU seconds
# and the first error line. User CPU is the figure to compare on a shared machine.
#   bash tests/bench_config_nesting.sh [LONGVQ] [KB ...]      (defaults: build/longvq, 50 200 600)
# Runs under launch/env.sh's environment; each run is cut off after LONGVQ_BENCH_TIMEOUT s (600).
set -u
B=${1:-build/longvq}
shift || true
sizes=${*:-50 200 600}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
export OMPI_MCA_ess_singleton_isolated=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
for kb in $sizes; do
  f=$dir/nest$kb.yaml
  { printf 'model:\n  d_model: '; head -c $((kb * 1024)) /dev/zero | tr '\0' '['; echo; } >"$f"
  /usr/bin/time -f "%e %U" -o "$dir/t" timeout "${LONGVQ_BENCH_TIMEOUT:-600}" "$B" train "$f" --print-config \
    >/dev/null 2>"$dir/err"
  rc=$?
  read -r wall user < <(tail -n1 "$dir/t") # after time's "Command exited with ..." line
  printf '%5d KB of [: exit %d, %s s wall, %s s user: %s\n' "$kb" "$rc" "$wall" "$user" \
    "$(grep -o 'nest[0-9]*.yaml:.*' "$dir/err" | tail -n1 | cut -c1-160)"
done
