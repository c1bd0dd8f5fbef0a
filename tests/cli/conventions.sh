#!/usr/bin/env bash
# The command line's conventions: unknown commands named with a suggestion; NO_COLOR, TERM=dumb and
# --color; exit status 3 for "no GPU"; `paro help` topics and the man page from the definitions;
# --json of calibrate, merge and check against their schemas and against the files (h5py); the
# low-recall warning of calibrate, inspect and validate with its threshold.
set -uo pipefail
source "$(dirname "$0")/common.bash"
say() { echo "FAIL: $*"; fail=1; }
options_of() { "$PARO" "$1" --help | grep -oE -- '^ +(-[a-zA-Z],)?--[a-z][a-z0-9-]+' | grep -oE -- '--[a-z0-9-]+' | sort -u; }

# Unknown commands and help topics: exit 2, one line, the closest name suggested.
run 2 "$PARO" calibrat x.h5
grep -q "unknown command 'calibrat' (did you mean 'calibrate'?)" "$dir/err.txt" || say "no suggestion: $(cat "$dir/err.txt")"
[ "$(wc -l <"$dir/err.txt")" -eq 1 ] || say "more than one line for an unknown command"
run 2 "$PARO" valdiate
grep -q "did you mean 'validate'" "$dir/err.txt" || say "no suggestion for valdiate: $(cat "$dir/err.txt")"
run 2 "$PARO" frobnicate
grep -q "unknown command 'frobnicate'" "$dir/err.txt" && ! grep -q "did you mean" "$dir/err.txt" ||
    say "frobnicate: $(cat "$dir/err.txt")"
run 2 "$PARO" help exit-stat
grep -q "did you mean 'exit-status'" "$dir/err.txt" || say "help exit-stat: $(cat "$dir/err.txt")"
run 0 "$PARO" help exit-status
for code in 0 1 2 3; do grep -qE "^  $code   " "$dir/out.txt" || say "help exit-status lacks status $code"; done
run 0 "$PARO" help environment
for v in NO_COLOR PARO_MEMORY_LIMIT PARO_HDF5_PROBE_SECONDS; do grep -q "$v" "$dir/out.txt" || say "help environment lacks $v"; done
run 0 "$PARO" help calibrate
"$PARO" calibrate --help >"$dir/direct.txt"
cmp -s "$dir/out.txt" "$dir/direct.txt" || say "paro help calibrate differs from paro calibrate --help"
run 0 "$PARO" help
for sub in calibrate merge inspect check synth validate bench report export completion; do
    grep -q "^  $sub" "$dir/out.txt" || say "paro help does not list $sub"
done

# The man page: renders without groff warnings and names every command and every option.
"$PARO" help --man >"$dir/paro.1" || say "help --man"
if command -v groff >/dev/null; then
    groff -man -Tutf8 -ww -z "$dir/paro.1" 2>"$dir/groff.txt"
    [ ! -s "$dir/groff.txt" ] || say "groff warnings: $(head -3 "$dir/groff.txt")"
    groff -man -Tutf8 "$dir/paro.1" 2>/dev/null | sed 's/.\x08//g' >"$dir/man.txt"
    for sub in calibrate merge inspect check synth validate bench report export; do
        grep -q "paro $sub" "$dir/man.txt" || say "man page lacks paro $sub"
        # every long option of the command's --help appears in the man page
        for opt in $(options_of "$sub"); do
            grep -q -- "$opt" "$dir/man.txt" || say "man page lacks $sub $opt"
        done
    done
    for section in "EXIT STATUS" ENVIRONMENT FILES; do grep -q "^$section" "$dir/man.txt" || say "man page lacks $section"; done
fi

# Colors: on a terminal unless NO_COLOR (non-empty) or TERM=dumb; --color always / never win.
run 0 "$PARO" synth -q -o "$dir/d.h5" --grid 4x10x12 --text 16 --layers 2 --heads 3 --samples 3 --seed 4
run 0 "$PARO" calibrate -q "$dir/d.h5" -o "$dir/p.h5" --density 0.6 --slots 2
colored() { grep -q $'\033\[' "$1"; }
if command -v script >/dev/null; then
    tty_run() { env "$@" script -qc "$PARO inspect $dir/p.h5 ${COLOR_FLAG:-}" /dev/null >"$dir/tty.txt" 2>&1; }
    tty_run TERM=xterm; colored "$dir/tty.txt" || say "no colors on a terminal"
    tty_run TERM=xterm NO_COLOR=1; colored "$dir/tty.txt" && say "colors despite NO_COLOR=1"
    tty_run TERM=xterm NO_COLOR=; colored "$dir/tty.txt" || say "an empty NO_COLOR turned colors off"
    tty_run TERM=dumb; colored "$dir/tty.txt" && say "colors on TERM=dumb"
    COLOR_FLAG="--color never" tty_run TERM=xterm; colored "$dir/tty.txt" && say "colors despite --color never"
    COLOR_FLAG="--color=always" tty_run TERM=xterm NO_COLOR=1; colored "$dir/tty.txt" || say "--color=always lost to NO_COLOR"
