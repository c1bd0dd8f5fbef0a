#!/usr/bin/env bash
# h5py writes a dump, paro calibrates it, numpy checks the numbers, h5py reads the pattern.
set -euo pipefail
"$PYTHON" -c "import h5py, numpy" 2>/dev/null || { echo "h5py/numpy missing: skipped"; exit 77; }
exec "$PYTHON" "$(dirname "$0")/h5py_interop.py"
