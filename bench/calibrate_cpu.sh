#!/usr/bin/env bash
# CPU calibration benchmark (issue 2): head-samples per second of `paro calibrate` against the
# naive numpy reference (../shared/bench/naive_calibrate_cpu.py) on the same dumps in the same
# run, at N = 3136 and N = 16384, plus peak resident memory. Medians of RUNS runs.
# Usage: bench/calibrate_cpu.sh [RUNS]   (needs a built build/paro; writes bench/out/)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}
PARO=./build/paro
NAIVE=${NAIVE:-../shared/bench/naive_calibrate_cpu.py}
PY=/usr/bin/python3
out=bench/out; mkdir -p "$out"
median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

# name grid text layers heads samples naive_heads
cases=("n3136 8x16x24 64 2 4 2 4" "n16384 16x32x32 0 1 2 1 1")
printf "%-8s %6s %8s %14s %14s %14s %8s %10s\n" case N head-smp "paro s/hs" "naive s/hs" "paro hs/s" speedup "peak MB" | tee "$out/summary.txt"
for c in "${cases[@]}"; do
    read -r name grid text layers heads samples naive_heads <<<"$c"
    dump="$out/$name.h5"
    [ -f "$dump" ] || $PARO synth -o "$dump" --grid "$grid" --text "$text" --layers "$layers" --heads "$heads" \
        --samples "$samples" --seed 5 -q
    N=$($PARO inspect "$dump" --json | $PY -c "import json,sys; print(json.load(sys.stdin)['tokens'])")
    hs=$((layers * heads * samples))
    paro_t=(); peak=()
    for _ in $(seq "$RUNS"); do
        /usr/bin/time -f "%e %M" -o "$out/time.txt" $PARO calibrate "$dump" -o "$out/$name.pattern.h5" --density 0.3 -q
        read -r t m <"$out/time.txt"; paro_t+=("$t"); peak+=("$m")
    done
    paro_med=$(printf "%s\n" "${paro_t[@]}" | median)
    peak_mb=$(printf "%s\n" "${peak[@]}" | sort -g | tail -1 | awk '{printf "%.0f", $1 / 1024}')
    naive_runs=$RUNS; [ "$name" = n16384 ] && naive_runs=1
    naive_t=()
    for _ in $(seq "$naive_runs"); do
        naive_t+=("$(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $PY "$NAIVE" "$dump" --max-heads "$naive_heads" \
            | awk '{print $(NF-2)}')")
    done
    naive_med=$(printf "%s\n" "${naive_t[@]}" | median)
    awk -v n="$name" -v N="$N" -v hs="$hs" -v p="$paro_med" -v q="$naive_med" -v m="$peak_mb" 'BEGIN {
        ps = p / hs; printf "%-8s %6d %8d %14.4f %14.4f %14.2f %7.1fx %10s\n", n, N, hs, ps, q, 1 / ps, q / ps, m }' \
        | tee -a "$out/summary.txt"
done
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)" | tee -a "$out/summary.txt"
