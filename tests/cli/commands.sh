#!/usr/bin/env bash
# The command line end to end: --version/--help, synth variants -> calibrate -> check -> inspect,
# inspect --json against its JSON Schema, and check catching a corrupted pattern.
set -uo pipefail
source "$(dirname "$0")/common.bash"
run 0 "$PARO" --version
grep -q "^paro [0-9]" "$dir/out.txt" || { echo "FAIL: --version prints '$(cat "$dir/out.txt")'"; fail=1; }
for sub in calibrate merge inspect check synth validate bench report; do run 0 "$PARO" "$sub" --help; done
run 2 "$PARO"
run 2 "$PARO" frobnicate
run 2 "$PARO" synth -o "$dir/x.h5" --grid 3x3
run 2 "$PARO" synth -o "$dir/x.h5" --head-dim 96
run 2 "$PARO" synth -o "$dir/x.h5" --kinds spatial,diagonal
run 2 "$PARO" synth -o "$dir/x.h5" --grid 40x40x40 --maps

variants=("--grid 4x9x11 --text 20"
          "--grid 3x10x7 --text 5 --text-position suffix --dtype float32"
          "--grid 5x6x13 --text 0 --head-dim 128 --no-v"
          "--grid 4x10x11 --text 12 --maps"
          "--grid 1x24x30 --text 7 --samples 4 --prompts 2")
i=0
for v in "${variants[@]}"; do
    i=$((i + 1))
    # shellcheck disable=SC2086
    run 0 "$PARO" synth -o "$dir/d$i.h5" $v --seed $i -q
    run 0 "$PARO" check "$dir/d$i.h5"
    run 0 "$PARO" calibrate "$dir/d$i.h5" -o "$dir/p$i.h5" --density 0.6 -q
    run 0 "$PARO" check "$dir/p$i.h5"
    run 0 "$PARO" inspect "$dir/p$i.h5" --json
    "$PYTHON" - "$dir/out.txt" "$SOURCE_DIR/schemas/inspect-pattern.schema.json" <<'PY' || fail=1
import json, sys, jsonschema
doc, schema = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
jsonschema.Draft202012Validator(schema).validate(doc)
tiles = doc["tiles_per_side"] ** 2  # density comes in steps of one tile
for layer in doc["layers"]:
    for head in layer["heads"]:
        assert all(abs(d - 0.6) <= 0.5 / tiles + 1e-12 for d in head["density"]), head["density"]
PY
    run 0 "$PARO" inspect "$dir/p$i.h5"
    grep -q "paro-pattern v2" "$dir/out.txt" || { echo "FAIL: inspect text"; fail=1; }
    run 0 "$PARO" inspect "$dir/d$i.h5"
done
# Text from a file reaches the terminal without its control bytes (an escape sequence, a forged line).
"$PYTHON" - "$dir/d1.h5" "$dir/evil.h5" <<'PY' || fail=1
import shutil, sys, h5py
shutil.copy(sys.argv[1], sys.argv[2])
with h5py.File(sys.argv[2], "a") as f:
    f.attrs["model"] = "evil\x1b[2J\nforged line"
PY
run 0 "$PARO" inspect "$dir/evil.h5"
if grep -q $'\x1b' "$dir/out.txt" || grep -q "^forged" "$dir/out.txt"; then echo "FAIL: inspect printed control bytes"; fail=1; fi
# Calibrate with every objective and with slots; the summary names the pattern size.
run 0 "$PARO" synth -o "$dir/s.h5" --grid 4x10x12 --text 16 --samples 6 -q
for obj in recall paper output-error; do
    run 0 "$PARO" calibrate "$dir/s.h5" -o "$dir/s-$obj.h5" --objective "$obj" --slots 3 --density 0.5
    grep -q "pattern file" "$dir/out.txt" || { echo "FAIL: no summary for $obj"; fail=1; }
done
# The quantization plan in inspect's summary: heads per QK width and PV format.
run 0 "$PARO" calibrate "$dir/s.h5" -o "$dir/q.h5" --density 0.5 --qk-bits 16 --pv-format fp16 -q
run 0 "$PARO" inspect "$dir/q.h5"
grep -q "quantization   QK 16-bit x 8, PV fp16 x 8 heads" "$dir/out.txt" || { echo "FAIL: inspect's quantization line"; fail=1; }
# Masks chosen three rows at a time: said by calibrate's summary and inspect's tiles line.
run 0 "$PARO" calibrate "$dir/s.h5" -o "$dir/g.h5" --density 0.5 --mask-rows 3
grep -q "masks chosen 3 rows at a time" "$dir/out.txt" || { echo "FAIL: calibrate's summary of --mask-rows"; fail=1; }
run 0 "$PARO" inspect "$dir/g.h5"
grep -q "tiles .*masks chosen 3 rows at a time" "$dir/out.txt" || { echo "FAIL: inspect's tiles line of --mask-rows"; fail=1; }
run 2 "$PARO" calibrate "$dir/d3.h5" -o "$dir/x.h5" --objective output-error   # d3 has no v
[ -e "$dir/x.h5" ] && { echo "FAIL: output left behind"; fail=1; }
# Progress line: on a terminal only, and not with --quiet.
if command -v script >/dev/null; then
    script -qc "$PARO calibrate $dir/s.h5 -o $dir/tty.h5" /dev/null >"$dir/tty.txt" 2>&1
    grep -q "heads/s" "$dir/tty.txt" || { echo "FAIL: no progress line on a terminal"; fail=1; }
    script -qc "$PARO calibrate $dir/s.h5 -o $dir/tty.h5 --quiet" /dev/null >"$dir/tty.txt" 2>&1
    grep -q "heads/s" "$dir/tty.txt" && { echo "FAIL: progress line despite --quiet"; fail=1; }
    # inspect: colored on a terminal, plain on a pipe.
    script -qc "$PARO inspect $dir/tty.h5" /dev/null >"$dir/tty.txt" 2>&1
    grep -q $'\033\[' "$dir/tty.txt" || { echo "FAIL: inspect not colored on a terminal"; fail=1; }
    "$PARO" inspect "$dir/tty.h5" | grep -q $'\033\[' && { echo "FAIL: inspect colored on a pipe"; fail=1; }
fi
run 0 "$PARO" calibrate "$dir/s.h5" -o "$dir/pipe.h5"
grep -q "heads/s" "$dir/err.txt" && { echo "FAIL: progress line on a pipe"; fail=1; }
# A corrupted pattern: check exits 1 and names the dataset (needs h5py to corrupt it).
if "$PYTHON" -c "import h5py" 2>/dev/null; then
    cp "$dir/p1.h5" "$dir/bad.h5"
    "$PYTHON" -c "
import h5py, sys
with h5py.File('$dir/bad.h5', 'r+') as f:
    del f['layers/0/density']
    f['layers/0/density'] = [[2.0]]
    f.attrs['order_names'] = ['FHW', 'FHW', 'HFW', 'HWF', 'WFH', 'WHF']
" || { echo "FAIL: could not corrupt the pattern"; fail=1; }
    run 1 "$PARO" check "$dir/bad.h5"
    grep -q "layers/0/density" "$dir/out.txt" && grep -q "order_names" "$dir/out.txt" || { echo "FAIL: check output"; cat "$dir/out.txt"; fail=1; }
    run 2 "$PARO" inspect "$dir/bad.h5"
else
    echo "h5py missing: the corrupted-pattern checks are skipped"
fi
[ $fail -eq 0 ] && echo "commands: all checks passed"
exit $fail
