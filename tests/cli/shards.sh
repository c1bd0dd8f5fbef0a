#!/usr/bin/env bash
# Calibration in pieces gives the pattern of one run: layer shards stitched by `paro merge`, a run
# killed with SIGKILL and run again (it resumes from its checkpoint), and `mpirun -n 2`. Merge and
# resume refuse parts and checkpoints of another job with exit 2 and one line naming the file.
set -uo pipefail
source "$(dirname "$0")/common.bash"
# Enough layers and tokens that a one-thread run takes a few seconds (the kill lands mid-run).
"$PARO" synth -q -o "$dir/d.h5" --grid 4x16x16 --text 32 --layers 12 --heads 4 --samples 4 --head-dim 64 --seed 3
opts=(--density 0.4 --slots 2 --device cpu)
run 0 "$PARO" calibrate -q "$dir/d.h5" -o "$dir/whole.h5" "${opts[@]}"
[ -e "$dir/.whole.h5.checkpoint" ] && { echo "FAIL: the checkpoint outlives a finished run"; fail=1; }

# Shards and merge, in any order of parts.
run 0 "$PARO" calibrate -q "$dir/d.h5" -o "$dir/part_a.h5" --layers :5 "${opts[@]}"
run 0 "$PARO" calibrate -q "$dir/d.h5" -o "$dir/part_b.h5" --layers 5:9 "${opts[@]}"
run 0 "$PARO" calibrate -q "$dir/d.h5" -o "$dir/part_c.h5" --layers 9: "${opts[@]}"
run 0 "$PARO" merge -q "$dir/part_c.h5" "$dir/part_a.h5" "$dir/part_b.h5" -o "$dir/merged.h5"
same_hdf5 "$dir/whole.h5" "$dir/merged.h5"
run 0 "$PARO" check "$dir/merged.h5"
# A partial is not a pattern: the pattern readers refuse it by name.
run 2 "$PARO" inspect "$dir/part_a.h5"
one_line_naming part_a.h5
# Refused: a missing layer, an overlap, another calibration's part, a bad range.
run 2 "$PARO" merge -q "$dir/part_a.h5" "$dir/part_c.h5" -o "$dir/m.h5"
one_line_naming "no part holds layer 5"
run 0 "$PARO" calibrate -q "$dir/d.h5" -o "$dir/part_ab.h5" --layers 3:9 "${opts[@]}"
run 2 "$PARO" merge -q "$dir/part_a.h5" "$dir/part_ab.h5" "$dir/part_c.h5" -o "$dir/m.h5"
one_line_naming "part_ab.h5.*layer 3, which .*part_a.h5 holds too"
run 0 "$PARO" calibrate -q "$dir/d.h5" -o "$dir/part_other.h5" --layers 5:9 --density 0.3 --slots 2 --device cpu
run 2 "$PARO" merge -q "$dir/part_a.h5" "$dir/part_other.h5" "$dir/part_c.h5" -o "$dir/m.h5"
one_line_naming "part_other.h5.*not the same calibration"
[ -e "$dir/m.h5" ] && { echo "FAIL: a refused merge left its output"; fail=1; }
run 2 "$PARO" calibrate -q "$dir/d.h5" -o "$dir/x.h5" --layers 9:99 "${opts[@]}"
one_line_naming "option --layers"

# Kill -9 mid-run, then the same command: it resumes and ends with the one-run pattern.
resumed_ok=0
for attempt in 1 2 3; do
    rm -rf "$dir/.killed.h5.checkpoint"
    "$PARO" calibrate -q "$dir/d.h5" -o "$dir/killed.h5" "${opts[@]}" --threads 1 &
    pid=$!
    for _ in $(seq 1 1000); do  # until two layers are checkpointed (10 s at most)
        [ "$(ls "$dir/.killed.h5.checkpoint" 2>/dev/null | grep -c '^layer-')" -ge 2 ] && break
        sleep 0.01
    done
    kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
    [ -e "$dir/killed.h5" ] && { rm -f "$dir/killed.h5"; continue; }  # finished before the kill: again
    kept=$(ls "$dir/.killed.h5.checkpoint" | grep -c '^layer-')
    run 0 "$PARO" calibrate "$dir/d.h5" -o "$dir/killed.h5" "${opts[@]}"
    grep -q "resumed $kept of 12 layers" "$dir/out.txt" ||
        { echo "FAIL: the second run did not resume the $kept checkpointed layers:"; cat "$dir/out.txt"; fail=1; }
    same_hdf5 "$dir/whole.h5" "$dir/killed.h5"
    resumed_ok=1
    break
