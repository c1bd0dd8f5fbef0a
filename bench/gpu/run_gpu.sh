#!/bin/bash
# One GPU-machine session: build, GPU tests, compute-sanitizer, validate on a planted dump, paro bench,
# and (phase "torch") the PyTorch comparison. Logs under $OUT; a short table at the end.
# Usage (from the repository root): bench/gpu/run_gpu.sh [all|build|ctest|quick|pv16|test|bench|ab|torchcheck|torch|ncu|sass]...
# Phase "ab" times another tree's build against this one (bench/gpu/ab_bench.py): the other tree
# at $AB_TREE (default .baseline, e.g. `git archive REV | tar -x -C .baseline`), its `paro bench`
# PV option in $AB_ARGS (default "--pv-bits 8,16", the spelling before pattern format v2).
# CMake options for every build (e.g. -DCMAKE_PREFIX_PATH=... for a carried mustache header) in $CMAKE_EXTRA.
set -u
OUT=${OUT:-/tmp/paro_gpu_out}
mkdir -p "$OUT"
FINAL=$OUT                 # only a few files come back from the device machine: keep the rest aside
OUT=/tmp/paro_logs; mkdir -p $OUT
B=build-gpu
PHASES=${*:-all}
has() { [[ " $PHASES " == *" all "* || " $PHASES " == *" $1 "* ]]; }
summary="$OUT/summary.txt"
: > "$summary"
note() { echo "$*" | tee -a "$summary"; }

nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm,temperature.gpu,power.draw \
  --format=csv | tee "$OUT/gpu.txt"
note "card: $(nvidia-smi --query-gpu=name --format=csv,noheader | head -1), date $(date -u +%F' '%H:%M) UTC"

if [ ! -x $B/paro ] || has build; then
  t0=$(date +%s)
  cmake -S . -B $B -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_COMPILER=/usr/local/cuda/bin/nvcc \
    -DCMAKE_CUDA_ARCHITECTURES="90a;80" -DPARO_GPU_TESTS=ON ${CMAKE_EXTRA:-} > "$OUT/cmake.log" 2>&1 || { tail -30 "$OUT/cmake.log"; exit 1; }
  timeout 400 cmake --build $B -j16 > "$OUT/build.log" 2>&1 || { grep -E "error|Error" "$OUT/build.log" | head -30; exit 1; }
  note "build ok in $(( $(date +%s) - t0 )) s"
fi
T=$B/tests/gpu/paro_gpu_tests
if has ctest; then  # the whole suite (GPU tests registered too); tools missing here (Chromium) skip
  (cd $B && timeout 500 ctest -j8 --output-on-failure -E "${CTEST_EXCLUDE:-^$}" > "$OUT/ctest.log" 2>&1); rc=$?
  note "ctest (all, GPU included): rc=$rc $(grep -E 'tests passed' "$OUT/ctest.log")"
  [ $rc -ne 0 ] && grep -E "\*\*\*|Failed|FAIL" "$OUT/ctest.log" | head -30
  cp "$OUT/ctest.log" "$FINAL/" 2>/dev/null
fi
if has ab; then  # before/after: another tree's paro bench against this one's, interleaved, same process tree
  AB_TREE=${AB_TREE:-.baseline}; AB_ARGS=${AB_ARGS:---pv-bits 8,16}
  t0=$(date +%s)
  cmake -S $AB_TREE -B $AB_TREE/build -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_COMPILER=/usr/local/cuda/bin/nvcc \
    -DCMAKE_CUDA_ARCHITECTURES="90a;80" -DPARO_BUILD_TESTS=OFF > "$OUT/ab_cmake.log" 2>&1 &&
    timeout 400 cmake --build $AB_TREE/build -j16 --target paro_cli > "$OUT/ab_build.log" 2>&1
  note "ab: built $AB_TREE: rc=$? in $(( $(date +%s) - t0 )) s"
  PYTHONUNBUFFERED=1 timeout 560 python3 bench/gpu/ab_bench.py --a $AB_TREE/build/paro --a-args "$AB_ARGS" \
    --b $B/paro --b-args "--pv-format int8,fp16" --rounds ${AB_ROUNDS:-3} --out "$FINAL/ab.json" > "$OUT/ab.log" 2>&1
  note "ab_bench: rc=$?"; tee -a "$summary" < "$OUT/ab.log"
