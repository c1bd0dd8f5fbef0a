#!/usr/bin/env bash
# The report in a real browser (Debian's headless Chromium): screenshot, no console errors, every
# image loads and is not blank, the numbers match `paro inspect --json`. Three reports: the bundled
# example with its dump, a small example with token-level maps, and a hand-made pattern without a dump.
source "$(dirname "$0")/common.sh"
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
[ -x "$CHROMIUM" ] || { echo "SKIP: $CHROMIUM not found (scripts/setup.sh installs it)"; exit 77; }
need_python_modules "numpy, PIL"
ART=${ARTIFACT_DIR:-$WORK/artifacts}
mkdir -p "$ART"

make_example "$WORK"
"$PARO" report -q "$WORK/example_pattern.h5" --dump "$WORK/example_dump.h5" -o "$WORK/rep"
"$PARO" inspect "$WORK/example_pattern.h5" --json > "$WORK/inspect.json"
"$PYTHON" "$HERE/browser_check.py" "$WORK/rep" "$WORK/inspect.json" --chromium "$CHROMIUM" \
    --screenshot "$ART/report_example.png" --min-images 20

make_small_example "$WORK"
"$PARO" report -q "$WORK/small_pattern.h5" --dump "$WORK/small_dump.h5" -o "$WORK/rep_small"
grep -q '_full_chosen.png' "$WORK/rep_small/index.html" || fail "no token-level maps in the small example's report"
"$PARO" inspect "$WORK/small_pattern.h5" --json > "$WORK/inspect_small.json"
"$PYTHON" "$HERE/browser_check.py" "$WORK/rep_small" "$WORK/inspect_small.json" --chromium "$CHROMIUM" \
    --screenshot "$ART/report_small.png" --min-images 20

need_python_modules h5py
"$PYTHON" "$HERE/make_pattern.py" "$WORK/hand.h5" --layers 6 --heads 8 --grid 3 10 12 --text 20 --slots 3 --samples 5
"$PARO" report -q "$WORK/hand.h5" -o "$WORK/rep2"
"$PARO" inspect "$WORK/hand.h5" --json > "$WORK/inspect2.json"
"$PYTHON" "$HERE/browser_check.py" "$WORK/rep2" "$WORK/inspect2.json" --chromium "$CHROMIUM" \
    --screenshot "$ART/report_no_dump.png" --min-images 20
"$PYTHON" "$HERE/check_disagreements.py" "$WORK/hand.h5" "$WORK/rep2/index.html" || fail "disagreement table"

# A pattern of low recall (synth's defaults at density 0.3, recall about 0.3): the warning on top,
# the recall scale reaching below its lowest value; and with --warn-recall 0, no warning.
"$PARO" synth -q -o "$WORK/low_dump.h5" --samples 3
"$PARO" calibrate -q "$WORK/low_dump.h5" -o "$WORK/low.h5" --density 0.3 --slots 3 2>/dev/null
"$PARO" report -q "$WORK/low.h5" --dump "$WORK/low_dump.h5" -o "$WORK/rep_low" 2>"$WORK/low_err.txt"
grep -q "warning: .*masks keep less than 0.9" "$WORK/low_err.txt" || fail "report of a low-recall pattern: no warning on stderr"
"$PARO" inspect "$WORK/low.h5" --json > "$WORK/inspect_low.json" 2>/dev/null
"$PYTHON" "$HERE/browser_check.py" "$WORK/rep_low" "$WORK/inspect_low.json" --chromium "$CHROMIUM" \
    --screenshot "$ART/report_low_recall.png" --min-images 10
"$PARO" report -q "$WORK/low.h5" -o "$WORK/rep_low0" --warn-recall 0 2>"$WORK/low_err.txt"
[ ! -s "$WORK/low_err.txt" ] || fail "--warn-recall 0 still warns: $(cat "$WORK/low_err.txt")"
"$PYTHON" "$HERE/browser_check.py" "$WORK/rep_low0" "$WORK/inspect_low.json" --chromium "$CHROMIUM" \
    --min-images 10 --warn-recall 0

# Hostile strings in every free-text field a report shows (the pattern's provenance and options, the
# dump's model and prompt names, the dump's file name): shown as text, never run.
EVIL='<img src=x onerror="window.__pwned=1"></script><script>window.__pwned=2</script>"'"'"'><svg onload="window.__pwned=3">'
mkdir -p "$WORK/evil"
EVIL_DUMP="$WORK/evil/x<img src=y onerror=window.__pwned=4>.h5"
cp "$WORK/small_dump.h5" "$EVIL_DUMP"
"$PYTHON" - "$WORK/small_pattern.h5" "$EVIL_DUMP" "$EVIL" <<'PY'
import json, sys
import h5py, numpy as np
pattern, dump, evil = sys.argv[1:4]
with h5py.File(pattern, "r+") as f:
    for name in ("tool_version", "created", "source_dump", "source_checksum"):
        f.attrs[name] = evil
    options = json.loads(f.attrs["options"])
    options["note"] = evil
    options[evil] = 1
    f.attrs["options"] = json.dumps(options)
with h5py.File(dump, "r+") as f:
    f.attrs["model"] = evil
    if "prompt_names" in f["samples"].attrs:
        n = len(f["samples"].attrs["prompt_names"])
        f["samples"].attrs["prompt_names"] = np.array([evil] * n, dtype=h5py.string_dtype())
PY
"$PARO" report -q "$WORK/small_pattern.h5" --dump "$EVIL_DUMP" -o "$WORK/rep_evil" || fail "report of hostile strings"
"$PARO" inspect "$WORK/small_pattern.h5" --json > "$WORK/inspect_evil.json"
"$PYTHON" "$HERE/browser_check.py" "$WORK/rep_evil" "$WORK/inspect_evil.json" --chromium "$CHROMIUM" \
    --screenshot "$ART/report_hostile.png" --min-images 20 --hostile 'onerror="window.__pwned=1"'
echo "report_browser: ok (screenshots in $ART)"
