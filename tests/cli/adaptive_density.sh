#!/usr/bin/env bash
# calibrate --recall end to end: per-head densities differ, every mask reaches the recall target
# unless the density cap stopped it, the options are recorded, the summary counts capped masks,
# inspect --json still fits its schema and the report shows the density spread.
set -uo pipefail
"$PYTHON" -c "import jsonschema" 2>/dev/null || { echo "jsonschema missing: skipped"; exit 77; }
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
fail=0
"$PARO" synth -o "$dir/d.h5" --grid 8x16x24 --text 64 --layers 4 --heads 8 --samples 4 --prompts 2 --seed 1 -q || exit 1
check_pattern() {  # pattern, recall, cap, min distinct densities
    "$PARO" inspect "$1" --json >"$dir/p.json" || { echo "FAIL: inspect $1"; fail=1; return; }
    "$PYTHON" - "$dir/p.json" "$SOURCE_DIR/schemas/inspect-pattern.schema.json" "$2" "$3" "$4" <<'PY' || fail=1
import json, sys, jsonschema
doc, schema = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
recall, cap, distinct = float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
jsonschema.Draft202012Validator(schema).validate(doc)
options = doc["provenance"]["options"]
assert options["recall"] == recall and options["density"] == cap and options["min_density"] == 0, options
tiles = doc["tiles_per_side"] ** 2
cap_tiles = max(1, round(cap * tiles))
densities, capped = set(), 0
for layer in doc["layers"]:
    for head in layer["heads"]:
        for d, r in zip(head["density"], head["recall"]):
            densities.add(d)
            if round(d * tiles) == cap_tiles and r < recall:
                capped += 1
            else:
                assert r >= recall - 1e-9, (d, r)  # sums in another order may differ in the last bits
assert len(densities) >= distinct, sorted(densities)
print(capped)
PY
}
"$PARO" calibrate "$dir/d.h5" -o "$dir/p.h5" --recall 0.95 --slots 2 >"$dir/out.txt" || { echo "FAIL: calibrate --recall"; fail=1; }
grep -q "density per mask: min" "$dir/out.txt" || { echo "FAIL: no density spread in the summary"; cat "$dir/out.txt"; fail=1; }
grep -q "0 of 64 masks stopped short at the cap" "$dir/out.txt" || { echo "FAIL: uncapped masks counted as capped"; cat "$dir/out.txt"; fail=1; }
[ "$(check_pattern "$dir/p.h5" 0.95 1.0 3)" = 0 ] || { echo "FAIL: recall 0.95 without a cap"; fail=1; }
# A tight cap stops some masks short; the summary counts them as the pattern shows them.
"$PARO" calibrate "$dir/d.h5" -o "$dir/c.h5" --recall 0.95 --density 0.07 >"$dir/out.txt" || { echo "FAIL: capped calibrate"; fail=1; }
capped=$(check_pattern "$dir/c.h5" 0.95 0.07 2)
[ -n "$capped" ] && [ "$capped" -gt 0 ] || { echo "FAIL: no mask hit a cap of 0.07 ($capped)"; fail=1; }
grep -q "recall target 0.95: $capped of 32 masks stopped short at the cap" "$dir/out.txt" ||
    { echo "FAIL: summary does not count $capped capped masks"; cat "$dir/out.txt"; fail=1; }
"$PARO" report "$dir/p.h5" -o "$dir/report" -q >/dev/null 2>&1 || { echo "FAIL: report"; fail=1; }
grep -q 'id="sum-density-spread"' "$dir/report/index.html" || { echo "FAIL: report lacks the density spread"; fail=1; }
[ $fail -eq 0 ] && echo "adaptive density ok"
exit $fail