fi
"$PARO" inspect "$dir/p.h5" >"$dir/pipe.txt"; colored "$dir/pipe.txt" && say "colors on a pipe"
"$PARO" inspect "$dir/p.h5" --color always >"$dir/pipe.txt"; colored "$dir/pipe.txt" || say "--color always on a pipe"
run 2 "$PARO" inspect "$dir/p.h5" --color sometimes

# No usable GPU: exit 3 with one line, whether the build has CUDA or not (the GPUs hidden).
export CUDA_VISIBLE_DEVICES=
run 3 "$PARO" calibrate "$dir/d.h5" -o "$dir/gpu.h5" --device cuda
grep -q -- "--device" "$dir/err.txt" && [ "$(wc -l <"$dir/err.txt")" -eq 1 ] || say "calibrate --device cuda: $(cat "$dir/err.txt")"
[ -e "$dir/gpu.h5" ] && say "output left behind by a refused calibrate"
run 3 "$PARO" validate "$dir/p.h5" --dump "$dir/d.h5"
grep -q "GPU" "$dir/err.txt" || say "validate without a GPU: $(cat "$dir/err.txt")"
run 3 "$PARO" bench --iters 1
run 0 "$PARO" calibrate -q "$dir/d.h5" -o "$dir/auto.h5" --density 0.6 --slots 2 --device auto
unset CUDA_VISIBLE_DEVICES

# calibrate --json, merge --json and check --json against their schemas and the files.
if "$PYTHON" -c "import jsonschema, h5py" 2>/dev/null; then
    validate_json() {  # validate_json JSON SCHEMA
        "$PYTHON" -c "
import json, sys, jsonschema
jsonschema.Draft202012Validator(json.load(open(sys.argv[2]))).validate(json.load(open(sys.argv[1])))
" "$1" "$SOURCE_DIR/schemas/$2" || say "$1 does not follow $2"
    }
    run 0 "$PARO" calibrate "$dir/d.h5" -o "$dir/j.h5" --density 0.5 --slots 2 --json
    validate_json "$dir/out.txt" calibrate-summary.schema.json
    cp "$dir/out.txt" "$dir/cal.json"
    "$PYTHON" - "$dir/cal.json" "$dir/j.h5" <<'PY' || say "calibrate --json disagrees with the pattern file"
import json, sys
import h5py, numpy as np
doc = json.load(open(sys.argv[1]))
with h5py.File(sys.argv[2], "r") as f:
    names = [n.decode() if isinstance(n, bytes) else n for n in f.attrs["order_names"]]
    L = int(f["layers"].attrs["count"])
    dens = np.concatenate([f["layers"][str(l)]["density"][()].ravel() for l in range(L)])
    rec = np.concatenate([f["layers"][str(l)]["recall"][()].ravel() for l in range(L)])
    orders = np.concatenate([f["layers"][str(l)]["orders"][()] for l in range(L)])
assert doc["output"] == sys.argv[2] and doc["partial"] is False
assert doc["heads"] == len(orders) and len(doc["layers"]) == L
assert abs(doc["mean_density"] - dens.mean()) < 1e-12 and abs(doc["mean_recall"] - rec.mean()) < 1e-12
assert {n: int((orders == i).sum()) for i, n in enumerate(names)} == doc["orders"]
low = doc["low_recall"]
assert low["masks"] == rec.size and low["below"] == int((rec < 0.9).sum()) and abs(low["lowest"] - rec.min()) < 1e-12
assert (len(doc["warnings"]) > 0) == (low["below"] > 0)
assert doc["timing"]["read_bytes"] > 0
PY
    run 0 "$PARO" calibrate "$dir/d.h5" -o "$dir/part0.h5" --density 0.5 --slots 2 --layers 0:1 --json
    validate_json "$dir/out.txt" calibrate-summary.schema.json
    grep -q '"partial": true' "$dir/out.txt" || say "a partial's summary says partial false"
    run 0 "$PARO" calibrate -q "$dir/d.h5" -o "$dir/part1.h5" --density 0.5 --slots 2 --layers 1:
    run 0 "$PARO" merge "$dir/part0.h5" "$dir/part1.h5" -o "$dir/merged.h5" --json
    validate_json "$dir/out.txt" calibrate-summary.schema.json
    grep -q '"parts": 2' "$dir/out.txt" || say "merge --json lacks parts"

    run 0 "$PARO" check "$dir/j.h5" --json
    validate_json "$dir/out.txt" check.schema.json
    grep -q '"ok": true' "$dir/out.txt" || say "check --json of a sound pattern"
    cp "$dir/j.h5" "$dir/bad.h5"
    "$PYTHON" -c "
