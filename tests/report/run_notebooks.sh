#!/usr/bin/env bash
# Executes the notebooks in notebooks/ headless (jupyter nbconvert --execute) on an example made
# here with `paro synth` + `paro calibrate`. A failing cell fails the test; the
# judge notebook asserts that the pattern agrees with the dump. Also checks that the notebooks are
# committed without outputs. Executed copies go to $ARTIFACT_DIR/notebooks.
source "$(dirname "$0")/common.sh"
command -v jupyter >/dev/null || { echo "SKIP: jupyter not found (scripts/setup.sh installs jupyter-nbconvert)"; exit 77; }
need_python_modules "h5py, numpy, matplotlib, nbformat, nbclient, ipykernel"
NB_DIR="$SOURCE_DIR/notebooks"
ART=${ARTIFACT_DIR:-$WORK/artifacts}
mkdir -p "$ART/notebooks"

"$PYTHON" - "$NB_DIR" <<'PY'
import glob, sys, nbformat
paths = sorted(glob.glob(sys.argv[1] + "/*.ipynb"))
assert len(paths) >= 2, f"expected at least two notebooks in {sys.argv[1]}"
for p in paths:
    nb = nbformat.read(p, as_version=4)
    nbformat.validate(nb)
    for c in nb.cells:
        if c.cell_type == "code":
            assert not c.outputs and c.execution_count is None, f"{p}: committed with outputs (clear them)"
print(f"{len(paths)} notebooks, committed without outputs")
PY

# NOTEBOOK_EXAMPLE=bundled runs them on scripts/example.sh's example (N = 3136: about 10 minutes here,
# numpy on Debian's reference BLAS); the default is the small example (N = 800, seconds).
if [ "${NOTEBOOK_EXAMPLE:-small}" = bundled ]; then
  make_example "$WORK"
  export PARO_DUMP="$WORK/example_dump.h5" PARO_PATTERN="$WORK/example_pattern.h5"
else
  make_small_example "$WORK"
  export PARO_DUMP="$WORK/small_dump.h5" PARO_PATTERN="$WORK/small_pattern.h5"
fi
export PARO
export PYDEVD_DISABLE_FILE_VALIDATION=1 MPLBACKEND=Agg
for nb in "$NB_DIR"/*.ipynb; do
  name=$(basename "$nb")
  start=$(date +%s)
  (cd "$NB_DIR" && jupyter nbconvert --to notebook --execute --ExecutePreprocessor.timeout=600 \
       --output-dir "$ART/notebooks" "$name" 2>"$WORK/nbconvert.log") \
    || { cat "$WORK/nbconvert.log" >&2; fail "notebook $name"; }
  echo "executed $name in $(( $(date +%s) - start )) s -> $ART/notebooks/$name"
done
echo "run_notebooks: ok"
