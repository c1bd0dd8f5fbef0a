#!/usr/bin/env bash
# The whole test suite: install what is missing, build, run every test through ctest.
# GPU tests are hidden ([.gpu]) and run only on a GPU machine (bench/gpu/run_gpu.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
cd build
ctest --output-on-failure -j"$(nproc 2>/dev/null || echo 2)"
