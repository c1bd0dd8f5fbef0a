# Sourced by the GPU test scripts that compare files with h5py: checks PARO, sets PY (the Python,
# GPU_PYTHON or python3) and dir (a temporary directory removed on exit); skips (77) without a GPU or
# without h5py.
set -u
: "${PARO:?PARO must point at the paro binary}"
PY=${GPU_PYTHON:-python3}
nvidia-smi > /dev/null 2>&1 || { echo "no GPU: skipped"; exit 77; }
"$PY" -c "import h5py, numpy" 2>/dev/null || { echo "no h5py: skipped"; exit 77; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
