#!/bin/bash
# GPU tile statistics on a GPU machine, one command from the repository root:
#   bash bench/gpu/tile_stats_gpu.sh     (NCU=1 adds the profile; NAIVE_MS=... the naive PyTorch
#                                        ms/head at N = 17,776; BENCH_ARGS="..." more bench options)
# Builds (Release, sm_90a + sm_80) into build-gpu/, runs the GPU tile-statistics tests (the fp32
# kernels, and fp16 / bf16 on wgmma and on mma.sync where the device runs wgmma), then compute-
# sanitizer memcheck (random heads) and racecheck (batch), then the benchmark (one row per shape:
# the engine as shipped). NCU=1: an Nsight Compute profile of the pass-2 kernel (8 heads of the
# CogVideoX shape; sections SpeedOfLight, WarpStateStats, InstructionStats, Occupancy,
# ComputeWorkloadAnalysis, SchedulerStats, MemoryWorkloadAnalysis; the full report in $OUT/ncu.log
# and $OUT/tile_stats.ncu-rep). Logs and a summary go to $OUT (default /tmp/paro_tile_stats_out).
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
timeout 300 $B/bench/gpu/paro_tile_stats_bench 5 --naive-ms "${NAIVE_MS:-44.0}" ${BENCH_ARGS:-} > "$OUT/bench.log" 2>&1
note "benchmark: rc=$?"
tee -a "$summary" < "$OUT/bench.log"
NCU_BIN=$(command -v ncu || ls /usr/local/cuda/bin/ncu /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
if [ "${NCU:-0}" != 0 ] && [ -n "$NCU_BIN" ]; then
  # Pass 2 only (tile_stats_kernel<T, D, wgmma>), one launch.
  timeout 400 "$NCU_BIN" --clock-control none -k "regex:tile_stats_kernel" -c 1 \
    --section SpeedOfLight --section WarpStateStats --section InstructionStats --section Occupancy \
    --section ComputeWorkloadAnalysis --section SchedulerStats --section MemoryWorkloadAnalysis \
    -o "$OUT/tile_stats" -f \
    $B/bench/gpu/paro_tile_stats_bench 1 --shape cogvideox --heads 8 --profile > "$OUT/ncu_run.log" 2>&1
  note "ncu: rc=$?"
  "$NCU_BIN" -i "$OUT/tile_stats.ncu-rep" > "$OUT/ncu.log" 2>&1
  grep -E "tile_stats_kernel|^ +(Duration|Compute \(SM\) Throughput|Memory Throughput|Achieved Occupancy|Registers Per Thread|Issue Slots Busy|Warp Cycles Per Issued Instruction|No Eligible|Executed Ipc Active) " \
    "$OUT/ncu.log" | sed -E 's/\(int, int, int\).*//' | cut -c1-160 | tee -a "$summary"
  # Stall reasons of each kernel: ncu -i $OUT/tile_stats.ncu-rep --page details --section WarpStateStats
fi