fi
if has pv16; then  # INT8 PV vs fp16 PV in the same process (paro bench --pv-format int8,fp16), then fp16 PV at one
  # CTA per SM fewer (PARO_PV16_LOW_OCCUPANCY=1: no register spills); a short table at the end
  for D in 64 128; do
    timeout 120 $B/paro bench --head-dim $D --pv-format int8,fp16 > "$OUT/bench_pv$D.log" 2>&1
    note "paro bench --head-dim $D --pv-format int8,fp16: rc=$?"; grep -E "^(masks|random)" "$OUT/bench_pv$D.log" | tee -a "$summary"
    PARO_PV16_LOW_OCCUPANCY=1 timeout 60 $B/paro bench --head-dim $D --pv-format fp16 > "$OUT/bench_pvlow$D.log" 2>&1
    note "PARO_PV16_LOW_OCCUPANCY=1 paro bench --head-dim $D --pv-format fp16: rc=$?"
    grep -E "^random" "$OUT/bench_pvlow$D.log" | tee -a "$summary"
  done
  for D in 64 128; do
    awk -v D=$D 'FNR == 1 { low = (FILENAME ~ /pvlow/) } /^random/ { k = $3 (low ? "-low" : ""); t[$2 " " k] = $5; a[$2 " " k] = $7; d[$2] = 1 }
      END { printf "D%s  density | total ms: int8  fp16  fp16-low | attn ms: int8  fp16  fp16-low\n", D;
            for (x in d) printf "D%s  %s | %s %s %s | %s %s %s\n", D, x, t[x " int8"], t[x " fp16"], t[x " fp16-low"], a[x " int8"], a[x " fp16"], a[x " fp16-low"] }' \
      "$OUT/bench_pv$D.log" "$OUT/bench_pvlow$D.log" | sort -r | tee -a "$summary" > "$FINAL/pv_table$D.txt"
  done
  cp "$OUT"/bench_pv*.log "$FINAL/" 2>/dev/null
fi
SAN=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
if has quick; then  # GPU tests with the default kernel and paro bench, nothing else
  timeout 240 $T "[gpu]" > "$OUT/tests_gpu.log" 2>&1; rc=$?
  note "GPU tests [gpu] (default kernel): rc=$rc $(grep -E 'test cases|All tests' "$OUT/tests_gpu.log" | tail -2 | tr '\n' ' ')"
  [ $rc -ne 0 ] && grep -B3 -A12 "FAILED" "$OUT/tests_gpu.log" | head -60
  for D in 64 128; do
    timeout 200 $B/paro bench --head-dim $D --pv-format int8,fp16 > "$OUT/bench$D.log" 2>&1; note "paro bench D$D: rc=$?"
    grep -E "^(paro bench|random)" "$OUT/bench$D.log" | tee -a "$summary"
  done
fi
if has test; then
  timeout 120 $T > "$OUT/tests_ci.log" 2>&1; note "CI tests (no [gpu] tag): rc=$? $(tail -2 "$OUT/tests_ci.log" | head -1)"
  # every GPU test with the kernel this card gets (wgmma on H100/H200), then with the sm_80 kernel
  timeout 240 $T "[gpu]" > "$OUT/tests_gpu.log" 2>&1; rc=$?
  note "GPU tests [gpu] (default kernel): rc=$rc $(grep -E 'test cases|All tests' "$OUT/tests_gpu.log" | tail -2 | tr '\n' ' ')"
  [ $rc -ne 0 ] && grep -B3 -A12 "FAILED" "$OUT/tests_gpu.log" | head -80
  PARO_ATTENTION_KERNEL=mma.sync timeout 240 $T "[gpu]" > "$OUT/tests_gpu_sm80.log" 2>&1; rc=$?
  note "GPU tests [gpu] with PARO_ATTENTION_KERNEL=mma.sync: rc=$rc $(grep -E 'test cases|All tests' "$OUT/tests_gpu_sm80.log" | tail -2 | tr '\n' ' ')"
  [ $rc -ne 0 ] && grep -B3 -A12 "FAILED" "$OUT/tests_gpu_sm80.log" | head -60
  timeout 180 $SAN --tool memcheck --leak-check full --error-exitcode 9 $T "[small]" > "$OUT/memcheck.log" 2>&1
  note "memcheck [small]: rc=$? $(grep -E 'ERROR SUMMARY' "$OUT/memcheck.log" | tail -1)"
  timeout 240 $SAN --tool racecheck --error-exitcode 9 $T "[race]" > "$OUT/racecheck.log" 2>&1
  note "racecheck runtime small: rc=$? $(grep -E 'RACECHECK SUMMARY|ERROR SUMMARY' "$OUT/racecheck.log" | tail -1)"
  # validate on planted synthetic dumps (q, k, v), D 64 and 128
  for D in 64 128; do
    d=$OUT/synth$D.h5; p=$OUT/pattern$D.h5
    rm -f $d $p
    $B/paro synth -q -o $d --grid 8x24x32 --text 64 --layers 2 --heads 4 --samples 2 --head-dim $D > /dev/null 2>&1
    $B/paro calibrate -q $d -o $p --density 0.3 > /dev/null 2>&1
    timeout 120 $B/paro validate -q $p --dump $d --against masked --min-cosine 0.9995 --max-rel-l1 0.03 > "$OUT/validate$D.log" 2>&1
    note "validate synth D$D density 0.3 (quantization error thresholds cos>=0.9995, relL1<=3%): rc=$?"
    sed -n '1,12p' "$OUT/validate$D.log"
    timeout 60 $B/paro bench --pattern $p --iters 10 > "$OUT/bench_pattern$D.log" 2>&1
    note "paro bench --pattern (synthetic pattern, D$D): rc=$?"; tail -3 "$OUT/bench_pattern$D.log" | head -2 | tee -a "$summary"
    PYTHONUNBUFFERED=1 timeout 60 python3 - "$B/libparo_runtime.so" "$p" $D <<'PY' >> "$summary" 2>&1