done
[ "$resumed_ok" = 1 ] || { echo "FAIL: three runs ended before the kill (make the dump larger)"; fail=1; }
ls -a "$dir" | grep -q '\.tmp' && { echo "FAIL: temporaries left: $(ls -a "$dir")"; fail=1; }

# A checkpoint of other options is refused, and --fresh discards it.
mkdir -p "$dir/.fresh.h5.checkpoint"
"$PARO" calibrate -q "$dir/d.h5" -o "$dir/part_one.h5" --layers 0:1 --density 0.3 --slots 2 --device cpu
"$PYTHON" - "$dir/part_one.h5" "$dir/.fresh.h5.checkpoint/layer-000000.h5" <<'PY'
import shutil, sys
shutil.copy(sys.argv[1], sys.argv[2])  # a one-layer partial is what a checkpoint holds
PY
run 2 "$PARO" calibrate -q "$dir/d.h5" -o "$dir/fresh.h5" "${opts[@]}"
one_line_naming "layer-000000.h5.*--fresh"
run 0 "$PARO" calibrate -q "$dir/d.h5" -o "$dir/fresh.h5" "${opts[@]}" --fresh
same_hdf5 "$dir/whole.h5" "$dir/fresh.h5"

# MPI: two ranks give the one-process pattern (or, without MPI built in, one clear line).
if command -v mpirun >/dev/null; then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
    mpirun -n 2 --oversubscribe "$PARO" calibrate "$dir/d.h5" -o "$dir/mpi.h5" "${opts[@]}" --threads 1 \
        >"$dir/out.txt" 2>"$dir/err.txt"
    rc=$?
    if grep -q "built without MPI" "$dir/err.txt"; then
        echo "note: this paro has no MPI; mpirun is refused in one line"
    elif [ "$rc" -ne 0 ]; then
        echo "FAIL: mpirun -n 2 exit $rc"; cat "$dir/out.txt" "$dir/err.txt"; fail=1
    else
        grep -q "2 ranks, 12 blocks of heads: rank 0 received 6 blocks (24 heads)" "$dir/out.txt" ||
            { echo "FAIL: no rank summary"; cat "$dir/out.txt"; fail=1; }
        same_hdf5 "$dir/whole.h5" "$dir/mpi.h5"
        # More ranks than layers: the layers are cut into blocks of heads (3 ranks, 2 layers of 4
        # heads: 8 blocks of one head), each finished where it was computed and assembled on rank 0.
        "$PARO" calibrate -q "$dir/d.h5" -o "$dir/two_layers.h5" "${opts[@]}" --layers 4:6 --threads 1
        mpirun -n 3 --oversubscribe "$PARO" calibrate "$dir/d.h5" -o "$dir/mpi_blocks.h5" "${opts[@]}" --layers 4:6 \
            --threads 1 >"$dir/out.txt" 2>"$dir/err.txt" || { echo "FAIL: mpirun -n 3 on 2 layers"; cat "$dir/err.txt"; fail=1; }
        grep -q "3 ranks, 8 blocks of heads: rank 0 received 5 blocks (5 heads)" "$dir/out.txt" ||
            { echo "FAIL: no block summary"; cat "$dir/out.txt"; fail=1; }
        same_hdf5 "$dir/two_layers.h5" "$dir/mpi_blocks.h5"
        # An error on one rank (rank 0 refusing a foreign checkpoint) ends every rank: exit 2, no hang.
        mkdir -p "$dir/.mpi_bad.h5.checkpoint"
        cp "$dir/part_one.h5" "$dir/.mpi_bad.h5.checkpoint/layer-000000.h5"
        timeout 120 mpirun -n 2 --oversubscribe "$PARO" calibrate -q "$dir/d.h5" -o "$dir/mpi_bad.h5" "${opts[@]}" \
            >"$dir/out.txt" 2>"$dir/err.txt"
        rc=$?
        [ "$rc" -eq 2 ] && grep -q "layer-000000.h5.*--fresh" "$dir/err.txt" ||
            { echo "FAIL: an error on rank 0 gave exit $rc:"; cat "$dir/err.txt"; fail=1; }
    fi
else
    echo "note: no mpirun on this machine; the MPI case is not run"
fi
exit $fail