import h5py, sys
with h5py.File(sys.argv[1], 'r+') as f:
    del f['layers/0/density']
    f['layers/0/density'] = [[2.0]]
" "$dir/bad.h5"
    run 1 "$PARO" check "$dir/bad.h5"
    cp "$dir/out.txt" "$dir/check.txt"
    run 1 "$PARO" check "$dir/bad.h5" --json
    validate_json "$dir/out.txt" check.schema.json
    "$PYTHON" - "$dir/out.txt" "$dir/check.txt" "$dir/bad.h5" <<'PY' || say "check --json and the text output disagree"
import json, sys
doc = json.load(open(sys.argv[1]))
lines = [l.rstrip("\n") for l in open(sys.argv[2])]
assert doc["ok"] is False and doc["format"] == "paro-pattern" and doc["file"] == sys.argv[3]
assert [f"{sys.argv[3]}: {v}" for v in doc["violations"]] == lines, (doc["violations"], lines)
assert any("layers/0/density" in v for v in doc["violations"])
PY
    printf 'not hdf5' >"$dir/junk.h5"
    run 2 "$PARO" check "$dir/junk.h5" --json
    [ ! -s "$dir/out.txt" ] || say "check --json printed JSON for a file it cannot read"
fi

# Low recall: synth's defaults at density 0.3 keep about a third of the attention mass.
run 0 "$PARO" synth -q -o "$dir/low.h5" --samples 2
run 0 "$PARO" calibrate "$dir/low.h5" -o "$dir/lowp.h5" --density 0.3
grep -q "LOW: .* masks below 0.9" "$dir/out.txt" || say "calibrate's summary does not mark the low recall"
grep -q "^paro: warning: .*lowp.h5: .* masks keep less than 0.9 of the attention mass" "$dir/err.txt" ||
    say "calibrate: no low-recall warning on stderr: $(cat "$dir/err.txt")"
run 0 "$PARO" calibrate -q "$dir/low.h5" -o "$dir/lowp.h5" --density 0.3
grep -q "warning" "$dir/err.txt" || say "--quiet silenced the low-recall warning"
run 0 "$PARO" calibrate "$dir/low.h5" -o "$dir/lowp.h5" --density 0.3 --warn-recall 0.2
grep -q "warning" "$dir/err.txt" "$dir/out.txt" && say "--warn-recall 0.2 still warns"
run 2 "$PARO" calibrate "$dir/low.h5" -o "$dir/lowp.h5" --warn-recall 1.5
run 0 "$PARO" inspect "$dir/lowp.h5"
grep -q "warning" "$dir/err.txt" || say "inspect: no low-recall warning"
run 0 "$PARO" validate --cpu "$dir/lowp.h5" --dump "$dir/low.h5"
grep -q "masks keep less than 0.9" "$dir/err.txt" || say "validate: no low-recall warning"
grep -q "output cosine below 0.99" "$dir/err.txt" || say "validate: no low-cosine warning"
run 0 "$PARO" validate --cpu "$dir/lowp.h5" --dump "$dir/low.h5" --json --warn-recall 0 --warn-cosine 0
grep -q '"warnings": \[\]' "$dir/out.txt" || say "validate --json with warnings off still lists some"
run 0 "$PARO" calibrate -q "$dir/d.h5" -o "$dir/sound.h5" --density 0.95
run 0 "$PARO" validate --cpu "$dir/sound.h5" --dump "$dir/d.h5"
grep -q "warning" "$dir/err.txt" && say "validate warns on a sound pattern: $(cat "$dir/err.txt")"
[ $fail -eq 0 ] && echo "conventions: all checks passed"
exit $fail
