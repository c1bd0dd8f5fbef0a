#!/usr/bin/env bash
# Timed check: a report of a CogVideoX-5B-sized pattern (42 layers x 48 heads, grid 13x30x45 + 226
# text tokens, 278 x 278 tiles, 10 timestep slots, 4 samples) is written in under 30 s, and the
# page stays small (index.html < 8 MiB, the whole directory < 40 MiB).
# Usage: PARO=build/paro tests/report/time_report_42x48.sh   (LIMIT_S overrides the 30 s)
source "$(dirname "$0")/common.sh"
need_python_modules h5py
LIMIT_S=${LIMIT_S:-30}
"$PYTHON" "$HERE/make_pattern.py" "$WORK/cog.h5" --layers 42 --heads 48 --grid 13 30 45 --text 226 --slots 10 --samples 4
start=$EPOCHREALTIME
"$PARO" report -q "$WORK/cog.h5" -o "$WORK/rep"
end=$EPOCHREALTIME
secs=$("$PYTHON" -c "print($end - $start)")
html=$(stat -c %s "$WORK/rep/index.html")
total=$(du -sb "$WORK/rep" | cut -f1)
images=$(ls "$WORK/rep/img" | wc -l)
printf 'report of 42x48 heads, 10 slots: %.2f s, index.html %d bytes, %d images, %d bytes in all\n' \
    "$secs" "$html" "$images" "$total"
"$PYTHON" - "$secs" "$LIMIT_S" "$html" "$total" <<'PY'
import sys
secs, limit, html, total = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
ok = True
if secs >= limit: print(f"FAIL: {secs:.2f} s >= {limit} s"); ok = False
if html >= 8 << 20: print(f"FAIL: index.html is {html} bytes"); ok = False
if total >= 40 << 20: print(f"FAIL: the report is {total} bytes"); ok = False
sys.exit(0 if ok else 1)
PY

# The page stays usable: Chromium loads it, every image shows, the 2016 heads' numbers match.
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
if [ -x "$CHROMIUM" ] && "$PYTHON" -c "import PIL" 2>/dev/null; then
  "$PARO" inspect "$WORK/cog.h5" --json > "$WORK/cog.json"
  start=$EPOCHREALTIME
  "$PYTHON" "$HERE/browser_check.py" "$WORK/rep" "$WORK/cog.json" --chromium "$CHROMIUM" \
      --screenshot "${ARTIFACT_DIR:-$WORK}/report_42x48.png" --min-images 40
  printf 'browser checks of the 42x48 page: %.1f s\n' "$("$PYTHON" -c "print($EPOCHREALTIME - $start)")"
else
  echo "(no chromium: the 42x48 page was not opened in a browser)"
fi
echo "time_report_42x48: ok"
