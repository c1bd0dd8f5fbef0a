#!/bin/bash
# `paro calibrate --device cuda` end to end at full size (issue 10's benchmark), one command from
# the repository root of a GPU machine:  bash bench/gpu/calibrate_e2e.sh
# Builds into build-gpu/ (CMAKE_EXTRA: more cmake options; SKIP_BUILD=1 reuses it), runs the GPU
# calibration tests, times the naive PyTorch reference and the engine per head, then:
#  - a CogVideoX-5B-size sample (42 layers x 48 heads, N = 17,776 = 226 + 13x30x45, D 64, fp16 q/k,
#    9.2 GB) written by `paro synth`, read once into the page cache, calibrated RUNS times on one
#    GPU (--density 0.3), then once with --recall 0.9; on every visible GPU too when there are two
#    or more (the pattern files must be identical but for the creation time);
#  - a Wan 2.1 720p-size layer (16 heads, N = 75,600 = 21x45x80, D 128) for the peak GPU memory.
# Peak GPU memory: nvidia-smi sampled every 50 ms, minus the reading before the run. Logs and a
# summary in $OUT (default /tmp/paro_e2e_out); the dumps in $DATA (default /tmp/paro_e2e).
set -u
OUT=${OUT:-/tmp/paro_e2e_out}
DATA=${DATA:-/tmp/paro_e2e}
B=${BUILD_DIR:-build-gpu}
RUNS=${RUNS:-3}
PY=${GPU_PYTHON:-python3}
mkdir -p "$OUT" "$DATA"
summary="$OUT/summary.txt"
: > "$summary"
note() { echo "$*" | tee -a "$summary"; }
note "card: $(nvidia-smi --query-gpu=name --format=csv,noheader | head -1) x $(nvidia-smi -L | wc -l), $(nproc) cores, date $(date -u +%F' '%H:%M) UTC"

if [ "${SKIP_BUILD:-0}" = 0 ]; then
  cmake -S . -B $B -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_COMPILER=/usr/local/cuda/bin/nvcc \
    -DCMAKE_CUDA_ARCHITECTURES="90a;80" ${CMAKE_EXTRA:-} > "$OUT/cmake.log" 2>&1 || { tail -30 "$OUT/cmake.log"; exit 1; }
  timeout 500 cmake --build $B -j"$(nproc)" --target paro_cli paro_gpu_tests paro_tile_stats_bench > "$OUT/build.log" 2>&1 ||
    { grep -E "error" "$OUT/build.log" | head -30; exit 1; }
fi
P=$B/paro
timeout 300 $B/tests/gpu/paro_gpu_tests "[tile_stats],[tile_stats_gpu]" > "$OUT/tests.log" 2>&1
note "GPU tile statistics and calibration tests: rc=$? $(grep -E 'test cases|All tests' "$OUT/tests.log" | tail -1)"
PARO=$P timeout 300 bash tests/gpu/calibrate_devices.sh > "$OUT/devices.log" 2>&1
note "tests/gpu/calibrate_devices.sh (CPU and GPU give the same orders and masks): rc=$?"

# Per head, in this same call: the naive PyTorch reference (NAIVE: the script from ../shared/bench,
# default .deps/naive_calibrate_gpu.py) at N = 17,776, then the engine at both shapes against it.
NAIVE=${NAIVE:-.deps/naive_calibrate_gpu.py}
if [ -f "$NAIVE" ]; then
  timeout 300 "$PY" "$NAIVE" > "$OUT/naive.log" 2>&1
  naive_ms=$(grep -oE '[0-9.]+ ms/head' "$OUT/naive.log" | grep -oE '^[0-9.]+')
  note "naive PyTorch reference ($NAIVE): ${naive_ms:-?} ms per head, $(grep -E 'peak mem' "$OUT/naive.log")"
  timeout 300 $B/bench/gpu/paro_tile_stats_bench 5 --naive-ms "${naive_ms:-44.0}" > "$OUT/per_head.log" 2>&1
  note "paro_tile_stats_bench 5 --naive-ms ${naive_ms:-44.0}: rc=$?"
  tee -a "$summary" < "$OUT/per_head.log"
fi

