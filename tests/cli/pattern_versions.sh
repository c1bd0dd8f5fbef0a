#!/usr/bin/env bash
# Pattern file versions: version 2 stores pv_format codes named by pv_format_names; version 1 files
# (pv_bits) still read, check and inspect, mapped as the runtime ran them (16 fp16, 8 and 4 int8).
set -euo pipefail
"$PYTHON" -c "import h5py, numpy" 2>/dev/null || { echo "h5py/numpy missing: skipped"; exit 77; }
exec "$PYTHON" "$(dirname "$0")/pattern_versions.py"
