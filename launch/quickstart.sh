#!/usr/bin/env bash
# The main job: install (Debian 12), build (Release), prepare Fashion-MNIST as an HDF5 dataset,
# inspect it, and train a small LongVQ encoder on it on 2 MPI ranks (configs/quickstart.yaml).
# Outputs: runs/quickstart/{metrics.jsonl,model_step0.h5,model_final.h5}.
set -euo pipefail
cd "$(dirname "$0")/.."
./launch/install-deps.sh
./launch/build.sh
. launch/env.sh
mkdir -p data
if [ ! -f data/fmnist.h5 ]; then
  ./build/longvq data fashion-mnist --out data/fmnist.h5
fi
./build/longvq inspect data/fmnist.h5
# 2 ranks x 1 OpenMP thread each (one rank per core). launch/run.sh: Ctrl-C or TERM checkpoints and
# exits 3 (resume: ./launch/quickstart.sh checkpoint.resume=auto); a second Ctrl-C stops at once.
./launch/run.sh mpirun -np 2 --oversubscribe --bind-to none -x OMP_NUM_THREADS=1 \
  ./build/longvq train configs/quickstart.yaml "$@"
