#!/usr/bin/env bash
# Measurement, not a test (docs/distributed.md "Stopping a run"): what `kill -TERM <mpirun pid>` and
# a rank killed with SIGKILL do to a 2-rank training under plain Open MPI mpirun, for several values
# of odls_base_sigkill_timeout, with a checkpoint write slowed to WRITE_S seconds (the test hook
# LONGVQ_TEST_CKPT_WRITE_S). Prints one line per case: mpirun's exit code, seconds from the signal to
# mpirun's end, and whether the stop checkpoint was completed.
#   LONGVQ=build/longvq tests/bench_mpirun_term.sh [TIMEOUTS (default "1 5 10")] [WRITE_S (default 2)]
set -u
SRC=$(cd "$(dirname "$0")/.." && pwd)
LONGVQ=$(realpath "${LONGVQ:-$SRC/build/longvq}")
. "$SRC/launch/env.sh"
. "$SRC/tests/script_lib.sh"
W=$(mktemp -d /tmp/lv_term.XXXXXX) && cd "$W" || exit 1
tiny_listops lo.h5
CFG="$SRC/configs/tiny.yaml data.train=lo.h5 data.val=lo.h5 data.seq_len=64 train.eval_every=0 train.steps=100000
     checkpoint.every=0 model.d_model=64 model.z_dim=32 model.v_dim=64 model.n_layers=4 train.batch_size=32
     dist.bucket_mb=25 log.progress=off"
export LONGVQ_TEST_CKPT_WRITE_S=${2:-2}
printf '%-8s %-7s %-9s %4s %9s  %s\n' timeout log.every case exit "end (s)" "stop checkpoint"
for t in ${1:-1 5 10}; do
  for every in 1 1000; do
    for how in term kill9; do
      rm -rf r
      OMPI_MCA_odls_base_sigkill_timeout=$t mpirun --oversubscribe --bind-to none -x OMP_NUM_THREADS=1 \
        -x LONGVQ_TEST_CKPT_WRITE_S -np 2 "$LONGVQ" train $CFG log.every=$every run.dir=r > r.log 2>&1 &
      mp=$!
      for _ in $(seq 600); do [ -s r/metrics.jsonl ] && break; sleep 0.05; done
      [ -s r/metrics.jsonl ] || { echo "the run did not start:"; tail -n 5 r.log; kill $mp; wait $mp; continue; }
      sleep 1
      t0=$(date +%s.%N)
      if [ $how = term ]; then kill -TERM $mp; else kill -KILL $(rank_pids $mp | tail -n 1); fi
      wait $mp; rc=$?
      dt=$(echo "$(date +%s.%N) - $t0" | bc)
      ck=$(ls r/ckpt_*.h5 2>/dev/null | head -n 1)
      if [ -n "$ck" ]; then ck="saved $(basename "$ck")"
      elif ls r/*.tmp > /dev/null 2>&1; then ck="none (a .tmp left)"; else ck=none; fi
      printf '%-8s %-7s %-9s %4s %9.1f  %s\n' "$t" "$every" "$how" "$rc" "$dt" "$ck"
    done
  done
done
cd / && rm -rf "$W"
