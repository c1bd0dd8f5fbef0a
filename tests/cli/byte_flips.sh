#!/usr/bin/env bash
# Byte flips, truncations, special files and known libhdf5 crashers through every command that
# reads them: no crash, hang, stray exit status, unbounded message or leftover output (byte_flips.py).
set -uo pipefail
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
"$PYTHON" "$(dirname "$0")/byte_flips.py" "$PARO" "$SOURCE_DIR" "$dir" "${BYTE_FLIPS:-40}"