# Runs paro calibrate with GPU memory sampling; prints "wall_s peak_gpu_MiB" and keeps the log.
run_calibrate() {
  local log=$1; shift
  local base; base=$(nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits | sort -n | tail -1)
  nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 50 > "$log.mem" 2>/dev/null &
  local sampler=$!
  local t0; t0=$(date +%s.%N)
  /usr/bin/time -v $P calibrate "$@" > "$log" 2> "$log.time"
  local rc=$?
  local t1; t1=$(date +%s.%N)
  kill $sampler 2>/dev/null; wait $sampler 2>/dev/null
  local peak; peak=$(sort -n "$log.mem" | tail -1)
  echo "$rc $(awk "BEGIN { printf \"%.2f\", $t1 - $t0 }") $(( ${peak:-0} - base ))"
}

cog=$DATA/cogvideox.h5
if [ ! -s "$cog" ]; then
  t0=$(date +%s.%N)
  $P synth -q -o "$cog" --grid 13x30x45 --text 226 --layers 42 --heads 48 --samples 1 --head-dim 64 --no-v
  note "paro synth CogVideoX-5B size (42 x 48 heads, fp16 q/k): rc=$? $(awk "BEGIN { printf \"%.1f\", $(date +%s.%N) - $t0 }") s, $(du -h "$cog" | cut -f1)"
fi
cat "$cog" > /dev/null
note "| run | device | rc | wall s | peak GPU MiB | peak RSS MiB | summary: time line |"
note "|---|---|---|---|---|---|---|"
row() {  # label device log result
  local rss; rss=$(awk '/Maximum resident/ { print int($6 / 1024) }' "$3.time")
  set -- "$1" "$2" "$3" $4
  note "| $1 | $2 | $4 | $5 | $6 | $rss | $(grep -E '^  time:' "$3" | sed 's/^  time: //') |"
}
for i in $(seq 1 "$RUNS"); do
  r=$(run_calibrate "$OUT/cog_gpu1_$i.log" "$cog" -o "$DATA/p_gpu1.h5" --density 0.3 --device cuda:0)
  row "CogVideoX density 0.3 #$i" cuda:0 "$OUT/cog_gpu1_$i.log" "$r"
done
if [ "${PASSIVE_ROW:-0}" != 0 ]; then  # how much the OpenMP teams' spin-waiting costs
  r=$(OMP_WAIT_POLICY=passive run_calibrate "$OUT/cog_passive.log" "$cog" -o "$DATA/p_gpu1.h5" --density 0.3 --device cuda:0)
  row "CogVideoX density 0.3, OMP_WAIT_POLICY=passive" cuda:0 "$OUT/cog_passive.log" "$r"
fi
r=$(run_calibrate "$OUT/cog_recall.log" "$cog" -o "$DATA/p_recall.h5" --recall 0.9 --device cuda:0)
row "CogVideoX recall 0.9" cuda:0 "$OUT/cog_recall.log" "$r"
grep -E "^calibrated|mean density|density spread" "$OUT/cog_gpu1_1.log" "$OUT/cog_recall.log" | tee -a "$summary"
gpus=$(nvidia-smi -L | wc -l)
if [ "$gpus" -ge 2 ]; then
  for i in $(seq 1 "$RUNS"); do
    r=$(run_calibrate "$OUT/cog_all_$i.log" "$cog" -o "$DATA/p_all.h5" --density 0.3 --device cuda)
    row "CogVideoX density 0.3 #$i" "cuda (all $gpus)" "$OUT/cog_all_$i.log" "$r"
  done
  "$PY" - "$DATA/p_gpu1.h5" "$DATA/p_all.h5" <<'PY' 2>&1 | tee -a "$summary"
import sys, h5py, numpy as np
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
bad = [k for k in a.attrs if k != "created" and str(a.attrs[k]) != str(b.attrs.get(k))]
def walk(name, obj):
    if isinstance(obj, h5py.Dataset) and not np.array_equal(obj[()], b[name][()]):
        bad.append(name)
a.visititems(walk)
print("multi-GPU pattern vs one GPU:", "identical (but the creation time)" if not bad else "DIFFERENT: " + ", ".join(bad[:10]))
PY
fi

wan=$DATA/wan_layer.h5
[ -s "$wan" ] || $P synth -q -o "$wan" --grid 21x45x80 --text 0 --layers 1 --heads 16 --samples 1 --head-dim 128 --no-v
cat "$wan" > /dev/null
r=$(run_calibrate "$OUT/wan.log" "$wan" -o "$DATA/p_wan.h5" --density 0.3 --device cuda:0)
row "Wan 2.1 720p, 16 heads" cuda:0 "$OUT/wan.log" "$r"