import os, sys, torch
sys.path.insert(0, "python"); os.environ["PARO_RUNTIME_LIBRARY"] = sys.argv[1]
import paro
plan = paro.Plan(sys.argv[2]); i = plan.info(); D = int(sys.argv[3])
q, k, v = [torch.randn(1, i.heads, i.tokens, D, device="cuda", dtype=torch.bfloat16) for _ in range(3)]
o = paro.attention(q, k, v, plan, 1, slot=0); torch.cuda.synchronize()
print(f"paro package (ctypes) Plan + attention: {i.layers} layers x {i.heads} heads, N {i.tokens}, density {i.density:.3f},"
      f" plan {i.device_bytes} bytes on device; output finite: {bool(torch.isfinite(o).all())}")
PY
    rm -f $d $p
  done
fi

if has bench; then  # both kernels in the same session (the Hopper one, then the sm_80 one), INT8 and fp16 PV
  for D in 64 128; do
    timeout 200 $B/paro bench --head-dim $D --pv-format int8,fp16 > "$OUT/bench$D.log" 2>&1; note "paro bench D$D: rc=$?"
    grep -E "^(paro bench|random)" "$OUT/bench$D.log" | tee -a "$summary"
    PARO_ATTENTION_KERNEL=mma.sync timeout 200 $B/paro bench --head-dim $D --pv-format int8,fp16 > "$OUT/bench${D}_sm80.log" 2>&1
    note "PARO_ATTENTION_KERNEL=mma.sync paro bench D$D: rc=$?"; grep -E "^(paro bench|random)" "$OUT/bench${D}_sm80.log" | tee -a "$summary"
  done
fi

if has torchcheck; then
  PYTHONUNBUFFERED=1 timeout 200 python3 bench/gpu/compare_torch.py $B/libparo_runtime.so --no-speed > "$OUT/torch.log" 2>&1
  note "compare_torch correctness only: rc=$?"; grep -E "^N=" "$OUT/torch.log" | tee -a "$summary"
fi
if has torch; then
  PYTHONUNBUFFERED=1 timeout 420 python3 bench/gpu/compare_torch.py $B/libparo_runtime.so --out "$OUT/torch.json" \
    > "$OUT/torch.log" 2>&1; note "compare_torch: rc=$?"
  grep -v "^    " "$OUT/torch.log" | tail -40 | tee -a "$summary"
fi

