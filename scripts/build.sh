#!/usr/bin/env bash
# Configures and builds paro in build/ (CUDA runtime included when nvcc is found).
# Extra arguments go to cmake's configure step.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release "$@" >build.configure.log 2>&1 || { cat build.configure.log; exit 1; }
cmake --build build -j"$jobs"
