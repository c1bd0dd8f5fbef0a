#!/bin/bash
# `paro validate --cpu` end to end (no GPU needed): exit 0 within thresholds, 1 when missed,
# 2 for bad usage; without --cpu, exit 3 (no GPU) with a clear message when there is no GPU. The same for
# `paro calibrate --device`.
set -u
: "${PARO:?PARO must point at the paro binary}"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$PARO" synth -q -o "$dir/d.h5" --grid 4x8x16 --text 8 --layers 1 --heads 2 --samples 1 || exit 1
"$PARO" calibrate -q "$dir/d.h5" -o "$dir/p.h5" --density 0.5 --no-force-text --no-force-ragged || exit 1
"$PARO" validate -q "$dir/p.h5" --dump "$dir/d.h5" --cpu --min-cosine 0.5 > "$dir/out.txt"
rc=$?; [ $rc -eq 0 ] || { echo "expected 0, got $rc"; cat "$dir/out.txt"; exit 1; }
grep -q "layer 0" "$dir/out.txt" || { echo "no per-layer table"; exit 1; }
"$PARO" validate -q "$dir/p.h5" --dump "$dir/d.h5" --cpu --min-psnr 1000 > /dev/null
rc=$?; [ $rc -eq 1 ] || { echo "threshold missed: expected 1, got $rc"; exit 1; }
"$PARO" validate -q "$dir/p.h5" --dump "$dir/d.h5" --cpu --json > "$dir/out.json" || exit 1
grep -q '"backend": "cpu"' "$dir/out.json" || { echo "bad json"; exit 1; }
[ "$(grep -c '"layer": 0' "$dir/out.json")" -eq 2 ] || { echo "expected 2 head records"; exit 1; }
"$PARO" validate -q "$dir/p.h5" --dump "$dir/d.h5" --cpu --against masked > /dev/null 2>&1
rc=$?; [ $rc -eq 2 ] || { echo "--cpu --against masked: expected 2, got $rc"; exit 1; }
"$PARO" validate -q "$dir/p.h5" --dump "$dir/d.h5" --cpu --upgrade-qk "$dir/u.h5" 2> "$dir/err.txt"
rc=$?; [ $rc -eq 2 ] && [ "$(wc -l < "$dir/err.txt")" -eq 1 ] && grep -q "option --upgrade-qk" "$dir/err.txt" && [ ! -e "$dir/u.h5" ] ||
  { echo "--cpu --upgrade-qk: expected 2 and one line, no output; got $rc:"; cat "$dir/err.txt"; exit 1; }
for input in p.h5 d.h5; do
  cp "$dir/$input" "$dir/before.h5"
  "$PARO" validate -q "$dir/p.h5" --dump "$dir/d.h5" --upgrade-qk "$dir/$input" 2> "$dir/err.txt"
  rc=$?; [ $rc -eq 2 ] && grep -q "is an input file" "$dir/err.txt" && cmp -s "$dir/$input" "$dir/before.h5" ||
    { echo "--upgrade-qk over the input $input: expected 2 and the file untouched, got $rc:"; cat "$dir/err.txt"; exit 1; }
done
"$PARO" validate -q "$dir/p.h5" --dump "$dir/d.h5" --upgrade-qk "$dir/missing/u.h5" 2> "$dir/err.txt"
rc=$?; [ $rc -eq 2 ] && grep -q "missing/u.h5: option --upgrade-qk" "$dir/err.txt" ||
  { echo "--upgrade-qk into a missing directory: expected 2 naming the option, got $rc:"; cat "$dir/err.txt"; exit 1; }
if ! command -v nvidia-smi > /dev/null || ! nvidia-smi > /dev/null 2>&1; then
  "$PARO" validate -q "$dir/p.h5" --dump "$dir/d.h5" 2> "$dir/err.txt"
  rc=$?; [ $rc -eq 3 ] || { echo "no GPU: expected 3, got $rc"; exit 1; }
  grep -q "no CUDA device\|without the CUDA runtime" "$dir/err.txt" || { echo "unclear message:"; cat "$dir/err.txt"; exit 1; }
  "$PARO" bench > /dev/null 2> "$dir/err.txt"
  rc=$?; [ $rc -eq 3 ] || { echo "bench without GPU: expected 3, got $rc"; exit 1; }
  "$PARO" calibrate -q "$dir/d.h5" -o "$dir/c.h5" --density 0.5 --device cuda 2> "$dir/err.txt"
  rc=$?; [ $rc -eq 3 ] && [ "$(wc -l < "$dir/err.txt")" -eq 1 ] && grep -q "option --device.*\(no CUDA device\|without CUDA\)" "$dir/err.txt" ||
    { echo "calibrate --device cuda without GPU: expected 3 and one line, got $rc:"; cat "$dir/err.txt"; exit 1; }
  [ ! -e "$dir/c.h5" ] || { echo "calibrate --device cuda without GPU left an output"; exit 1; }
fi
for spec in tpu cuda: cuda:x cuda:0, cuda:0,0 cuda:1,-1; do
  "$PARO" calibrate -q "$dir/d.h5" -o "$dir/c.h5" --density 0.5 --device "$spec" 2> "$dir/err.txt"
  rc=$?; [ $rc -eq 2 ] && [ "$(wc -l < "$dir/err.txt")" -eq 1 ] && grep -q "option --device" "$dir/err.txt" ||
    { echo "--device $spec: expected 2 and one line naming the option, got $rc:"; cat "$dir/err.txt"; exit 1; }
  [ ! -e "$dir/c.h5" ] || { echo "--device $spec left an output"; exit 1; }
done
"$PARO" calibrate "$dir/d.h5" -o "$dir/c.h5" --density 0.5 --no-force-text --no-force-ragged --device cpu > "$dir/out.txt" ||
  { echo "--device cpu failed"; exit 1; }
grep -q "tile statistics on CPU" "$dir/out.txt" || { echo "the summary does not say where statistics ran"; exit 1; }
grep -q "time: read .* GB/s), tile statistics .*, scoring .*, write" "$dir/out.txt" || { echo "the summary does not say where the time went"; cat "$dir/out.txt"; exit 1; }
echo ok
