#!/bin/bash
# GPU tile statistics on a GPU machine, one command from the repository root:
#   bash bench/gpu/tile_stats_gpu.sh
# Builds (Release, sm_90a + sm_80) into build-gpu/, runs the GPU tile-statistics tests, then the
# same tests under compute-sanitizer (memcheck on the small cases), then the benchmark.
# Logs and a summary go to $OUT (default /tmp/paro_tile_stats_out).
set -u
OUT=${OUT:-/tmp/paro_tile_stats_out}
mkdir -p "$OUT"
B=${BUILD_DIR:-build-gpu}
summary="$OUT/summary.txt"
: > "$summary"
note() { echo "$*" | tee -a "$summary"; }

cmake -S . -B $B -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_COMPILER=/usr/local/cuda/bin/nvcc \
  -DCMAKE_CUDA_ARCHITECTURES="90a;80" ${CMAKE_EXTRA:-} > "$OUT/cmake.log" 2>&1 || { tail -30 "$OUT/cmake.log"; exit 1; }
timeout 500 cmake --build $B -j"$(nproc)" --target paro_gpu_tests paro_tile_stats_bench > "$OUT/build.log" 2>&1 ||
  { grep -E "error" "$OUT/build.log" | head -30; exit 1; }
note "card: $(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)"
T=$B/tests/gpu/paro_gpu_tests
timeout 300 $T "[tile_stats_gpu],[tile_stats]" > "$OUT/tests.log" 2>&1; rc=$?
note "tile statistics tests: rc=$rc $(grep -E 'test cases|All tests' "$OUT/tests.log" | tail -1)"
[ $rc -ne 0 ] && grep -B3 -A15 "FAILED" "$OUT/tests.log" | head -80 | tee -a "$summary"
SAN=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
if [ -x "$SAN" ]; then
  timeout 300 $SAN --tool memcheck --error-exitcode 9 $T "tile stats gpu: matches the CPU engine on random heads" \
    > "$OUT/memcheck.log" 2>&1
  note "compute-sanitizer memcheck (random heads): rc=$? $(grep -E 'ERROR SUMMARY' "$OUT/memcheck.log" | tail -1)"
  timeout 300 $SAN --tool racecheck --error-exitcode 9 $T "tile stats gpu: batch of strided heads*" \
    > "$OUT/racecheck.log" 2>&1
  note "compute-sanitizer racecheck (batch): rc=$? $(grep -E 'RACECHECK SUMMARY|ERROR SUMMARY' "$OUT/racecheck.log" | tail -1)"
fi
timeout 300 $B/bench/gpu/paro_tile_stats_bench 5 > "$OUT/bench.log" 2>&1
note "benchmark: rc=$?"
tee -a "$summary" < "$OUT/bench.log"
