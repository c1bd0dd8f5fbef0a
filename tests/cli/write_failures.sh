#!/usr/bin/env bash
# Outputs that cannot be written (a full disk, here a file-size limit: `ulimit -f` with SIGXFSZ
# ignored, so writes past it fail with EFBIG as on a full disk): every writing command ends with one
# line naming the file, exit 2, and leaves no output or temporary behind (not the partial file HDF5
# managed to write, nor a crash in libhdf5's exit handler).
set -uo pipefail
source "$(dirname "$0")/common.bash"
"$PARO" synth -q -o "$dir/d.h5" --grid 4x12x12 --text 32 --layers 2 --heads 4 --samples 4 --prompts 2 --head-dim 64
"$PARO" calibrate -q "$dir/d.h5" -o "$dir/p_in.h5" --density 0.4 --device cpu --stats-out "$dir/s1.h5" --warn-recall 0
cp "$dir/s1.h5" "$dir/s2.h5"
"$PYTHON" -c "import h5py, sys; f = h5py.File(sys.argv[1], 'a'); f['samples/step'][...] = f['samples/step'][()] + 1" "$dir/s2.h5"
mkdir "$dir/out"
limited() {  # KB command...: the command under a file-size limit of KB kilobytes
    local kb=$1; shift
    (trap '' XFSZ; ulimit -f "$kb"; "$@")
}
expect_clean_failure() {  # what: the last run failed cleanly
    if [ "$(ls -A "$dir/out" | grep -v '\.checkpoint$')" != "" ]; then
        echo "FAIL ($1): output left behind:"; ls -lA "$dir/out"; fail=1
    fi
    one_line_naming "$dir/out/"
    rm -rf "$dir/out" && mkdir "$dir/out"
}
for kb in 4 16; do
    run 2 limited $kb "$PARO" synth -q -o "$dir/out/x.h5" --grid 4x12x12 --text 32 --layers 2 --heads 4 --samples 4 --head-dim 64
    expect_clean_failure "synth, $kb KB"
    run 2 limited $kb "$PARO" calibrate -q "$dir/d.h5" -o "$dir/out/p.h5" --density 0.4 --device cpu --warn-recall 0
    expect_clean_failure "calibrate, $kb KB"
    run 2 limited $kb "$PARO" calibrate -q "$dir/d.h5" -o "$dir/out/p.h5" --density 0.4 --device cpu --warn-recall 0 \
        --stats-out "$dir/out/s.h5"
    expect_clean_failure "calibrate --stats-out, $kb KB"
    run 2 limited $kb "$PARO" merge -q "$dir/s1.h5" "$dir/s2.h5" -o "$dir/out/m.h5"
    expect_clean_failure "merge, $kb KB"
done
# Without the limit the same commands succeed (the failures above are the limit's).
run 0 "$PARO" merge -q "$dir/s1.h5" "$dir/s2.h5" -o "$dir/out/m.h5"
exit $fail
