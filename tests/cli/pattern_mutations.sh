#!/usr/bin/env bash
# Mutated pattern files (tests/cli/pattern_mutations.py): inspect and report refuse each with exit 2
# and one line naming the file, within seconds; check does not pass any of them.
set -uo pipefail
"$PYTHON" -c "import h5py, numpy" 2>/dev/null || { echo "h5py/numpy missing: skipped"; exit 77; }
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
"$PARO" synth -q -o "$dir/d.h5" --grid 3x8x10 --text 16 --layers 2 --heads 3 --samples 2 --no-v || exit 1
"$PARO" calibrate -q "$dir/d.h5" -o "$dir/p.h5" --slots 2 || exit 1
mkdir "$dir/m"
cases=$("$PYTHON" "$(dirname "$0")/pattern_mutations.py" "$dir/p.h5" "$dir/m") || exit 1
fail=0
for c in $cases; do
    f="$dir/m/$c.h5"
    timeout 20 "$PARO" inspect "$f" >/dev/null 2>"$dir/err.txt"; rc=$?
    lines=$(wc -l <"$dir/err.txt")
    if [ $rc -ne 2 ] || [ "$lines" -ne 1 ] || ! grep -q "$c.h5" "$dir/err.txt"; then
        echo "FAIL inspect $c: exit $rc"; cat "$dir/err.txt"; fail=1
    else
        echo "ok   inspect $c: $(cat "$dir/err.txt")"
    fi
    timeout 20 "$PARO" check -q "$f" >/dev/null 2>&1; rc=$?
    [ $rc -eq 1 ] || [ $rc -eq 2 ] || { echo "FAIL check $c: exit $rc"; fail=1; }
done
# Allowed by the format (docs/formats.md): a tile row that keeps no tile (the runtime gives its
# queries zeros) and a cleared text tile, with densities that match the bits: check and inspect pass.
cp "$dir/p.h5" "$dir/e.h5"
"$PYTHON" - "$dir/e.h5" <<'PY' || exit 1
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "r+") as f:
    nb = int(f.attrs["tiles_per_side"])
    m = f["layers/0/masks"][()]
    bits = np.unpackbits(m[0, 0], bitorder="little")
    bits[:nb] = 0  # tile row 0 (text) computes nothing
    m[0, 0] = np.packbits(bits, bitorder="little")
    f["layers/0/masks"][...] = m
    d = f["layers/0/density"][()]
    d[0, 0] = bits[:nb * nb].sum() / (nb * nb)
    f["layers/0/density"][...] = d
PY
for cmd in check inspect; do
    "$PARO" $cmd "$dir/e.h5" >/dev/null 2>"$dir/err.txt" || { echo "FAIL $cmd of a pattern with an empty tile row"; cat "$dir/err.txt"; fail=1; }
done
# Empty options (what library callers wrote before they became {}) mean none: read and checked clean.
cp "$dir/p.h5" "$dir/n.h5"
"$PYTHON" -c 'import sys, h5py; f = h5py.File(sys.argv[1], "r+"); f.attrs["options"] = ""; f.close()' "$dir/n.h5" || exit 1
for cmd in check inspect; do
    "$PARO" $cmd "$dir/n.h5" >/dev/null 2>"$dir/err.txt" || { echo "FAIL $cmd of a pattern with empty options"; cat "$dir/err.txt"; fail=1; }
done
# Odd values in the provenance's options (free-form JSON from any writer) are read, not trusted.
for v in '"x"' 3.5 -1 0 18446744073709551615 '{"a": 1}'; do
    cp "$dir/p.h5" "$dir/o.h5"
    "$PYTHON" - "$dir/o.h5" "$v" <<'PY' || exit 1
import sys, h5py
with h5py.File(sys.argv[1], "r+") as f:
    f.attrs["options"] = '{"mask_rows": %s, "recall": 0.9, "density": "y", "min_density": null}' % sys.argv[2]
PY
    timeout 20 "$PARO" inspect "$dir/o.h5" >"$dir/out.txt" 2>"$dir/err.txt"; rc=$?
    if [ $rc -ne 0 ] || grep -q "rows at a time" "$dir/out.txt"; then
        echo "FAIL inspect with options mask_rows $v: exit $rc"; cat "$dir/err.txt"; fail=1
    fi
done
# The memory budget: a valid pattern whose masks exceed PARO_MEMORY_LIMIT is refused in one line.
PARO_MEMORY_LIMIT=8 "$PARO" inspect "$dir/p.h5" >/dev/null 2>"$dir/err.txt"; rc=$?
if [ $rc -ne 2 ] || [ "$(wc -l <"$dir/err.txt")" -ne 1 ] || ! grep -q "PARO_MEMORY_LIMIT" "$dir/err.txt"; then
    echo "FAIL inspect under PARO_MEMORY_LIMIT=8: exit $rc"; cat "$dir/err.txt"; fail=1
else
    echo "ok   inspect under PARO_MEMORY_LIMIT=8: $(cat "$dir/err.txt")"
fi
"$PARO" inspect "$dir/p.h5" >/dev/null || { echo "FAIL: inspect of the valid pattern"; fail=1; }
# ... and so is work on a dump beyond it: validate (a layer's q, k, v and outputs) and report --dump
# (a head's maps), with a limit the pattern itself fits in; neither leaves output.
"$PARO" synth -q -o "$dir/dv.h5" --grid 2x4x4 --text 8 --layers 1 --heads 2 --samples 1 || exit 1
"$PARO" calibrate -q "$dir/dv.h5" -o "$dir/pv.h5" --density 0.5 || exit 1
for cmd in "validate --cpu $dir/pv.h5 --dump $dir/dv.h5" "report -q $dir/pv.h5 --dump $dir/dv.h5 -o $dir/rep"; do
    PARO_MEMORY_LIMIT=2K "$PARO" $cmd >/dev/null 2>"$dir/err.txt"; rc=$?
    if [ $rc -ne 2 ] || [ "$(wc -l <"$dir/err.txt")" -ne 1 ] || ! grep -q "dv.h5: /layers/0: needs about" "$dir/err.txt" ||
        [ -e "$dir/rep" ]; then
        echo "FAIL ${cmd%% *} under PARO_MEMORY_LIMIT=2K: exit $rc"; cat "$dir/err.txt"; fail=1
    else
        echo "ok   ${cmd%% *} under PARO_MEMORY_LIMIT=2K: $(cat "$dir/err.txt")"
    fi
done
exit $fail
