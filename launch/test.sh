#!/usr/bin/env bash
# Installs dependencies, builds, and runs the whole ctest suite. Exit code is the verdict.
set -euo pipefail
cd "$(dirname "$0")/.."
./launch/install-deps.sh
./launch/build.sh -DLONGVQ_WERROR=ON
. launch/env.sh
cd build
ctest --output-on-failure -j 2 "$@"
