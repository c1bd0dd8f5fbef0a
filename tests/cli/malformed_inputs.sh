#!/usr/bin/env bash
# Every malformed input exits 2 with one line on stderr naming the file, and leaves no output.
set -uo pipefail
"$PYTHON" -c "import h5py, numpy" 2>/dev/null || { echo "h5py/numpy missing: skipped"; exit 77; }
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
export HDF5_PLUGIN_PATH="$dir/no-plugins"  # the LZF case needs a libhdf5 that cannot decode it
cases=$("$PYTHON" "$(dirname "$0")/make_malformed.py" "$dir") || exit 1
fail=0
expect_bad() {  # name, file, command...
    local name=$1 file=$2; shift 2
    "$@" >"$dir/out.txt" 2>"$dir/err.txt"; local rc=$?
    local lines; lines=$(wc -l <"$dir/err.txt")
    if [ $rc -ne 2 ] || [ "$lines" -ne 1 ] || ! grep -q "$(basename "$file")" "$dir/err.txt"; then
        echo "FAIL $name: exit $rc, $lines stderr line(s):"; cat "$dir/err.txt"; fail=1
    else
        echo "ok   $name: $(cat "$dir/err.txt")"
    fi
    if ls -A "$dir/outdir" | grep -q .; then echo "FAIL $name: left output: $(ls -A "$dir/outdir")"; fail=1; fi
}
mkdir -p "$dir/outdir"
for c in $cases missing_file; do
    f="$dir/$c.h5"
    case $c in valid*) continue ;; esac
    expect_bad "calibrate $c" "$f" "$PARO" calibrate "$f" -o "$dir/outdir/p.h5"
    # inspect reads metadata only; the tensor values are checked by calibrate and check.
    case $c in nan_in_q|inf_in_k|wide_exponent_q|overflowing_scores|negative_attention|attn_zero_rows|lzf_compressed) ;; *) expect_bad "inspect $c" "$f" "$PARO" inspect "$f" ;; esac
done
# check: a readable file with violations exits 1 and lists them; an unreadable one exits 2.
for c in nan_in_q inf_in_k wide_exponent_q grid_mismatch qk_shape_mismatch integer_tensors no_layers missing_k zero_grid \
         huge_claim never_written timestep_rank2 prompt_names_dup attn_zero_rows qk_and_attn k_and_attn \
         step_beyond prompt_unnamed scale_inf; do
    timeout 20 "$PARO" check "$dir/$c.h5" >"$dir/out.txt" 2>"$dir/err.txt"; rc=$?
    if [ $rc -ne 1 ] || ! grep -q "$c.h5: " "$dir/out.txt"; then
        echo "FAIL check $c: exit $rc"; cat "$dir/out.txt" "$dir/err.txt"; fail=1
    else
        echo "ok   check $c: $(head -1 "$dir/out.txt")"
    fi
done
for c in $cases; do
    case $c in valid*) ;; *) continue ;; esac
    "$PARO" check "$dir/$c.h5" -q >/dev/null 2>&1; rc=$?
    [ $rc -eq 0 ] || { echo "FAIL check of a valid dump ($c): exit $rc"; fail=1; }
done
# A dump without steps: inspect --json gives null for what was not recorded (not -1).
"$PARO" inspect --json "$dir/valid_attn_fp16.h5" >"$dir/out.txt" 2>&1 || { echo "FAIL inspect --json valid_attn_fp16"; fail=1; }
"$PYTHON" -c 'import json, sys; j = json.load(open(sys.argv[1])); assert j["num_steps"] is None and all(s["step"] is None for s in j["samples"]), j' \
    "$dir/out.txt" || { echo "FAIL: steps not recorded are not null"; fail=1; }
for c in not_hdf5 truncated missing_file missing_format attribute_overrun attribute_overrun_latest_format; do
    expect_bad "check $c" "$dir/$c.h5" "$PARO" check "$dir/$c.h5"
