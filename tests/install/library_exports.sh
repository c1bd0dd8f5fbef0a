#!/usr/bin/env bash
# A shipped library (libparo_runtime.so, libparo_stats.so) exports its C API alone (the functions
# its header declares, all named PREFIX*), carries a versioned SONAME, and links none of the
# libraries matched by the regular expression FORBIDDEN (the runtime: libpng and OpenMP).
set -euo pipefail
: "${LIB:?}" "${HEADER:?}" "${PREFIX:?}"
fail=0
exported=$(nm -D --defined-only "$LIB" | awk '{print $3}' | sort)
others=$(grep -v "^$PREFIX" <<<"$exported" || true)
[ -z "$others" ] || { echo "FAIL: exports beyond the C API:"; head -20 <<<"$others"; fail=1; }
# Every function the header declares is exported, and nothing else named paro_.
declared=$(grep -oE 'PARO_API [a-z_ *]+ \**(paro_[a-z0-9_]+)\(' "$HEADER" | grep -oE 'paro_[a-z0-9_]+\($' | tr -d '(' | sort)
[ "$declared" = "$exported" ] || { echo "FAIL: header vs exports:"; diff <(echo "$declared") <(echo "$exported"); fail=1; }
soname=$(readelf -d "$LIB" | sed -n 's/.*SONAME.*\[\(.*\)\]/\1/p')
[[ "$soname" =~ ^lib[a-z_]+\.so\.[0-9]+$ ]] || { echo "FAIL: SONAME '$soname' is not versioned"; fail=1; }
if [ -n "${FORBIDDEN:-}" ] && readelf -d "$LIB" | grep NEEDED | grep -E "$FORBIDDEN"; then
    echo "FAIL: links libraries it must not"; fail=1
fi
echo "exports: $(wc -l <<<"$exported") $PREFIX* functions, SONAME $soname"
[ "$fail" -eq 0 ] && echo "1 passed, 0 failed" || echo "0 passed, 1 failed"
exit "$fail"