if has ncu; then  # the Hopper kernel, INT8 and fp16 PV, D 64, density 0.2: where the warps wait
  NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
  for pv in ${NCU_PV:-int8 fp16}; do
    timeout 240 $NCU --clock-control none --kernel-name regex:attention_ --launch-skip 3 --launch-count 1 \
      --section SpeedOfLight --section Occupancy --section WarpStateStats --section SchedulerStats \
      --section ComputeWorkloadAnalysis --section InstructionStats --section MemoryWorkloadAnalysis \
      --metrics sm__pipe_tensor_op_gmma_cycles_active.avg.pct_of_peak_sustained_active,sm__inst_executed_pipe_xu.avg.pct_of_peak_sustained_active,smsp__issue_active.avg.pct_of_peak_sustained_active \
      $B/paro bench --densities 0.2 --pv-format $pv --iters 1 --warmup 1 > "$OUT/ncu_pv$pv.txt" 2>&1
    note "ncu attention kernel (D64, density 0.2, PV $pv): rc=$?"
    grep -E "attention_|Duration|Achieved Occupancy|Issued Warp|No Eligible|Executed Instructions  |Warp Cycles Per Issued|highest-utilized|gmma_cycles|pipe_xu|issue_active" "$OUT/ncu_pv$pv.txt" | head -16 | tee -a "$summary"
    grep -E "^ +Stall|stall" "$OUT/ncu_pv$pv.txt" | head -12 | tee -a "$summary"
  done
  cp "$OUT"/ncu_pv*.txt "$FINAL/" 2>/dev/null
fi
if has ncusrc; then  # fp16-PV Hopper kernel, D 64: the SASS lines where warps stall most
  NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
  timeout 200 $NCU --clock-control none --kernel-name regex:attention_ --launch-skip 3 --launch-count 1 \
    --section SourceCounters --section WarpStateStats --print-details all \
    $B/paro bench --densities 0.2 --pv-format ${SRC_PV:-fp16} --iters 1 --warmup 1 > "$OUT/ncu_src.txt" 2>&1
  note "ncu source counters: rc=$?"
  cp "$OUT/ncu_src.txt" "$FINAL/" 2>/dev/null
  timeout 200 $NCU --clock-control none --kernel-name regex:attention_ --launch-skip 3 --launch-count 1 \
    --set full --import-source no --page source --print-source sass \
    $B/paro bench --densities 0.2 --pv-format ${SRC_PV:-fp16} --iters 1 --warmup 1 > "$OUT/ncu_sass.txt" 2>&1
  note "ncu per-instruction: rc=$? $(wc -l < "$OUT/ncu_sass.txt") lines"
  gzip -c "$OUT/ncu_sass.txt" > "$FINAL/ncu_sass.txt.gz"
fi
if has ncuprep; then  # the preparation kernels (K mean, fused permute + quantize), D 64
  NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
  timeout 200 $NCU --clock-control none --kernel-name regex:"k_mean|quantize" --launch-skip 4 --launch-count 2 \
    --section SpeedOfLight --section Occupancy --section LaunchStats --section MemoryWorkloadAnalysis \
    --metrics regex:smsp__average_warps_issue_stalled_.*_per_issue_active\.ratio \
    $B/paro bench --densities 0.2 --iters 1 --warmup 1 > "$OUT/ncu_prep.txt" 2>&1
  note "ncu prep kernels: rc=$?"
  grep -E "k_mean|quantize_kernel|Duration|DRAM Throughput|Memory Throughput|Registers Per|Achieved Occupancy|Theoretical Occ|Block Limit" "$OUT/ncu_prep.txt" | head -30 | tee -a "$summary"
  grep -E "issue_stalled" "$OUT/ncu_prep.txt" | awk '$NF+0 > 0.3' | head -12 | tee -a "$summary"
  cp "$OUT/ncu_prep.txt" "$FINAL/" 2>/dev/null
fi
if has sass; then
  obj=$(find $B/kernels -name 'attention_sm90.cu.o' | head -1)
  for pv in 0 1; do
    fn=$(cuobjdump -sass "$obj" 2>/dev/null | grep -o "Function : [^ ]*attention_sm90_kernelILi64E13__nv_bfloat16Lb${pv}E[^ ]*" | head -1 | cut -d' ' -f3)
    f="$FINAL/sass_sm90_d64_bf16_pv16_$pv.txt"
    cuobjdump -sass -fun "$fn" -arch sm_90a "$obj" > "$f" 2>&1
    note "sass: $(grep -cE '^\s+/\*[0-9a-f]{4}\*/' "$f") instructions in attention_sm90_kernel<64, bf16, pv16=$pv>; GMMA: $(grep -cE 'GMMA' "$f")"
  done
fi
cp "$summary" $OUT/bench*.log $OUT/bench128.log $OUT/torch.log $OUT/ncu.txt $OUT/tests_gpu.log "$FINAL/" 2>/dev/null
tail -c 20000 $OUT/build.log > "$FINAL/build_tail.log" 2>/dev/null
echo "================ SUMMARY"
cat "$summary"
