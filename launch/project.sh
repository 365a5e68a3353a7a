#!/usr/bin/env bash
# Projected scaling of a config to 1..1024 nodes on a simulated cluster (docs/scaling.md#projections):
#   launch/project.sh CONFIG --out DIR [project.py options] [key=value ...]
# profiles CONFIG's step here (`longvq profile`, with the key=value overrides; OMP_NUM_THREADS as set),
# then runs launch/project.py on the profile (the SMPI skeleton per node count, the scaling report).
# --profile F.json skips the profiling and uses F. The binary is $LONGVQ (default build/longvq), the
# skeleton $LONGVQ_SKELETON (default build/launch/sim/skeleton; cmake -DLONGVQ_SIM=ON).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
LONGVQ=${LONGVQ:-$here/../build/longvq}
PY=${LONGVQ_PYTHON:-/usr/bin/python3}
if [ $# -lt 1 ] || [ "$1" = --help ] || [ "$1" = -h ]; then
  sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'
  echo
  exec "$PY" "$here/project.py" --help
fi
config=$1
shift
opts=() over=() out="" profile=""
while [ $# -gt 0 ]; do
  case $1 in
    --out) out=$2; opts+=("$1" "$2"); shift 2 ;;
    --profile) profile=$2; shift 2 ;;
    --*) [ $# -ge 2 ] || { echo "project.sh: $1 needs a value" >&2; exit 2; }; opts+=("$1" "$2"); shift 2 ;;
    *=*) over+=("$1"); shift ;;
    *) echo "project.sh: $1: unexpected argument (CONFIG first, then options and key=value)" >&2; exit 2 ;;
  esac
done
[ -n "$out" ] || { echo "project.sh: --out DIR is required" >&2; exit 2; }
[ ! -e "$out" ] || { echo "project.sh: --out $out: exists (a projection never overwrites another)" >&2; exit 2; }
if [ -z "$profile" ]; then
  profile="$out.profile.json"
  "$LONGVQ" profile "$config" "${over[@]}" --out "$profile"
fi
exec "$PY" "$here/project.py" "$profile" "${opts[@]}"