done
# A statistics file whose mass is all zeros (every mask then kept "all" of nothing: recall 1.0):
# calibrate refuses it, check reports it.
"$PARO" calibrate -q "$dir/valid.h5" -o "$dir/sp.h5" --stats-out "$dir/s.h5" --warn-recall 0 || { echo "FAIL stats-out"; fail=1; }
rm -f "$dir/sp.h5"
"$PYTHON" - "$dir/s.h5" "$dir/s_zero.h5" <<'PY' || exit 1
import shutil, sys, h5py
shutil.copy(sys.argv[1], sys.argv[2])
with h5py.File(sys.argv[2], "r+") as f:
    f["layers/0/mass"][...] = 0
PY
"$PARO" check -q "$dir/s.h5" || { echo "FAIL check of a valid statistics file"; fail=1; }
expect_bad "calibrate s_zero" "$dir/s_zero.h5" "$PARO" calibrate "$dir/s_zero.h5" -o "$dir/outdir/p.h5"
"$PARO" check "$dir/s_zero.h5" >"$dir/out.txt" 2>&1; rc=$?
if [ $rc -ne 1 ] || ! grep -q "mass.*all zeros" "$dir/out.txt"; then
    echo "FAIL check s_zero: exit $rc"; cat "$dir/out.txt"; fail=1
else
    echo "ok   check s_zero: $(head -1 "$dir/out.txt")"
fi
# The two layer-level refusals name what is wrong.
if [ -f "$dir/lzf_compressed.h5" ]; then
    "$PARO" calibrate "$dir/lzf_compressed.h5" -o "$dir/outdir/p.h5" >/dev/null 2>"$dir/err.txt"
    grep -q "/layers/0/q: is compressed with HDF5 filter 32000 ('lzf')" "$dir/err.txt" ||
        { echo "FAIL lzf message: $(cat "$dir/err.txt")"; fail=1; }
fi
"$PARO" calibrate "$dir/qk_and_attn.h5" -o "$dir/outdir/p.h5" >/dev/null 2>"$dir/err.txt"
grep -q "/layers/0/attn: is not allowed beside /layers/0/q" "$dir/err.txt" || { echo "FAIL qk_and_attn message: $(cat "$dir/err.txt")"; fail=1; }
"$PARO" calibrate "$dir/k_and_attn.h5" -o "$dir/outdir/p.h5" >/dev/null 2>"$dir/err.txt"
grep -q "/layers/0/attn: is not allowed beside /layers/0/k" "$dir/err.txt" || { echo "FAIL k_and_attn message: $(cat "$dir/err.txt")"; fail=1; }
# Special files are refused at once (a FIFO used to block inside HDF5's probe for ever).
mkfifo "$dir/fifo.h5"
for cmd in check inspect calibrate; do
    if [ $cmd = calibrate ]; then set -- -o "$dir/outdir/p.h5"; else set --; fi
    expect_bad "$cmd fifo" "$dir/fifo.h5" timeout 20 "$PARO" $cmd "$dir/fifo.h5" "$@"
done
# Bad options are usage errors: exit 2, nothing written, the message names the option (the
# library names its parameter; the command maps it to the flag).
"$PARO" synth -o "$dir/ok.h5" -q
for opt in "--density 0" "--density 1.5" "--density 0.001" "--objective nope" "--slots 0" "--qk-bits 3" \
           "--block 7" "--slots 4" "--eps 0" "--sigma 2" "--alpha -1" "--recall 0" "--recall 1.5" \
           "--min-density 0.1" "--min-density -1 --recall 0.9" "--min-density 0.6 --recall 0.9 --density 0.5" \
           "--mask-rows 0" "--mask-rows 17"; do
    # shellcheck disable=SC2086
    expect_bad "option $opt" "option ${opt%% *}:" "$PARO" calibrate "$dir/ok.h5" -o "$dir/outdir/p.h5" $opt
