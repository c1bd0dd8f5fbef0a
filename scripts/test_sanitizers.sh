#!/usr/bin/env bash
# The CPU unit tests and command tests again, in an ASan + UBSan build (build-sanitize/, CPU only:
# the CUDA code is covered by compute-sanitizer in bench/gpu/run_gpu.sh). Any sanitizer report fails
# its test: UBSan does not recover, ASan aborts. Leak checking is off: libhdf5 and the OpenMP runtime
# keep allocations for the life of the process, which LeakSanitizer reports as leaks.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)
flags="-O1 -g1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all"
cmake -S . -B build-sanitize -DCMAKE_BUILD_TYPE=None -DPARO_WITH_CUDA=OFF \
    -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_C_FLAGS="$flags" \
    -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" \
    -DCMAKE_SHARED_LINKER_FLAGS="-fsanitize=address,undefined" >build-sanitize.configure.log 2>&1 ||
    { cat build-sanitize.configure.log; exit 1; }
cmake --build build-sanitize -j"$jobs" --target paro_cli paro_tests paro_report_tests
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:strict_string_checks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
cd build-sanitize
# The unit tests (plain names: the core's and the report's) and the command tests (cli.*); the
# report.*, install, Python and GPU groups need the rest of the build, a browser or a GPU.
ctest --output-on-failure -j"$jobs" -E '^(gpu|report|install|python)\.'
