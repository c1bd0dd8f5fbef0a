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
echo "report_browser: ok (screenshots in $ART)"
