#!/bin/bash
# `paro calibrate --device cuda` against `--device cpu` on planted fp16 dumps (text prefix and
# suffix, a ragged last tile, D 64 and 128, three objectives): the same orders and the same masks.
# And attention-map dumps, which the GPU engine does not take: the CPU's under --device auto, an error
# with --device cuda.
# Needs a GPU and a Python with h5py (the GPU machine's python3); skipped (77) otherwise.
# shellcheck source=gpu_h5py_prelude.sh
. "$(dirname "$0")/gpu_h5py_prelude.sh"
fail=0
cases=("--grid 4x12x18 --text 40 --head-dim 64|recall"
       "--grid 3x10x13 --text 7 --text-position suffix --head-dim 128|paper"
       "--grid 5x8x9 --text 16 --head-dim 64 --samples 3|output-error")
i=0
for c in "${cases[@]}"; do
  i=$((i + 1)); synth=${c%|*}; objective=${c#*|}
  # shellcheck disable=SC2086
  "$PARO" synth -q -o "$dir/d$i.h5" $synth --layers 2 --heads 6 --seed $i || { echo "synth failed: $synth"; exit 1; }
  for dev in cpu cuda; do
    "$PARO" calibrate "$dir/d$i.h5" -o "$dir/$dev$i.h5" --density 0.6 --objective $objective --device $dev > "$dir/$dev$i.txt" ||
      { echo "FAIL: calibrate --device $dev ($synth, $objective)"; cat "$dir/$dev$i.txt"; fail=1; }
  done
  grep -q "tile statistics on CUDA" "$dir/cuda$i.txt" || { echo "FAIL: the summary does not name the GPU"; fail=1; }
  "$PY" - "$dir/cpu$i.h5" "$dir/cuda$i.h5" "$synth $objective" <<'PY' || fail=1
import sys, h5py, numpy as np
a, b, what = h5py.File(sys.argv[1]), h5py.File(sys.argv[2]), sys.argv[3]
bad = []
for l in a["layers"]:
    for name in ("orders", "masks"):
        if not np.array_equal(a[f"layers/{l}/{name}"][()], b[f"layers/{l}/{name}"][()]):
            bad.append(f"layer {l} {name}")
    d = np.abs(a[f"layers/{l}/recall"][()] - b[f"layers/{l}/recall"][()]).max()
    if d > 1e-4:
        bad.append(f"layer {l} recall differs by {d:.2e}")
print(("FAIL: " + ", ".join(bad) if bad else "same orders and masks") + f" ({what})")
sys.exit(1 if bad else 0)
PY
done
# Attention-map dumps: the CPU engine under --device auto, a one-line error (exit 2) with --device cuda.
"$PARO" synth -q -o "$dir/maps.h5" --maps --grid 2x4x6 --text 8 --layers 1 --heads 2 || { echo "synth --maps failed"; exit 1; }
"$PARO" calibrate "$dir/maps.h5" -o "$dir/maps_auto.h5" --density 0.6 > "$dir/maps_auto.txt" 2>&1 ||
  { echo "FAIL: an attention-map dump under --device auto"; cat "$dir/maps_auto.txt"; fail=1; }
"$PARO" calibrate "$dir/maps.h5" -o "$dir/maps_cuda.h5" --density 0.6 --device cuda > "$dir/maps_cuda.txt" 2>&1
rc=$?
if [ $rc -ne 2 ] || [ -e "$dir/maps_cuda.h5" ] || ! grep -q "attention maps" "$dir/maps_cuda.txt"; then
  echo "FAIL: an attention-map dump with --device cuda gave exit $rc:"; cat "$dir/maps_cuda.txt"; fail=1
fi
exit $fail
