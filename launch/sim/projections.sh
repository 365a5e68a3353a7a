#!/usr/bin/env bash
# The projections of docs/scaling.md#projections, from two step profiles (rerun on a quiet machine:
#   OMP_NUM_THREADS=2 build/longvq profile configs/quickstart.yaml --ranks 2 --out qs.json
#   OMP_NUM_THREADS=2 build/longvq profile configs/quickstart-1000x.yaml --out big.json ):
#   launch/sim/projections.sh OUT QS.json QS_SCALE BIG.json BIG_SCALE
# SCALE multiplies a profile's times (1 for profiles taken on a quiet machine; docs/scaling.md says
# which scales its figures used and why). Every run is one launch/project.py call; OUT/<name>/ each.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
out=$1 qs=$2 qss=$3 big=$4 bigs=$5
mkdir -p "$out"
all="1 2 4 8 16 32 64 128 256 512 1024"
run() { local name=$1; shift; [ -e "$out/$name" ] && return 0
        /usr/bin/python3 "$here/project.py" "$@" --out "$out/$name" > "$out/$name.log" 2>&1 || echo "failed: $name" >&2; }
for net in ib100 eth25; do
  run qs-weak-$net "$qs" --compute-scale "$qss" --network $net --mode weak --nodes "$all"
  run big-weak-$net "$big" --compute-scale "$bigs" --network $net --mode weak --nodes "$all"
done
for net in ib100 eth25; do  # strong: global batch 16384 (quickstart), 1024 (1000x: one sequence per rank at 1024 nodes)
  run qs-strong-$net "$qs" --compute-scale "$qss" --network $net --mode strong --global-batch 16384 --nodes "$all"
  run big-strong-$net "$big" --compute-scale "$bigs" --network $net --mode strong --global-batch 1024 --nodes "$all"
done
# settings that recover efficiency (weak; docs/scaling.md section 6)
q=("$qs" --compute-scale "$qss" --network eth25 --nodes "64 512 1024")
run qs-bucket0.05-eth25 "${q[@]}" --bucket-mb 0.05
run qs-micro4-eth25 "${q[@]}" --micro-batches 4
run qs-mpicoll-eth25 "$qs" --compute-scale "$qss" --network eth25 --nodes "64 512" --collectives mpi
b=("$big" --compute-scale "$bigs" --network eth25 --nodes "64 512")  # 2-core nodes
run big-bucket100-eth25 "${b[@]}" --bucket-mb 100
run big-bucket6-eth25 "${b[@]}" --bucket-mb 6
run big-micro4-eth25 "${b[@]}" --micro-batches 4
run big-zero-eth25 "${b[@]}" --zero 1
run big-rpn2-eth25 "${b[@]}" --ranks-per-node 2 --cores-per-node 2
c=("$big" --compute-scale "$bigs" --cores-per-node 64)               # 64-core nodes: communication dominates
run big64c-weak-eth25 "${c[@]}" --network eth25 --nodes "1 64 256"
run big64c-weak-ib100 "${c[@]}" --network ib100 --nodes "1 64 256"
for s in "micro4:--micro-batches 4" "bucket100:--bucket-mb 100" "bucket6:--bucket-mb 6" "zero:--zero 1" \
         "micro4-bucket100:--micro-batches 4 --bucket-mb 100" "micro16-bucket100:--micro-batches 16 --bucket-mb 100"; do
  # shellcheck disable=SC2086
  run big64c-${s%%:*}-eth25 "${c[@]}" --network eth25 --nodes "64 256" ${s#*:}
done
run big64c-rpn4-eth25 "${c[@]}" --network eth25 --nodes 64 --ranks-per-node 4
/usr/bin/python3 "$here/sim/summary.py" "$out" > /dev/null
