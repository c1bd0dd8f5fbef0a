#!/usr/bin/env bash
# libparo_runtime.so exports the C API alone, carries a versioned SONAME, and links none of the
# tool-side libraries (libpng, OpenMP).
set -euo pipefail
: "${RUNTIME_LIB:?}" "${HEADER:?}"
fail=0
exported=$(nm -D --defined-only "$RUNTIME_LIB" | awk '{print $3}' | sort)
others=$(grep -v '^paro_' <<<"$exported" || true)
[ -z "$others" ] || { echo "FAIL: exports beyond the C API:"; head -20 <<<"$others"; fail=1; }
# Every function the header declares is exported, and nothing else named paro_.
declared=$(grep -oE 'PARO_API [a-z_ *]+ \**(paro_[a-z0-9_]+)\(' "$HEADER" | grep -oE 'paro_[a-z0-9_]+\($' | tr -d '(' | sort)
[ "$declared" = "$exported" ] || { echo "FAIL: header vs exports:"; diff <(echo "$declared") <(echo "$exported"); fail=1; }
soname=$(readelf -d "$RUNTIME_LIB" | sed -n 's/.*SONAME.*\[\(.*\)\]/\1/p')
[[ "$soname" =~ ^libparo_runtime\.so\.[0-9]+$ ]] || { echo "FAIL: SONAME '$soname' is not versioned"; fail=1; }
if readelf -d "$RUNTIME_LIB" | grep NEEDED | grep -E 'png|gomp|omp\.so'; then echo "FAIL: links tool-side libraries"; fail=1; fi
echo "exports: $(wc -l <<<"$exported") paro_* functions, SONAME $soname"
[ "$fail" -eq 0 ] && echo "1 passed, 0 failed" || echo "0 passed, 1 failed"
exit "$fail"