done
# Usage errors CLI11 finds (missing or malformed values, ranges, NaN) on one line naming the command
# and the option; --pv-bits 0 is not "not given".
for opt in "--threads -1" "--warn-recall nan" "--pv-bits 0" "--density=" ""; do
    # shellcheck disable=SC2086
    expect_bad "usage $opt" "paro calibrate" "$PARO" calibrate "$dir/ok.h5" $( [ -n "$opt" ] && echo "-o $dir/outdir/p.h5" ) $opt
done
# Thread counts past what can start are refused (65536 OpenMP threads crashed libgomp); OMP_NUM_THREADS
# is capped the same way, so a huge value runs.
expect_bad "usage --threads 4096" "threads: Value 4096" "$PARO" calibrate "$dir/ok.h5" -o "$dir/outdir/p.h5" --threads 4096
OMP_NUM_THREADS=100000 timeout 120 "$PARO" synth -o "$dir/omp_many.h5" -q --layers 1 --heads 1 --samples 1; rc=$?
[ $rc -eq 0 ] || { echo "FAIL OMP_NUM_THREADS=100000 synth: exit $rc"; fail=1; }
# A probe time limit that is no number is refused, as PARO_MEMORY_LIMIT is (it used to mean the default).
for v in abc 0 -1; do
    expect_bad "PARO_HDF5_PROBE_SECONDS=$v" "PARO_HDF5_PROBE_SECONDS" env PARO_HDF5_PROBE_SECONDS=$v "$PARO" check "$dir/ok.h5"
done
# synth refuses what would write non-finite q/k.
for opt in "--sharpness nan" "--sharpness -5" "--sharpness 1e30" "--noise inf" "--noise -1"; do
    # shellcheck disable=SC2086
    expect_bad "synth $opt" "synth: ${opt%% *}" "$PARO" synth -o "$dir/outdir/s.h5" $opt
done
# validate: a sample or layer the dump lacks is refused (it used to check nothing and pass).
"$PARO" synth -o "$dir/v2.h5" -q --layers 2 --heads 2 --samples 2 --grid 2x8x8 --text 0
"$PARO" calibrate -q "$dir/v2.h5" -o "$dir/v2p.h5" --density 0.5 --warn-recall 0
for opt in "--samples 7" "--samples -1" "--layers 2" "--layers 0,9"; do
    # shellcheck disable=SC2086
    expect_bad "validate $opt" "option ${opt%% *}" "$PARO" validate --cpu "$dir/v2p.h5" --dump "$dir/v2.h5" $opt
done
# A dump refused in its second layer leaves no checkpoint of the first behind.
"$PYTHON" - "$dir/v2.h5" "$dir/nan_layer1.h5" <<'PY' || exit 1
import shutil, sys, h5py, numpy as np
shutil.copy(sys.argv[1], sys.argv[2])
with h5py.File(sys.argv[2], "r+") as f:
    q = f["layers/1/q"][...]
    q[0, 0, 3, 1] = np.nan
    f["layers/1/q"][...] = q
PY
expect_bad "calibrate nan in layer 1" "nan_layer1.h5" "$PARO" calibrate "$dir/nan_layer1.h5" -o "$dir/outdir/p.h5" --threads 1
expect_bad "stats-out directory missing" "option --stats-out" "$PARO" calibrate "$dir/ok.h5" -o "$dir/outdir/p.h5" \
    --stats-out "$dir/nowhere/s.h5"
# Permissions: an unreadable input, unwritable output directories (as root, who passes permission
# checks, the commands run as nobody where setpriv can switch to it).
as_user=()
if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null && id nobody >/dev/null 2>&1; then
    as_user=(setpriv --reuid="$(id -u nobody)" --regid="$(id -g nobody)" --clear-groups)
    chmod 755 "$dir"
