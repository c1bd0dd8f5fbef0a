#!/usr/bin/env bash
# The whole test suite: install what is missing, build, run every test through ctest.
# GPU tests are hidden ([.gpu]) and run only on a GPU machine (bench/gpu/run_gpu.sh).
# The CPU tests then run again under ASan + UBSan (scripts/test_sanitizers.sh), and the readers
# under libFuzzer (scripts/fuzz.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
(cd build && ctest --output-on-failure -j"$(nproc 2>/dev/null || echo 2)")
# Then the CPU tests under ASan + UBSan (a second, CPU-only build; PARO_SANITIZERS=0 skips it).
[ "${PARO_SANITIZERS:-1}" = 0 ] || bash scripts/test_sanitizers.sh
# And libFuzzer on the readers, 30 s per harness (PARO_FUZZ=0 skips it; scripts/fuzz.sh).
[ "${PARO_FUZZ:-1}" = 0 ] || bash scripts/fuzz.sh
