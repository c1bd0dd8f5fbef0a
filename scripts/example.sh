#!/usr/bin/env bash
# The main job on the bundled example: install what is missing, build, make a small synthetic
# dump with planted heads, calibrate it, print the summary, and write the HTML report.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
out=build/example
mkdir -p "$out"
./build/paro synth -o "$out/dump.h5" --grid 8x16x24 --text 64 --layers 4 --heads 8 --samples 4 --prompts 2 --seed 1
./build/paro calibrate "$out/dump.h5" -o "$out/pattern.h5" --density 0.3 --slots 2
./build/paro report "$out/pattern.h5" --dump "$out/dump.h5" -o "$out/report"
echo "report: $out/report/index.html"