fi
if [ "$(id -u)" -ne 0 ] || [ ${#as_user[@]} -gt 0 ]; then
    "$PARO" calibrate "$dir/ok.h5" -o "$dir/pat.h5" -q
    chmod 644 "$dir/ok.h5" "$dir/pat.h5"
    cp "$dir/ok.h5" "$dir/locked.h5"; chmod 000 "$dir/locked.h5"; mkdir -p "$dir/ro"; chmod 555 "$dir/ro"
    expect_bad "unreadable input" "Permission denied" "${as_user[@]}" "$PARO" inspect "$dir/locked.h5"
    expect_bad "unwritable -o" "cannot be written" "${as_user[@]}" "$PARO" calibrate "$dir/ok.h5" -o "$dir/ro/p.h5"
    expect_bad "unwritable report -o" "cannot be written" "${as_user[@]}" "$PARO" report "$dir/pat.h5" -o "$dir/ro/rep"
    [ -z "$(ls -A "$dir/ro")" ] || { echo "FAIL: files left in a read-only directory"; fail=1; }
    chmod 755 "$dir/ro"
else
    echo "(as root without setpriv: the permission cases are skipped)"
fi
# A part of a calibration given where a pattern or dump is wanted says how to finish it.
"$PARO" synth -o "$dir/two.h5" --grid 2x16x16 --text 8 --layers 2 --heads 2 -q
"$PARO" calibrate "$dir/two.h5" -o "$dir/part.h5" --layers 0:1 --density 0.6 -q --warn-recall 0
for cmd in inspect check; do expect_bad "$cmd of a partial" "paro merge" "$PARO" $cmd "$dir/part.h5"; done
# A virtual dataset (data in another file) is refused by name, not as "never written".
"$PYTHON" - "$dir/ok.h5" "$dir/vds.h5" <<'PY' || fail=1
import shutil, sys, h5py
shutil.copy(sys.argv[1], sys.argv[2])
with h5py.File(sys.argv[2], "a") as f:
    q = f["layers/0/q"]
    layout = h5py.VirtualLayout(shape=q.shape, dtype=q.dtype)
    layout[...] = h5py.VirtualSource(sys.argv[1], "layers/0/q", shape=q.shape)
    del f["layers/0/q"]
    f.create_virtual_dataset("layers/0/q", layout)
PY
for cmd in inspect check calibrate; do
    if [ $cmd = calibrate ]; then set -- -o "$dir/outdir/p.h5"; else set --; fi
    expect_bad "$cmd of a virtual dataset" "virtual dataset" "$PARO" $cmd "$dir/vds.h5" "$@"
done
for opt in "--head-dim 96" "--steps 0" "--layers 0" "--kinds diagonal"; do
    # shellcheck disable=SC2086
    expect_bad "synth option $opt" "option ${opt%% *}:" "$PARO" synth -o "$dir/outdir/d.h5" $opt
done
expect_bad "output directory missing" "p.h5" "$PARO" calibrate "$dir/ok.h5" -o "$dir/nowhere/p.h5"
# An existing directory as -o is refused and left alone; so is the input itself.
mkdir -p "$dir/keep/inner"; touch "$dir/keep/inner/precious"
expect_bad "output is a directory" "keep" "$PARO" calibrate "$dir/ok.h5" -o "$dir/keep"
expect_bad "synth output is a directory" "keep" "$PARO" synth -o "$dir/keep"
[ -f "$dir/keep/inner/precious" ] || { echo "FAIL: a directory given as -o was touched"; fail=1; }
cp "$dir/ok.h5" "$dir/same.h5"
expect_bad "output is the input" "same.h5" "$PARO" calibrate "$dir/same.h5" -o "$dir/same.h5"
cmp -s "$dir/ok.h5" "$dir/same.h5" || { echo "FAIL: the input was overwritten"; fail=1; }
# Fewer OpenMP threads than requested must not matter.
OMP_NUM_THREADS=4 OMP_THREAD_LIMIT=2 "$PARO" calibrate "$dir/ok.h5" -o "$dir/omp.h5" -q \
    || { echo "FAIL: calibrate under OMP_THREAD_LIMIT"; fail=1; }
exit $fail
