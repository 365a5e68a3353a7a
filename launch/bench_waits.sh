#!/usr/bin/env bash
# Step time of the sleeping waits (trainer/base/watchdog.c dist_wait: nonblocking collectives tested
# with a growing sleep) against another build, e.g. one with blocking collectives (before issue 13):
# 2 ranks x 1 thread, runs of the two binaries interleaved REPS times, median step time, compute,
# communication and exposed wait over the steps after warm-up.
#  tiny: communication-bound (tiny model, 4 buckets of 0.01 MiB per step: the latency of every wait
#        counts); quickstart (data/fmnist.h5 from ./launch/quickstart.sh, if present): compute-bound.
# Usage: ./launch/bench_waits.sh OLD_BINARY [NEW_BINARY=build/longvq] [steps=300] [reps=3]
set -euo pipefail
cd "$(dirname "$0")/.."
. launch/env.sh
old=$1 new=${2:-build/longvq} steps=${3:-300} reps=${4:-3}
out=$(mktemp -d)
"$new" data listops --out $out/lo.h5 --train 96 --val 16 --test 16 --min-len 20 --max-len 60 --max-depth 3 --seed 7 > /dev/null
summ() { # label metrics.jsonl files... -> medians
  /usr/bin/python3 - "$@" <<'PY'
import json, statistics as st, sys
rows = []
for f in sys.argv[2:]:
    rows += [json.loads(l) for l in open(f) if '"step_s"' in l][10:]  # skip warm-up steps
med = lambda k: st.median(r[k] for r in rows) * 1e3
print(f"{sys.argv[1]:16s} step {med('step_s'):8.3f} ms | compute {med('compute_s'):8.3f} | comm {med('comm_s'):8.3f} | exposed {med('exposed_comm_s'):8.3f} ms (medians of {len(rows)} steps)")
PY
}
run() { # config-args... ; binary in $bin, dir $dir
  mpirun -np 2 --bind-to none -x OMP_NUM_THREADS=1 "$bin" train "$@" run.dir=$dir > $dir.log 2>&1
}
for cfg in tiny quickstart; do
  if [ $cfg = tiny ]; then
    args="configs/tiny.yaml data.train=$out/lo.h5 data.seq_len=64 train.batch_size=8 train.steps=$steps"
  else
    [ -f data/fmnist.h5 ] || { echo "quickstart: no data/fmnist.h5 (./launch/quickstart.sh makes it): skipped"; continue; }
    args="configs/quickstart.yaml train.steps=$((steps / 10))"
  fi
  args="$args train.eval_every=0 checkpoint.every=0 checkpoint.save_initial=false dist.check_every=0 log.every=1"
  for r in $(seq 1 $reps); do
    for v in old new; do
      bin=${!v}; dir=$out/$cfg-$v-$r
      run $args
    done
  done
  echo "$cfg, 2 ranks, $reps runs each:"
  for v in old new; do summ "  $v" $out/$cfg-$v-*/metrics.jsonl; done
done
rm -rf "$out"
