# Shared by the report test scripts. Needs PARO (the binary); PYTHON defaults to Debian's python3.
set -euo pipefail
: "${PARO:?set PARO to the paro binary}"
PYTHON=${PYTHON:-/usr/bin/python3}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SOURCE_DIR=${SOURCE_DIR:-$(cd "$HERE/../.." && pwd)}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/paro_report_test.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
need_python_modules() {
  "$PYTHON" -c "import $1" 2>/dev/null || { echo "SKIP: $PYTHON lacks $1 (scripts/setup.sh installs it)"; exit 77; }
}
# The bundled example, as scripts/example.sh makes it: a synthetic dump with planted heads
# (N = 3136, 4 layers x 8 heads, 4 samples of 2 prompts), calibrated at density 0.3 with two slots.
make_example() {
  local dir=$1
  "$PARO" synth -q -o "$dir/example_dump.h5" --grid 8x16x24 --text 64 --layers 4 --heads 8 \
      --samples 4 --prompts 2 --seed 1
  "$PARO" calibrate -q "$dir/example_dump.h5" -o "$dir/example_pattern.h5" --density 0.3 --slots 2
}
# A small one (N = 800) whose report also has token-level attention maps.
make_small_example() {
  local dir=$1
  "$PARO" synth -q -o "$dir/small_dump.h5" --grid 4x12x16 --text 32 --layers 2 --heads 4 \
      --samples 4 --prompts 2 --seed 1
  "$PARO" calibrate -q "$dir/small_dump.h5" -o "$dir/small_pattern.h5" --density 0.5 --slots 2
}
