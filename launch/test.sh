#!/usr/bin/env bash
# Installs dependencies, builds, and runs the whole ctest suite. Exit code is the verdict.
set -euo pipefail
cd "$(dirname "$0")/.."
./launch/install-deps.sh --sim   # with SimGrid (SMPI) for the projections' test (tests/sim.sh)
./launch/build.sh -DLONGVQ_WERROR=ON -DLONGVQ_SIM=ON
. launch/env.sh
cd build
ctest --output-on-failure -j 2 "$@"
