# Sourced by the command tests: a scratch directory removed on exit, and run(), which runs a
# command with its output in $dir/out.txt and $dir/err.txt and marks the test failed when the
# exit status is not the expected one.
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
fail=0
run() {  # expected-exit command...
    local want=$1; shift
    "$@" >"$dir/out.txt" 2>"$dir/err.txt"; local rc=$?
    if [ "$rc" -ne "$want" ]; then echo "FAIL (exit $rc, wanted $want): $*"; cat "$dir/out.txt" "$dir/err.txt"; fail=1; fi
}
one_line_naming() {  # the error of the last run: one line naming $1
    if [ "$(wc -l <"$dir/err.txt")" -ne 1 ] || ! grep -q -- "$1" "$dir/err.txt"; then
        echo "FAIL: expected one error line naming $1, got:"; cat "$dir/err.txt"; fail=1
    fi
}
same_hdf5() {  # FILE FILE [ATTRIBUTE...]: every dataset and attribute equal, bit for bit, but the creation time and the attributes named
    "$PYTHON" - "$@" <<'PY' || { echo "FAIL: $1 and $2 differ"; fail=1; }
import sys, h5py, numpy as np
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
ignored = {"created", *sys.argv[3:]}
def attrs(o):  # values with their types: strings as text, numbers as bytes
    return {k: (np.asarray(v).dtype.str, np.asarray(v).tobytes() if np.asarray(v).dtype.kind in "iuf" else np.asarray(v).tolist())
            for k, v in o.attrs.items() if k not in ignored}
def walk(f):
    out = {"/": attrs(f)}
    f.visititems(lambda n, o: out.__setitem__(n, (attrs(o), o[()].tobytes() if isinstance(o, h5py.Dataset) else None)))
    return out
wa, wb = walk(a), walk(b)
bad = [k for k in set(wa) | set(wb) if wa.get(k) != wb.get(k)]
if bad:
    sys.exit(f"differ at {sorted(bad)[:5]}")
PY
}
