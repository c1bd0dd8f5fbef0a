#!/usr/bin/env bash
# `cmake --install` into a fresh prefix, then a consumer project outside the build tree links
# paro::runtime through find_package(paro), and a plain C compile links it through pkg-config.
set -euo pipefail
: "${BUILD_DIR:?}" "${SOURCE_DIR:?}"
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
prefix="$work/prefix"
cmake --install "$BUILD_DIR" --prefix "$prefix" >"$work/install.log"

fail=0
need() { [ -e "$1" ] || { echo "FAIL: not installed: ${1#"$prefix"/}"; fail=1; }; }
libdir=$(dirname "$(find "$prefix" -name 'libparo_runtime.so' | head -1)")
need "$prefix/bin/paro"
need "$prefix/include/paro_runtime.h"
need "$libdir/libparo_runtime.so"
need "$libdir/libparo_runtime.so.0"
need "$libdir/libparo_stats.so.0"
need "$prefix/include/paro_stats.h"
need "$libdir/cmake/paro/paroConfig.cmake"
need "$libdir/cmake/paro/paroConfigVersion.cmake"
need "$libdir/pkgconfig/paro-runtime.pc"
need "$libdir/pkgconfig/paro-stats.pc"
for s in paro-dump-v1 paro-pattern-v1 paro-pattern-v2 paro-stats-v1 inspect-pattern.schema calibrate-summary.schema \
         check.schema merge-stats-summary.schema; do need "$prefix/share/paro/schemas/$s.json"; done
need "$prefix/share/bash-completion/completions/paro"
need "$prefix/share/zsh/site-functions/_paro"
need "$prefix/share/man/man1/paro.1"
for m in __init__ export pattern capture runtime flex capi _library _sdpa_hook; do need "$prefix/share/paro/python/paro/$m.py"; done
[ "$fail" -eq 0 ] || { cat "$work/install.log"; exit 1; }

"$prefix/bin/paro" --version
# The installed completions and man page are the installed paro's own.
cmp -s <("$prefix/bin/paro" completion bash) "$prefix/share/bash-completion/completions/paro" ||
    { echo "FAIL: the installed bash completion differs from paro completion bash"; exit 1; }
cmp -s <("$prefix/bin/paro" completion zsh) "$prefix/share/zsh/site-functions/_paro" ||
    { echo "FAIL: the installed zsh completion differs from paro completion zsh"; exit 1; }
! command -v man >/dev/null || MANWIDTH=100 man -l "$prefix/share/man/man1/paro.1" 2>/dev/null | grep -q "EXIT STATUS" ||
    { echo "FAIL: the installed man page does not render (man -l)"; exit 1; }

# The installed paro export runs the installed Python package (where a Python with torch is).
if [ -n "${PYTHON:-}" ] && "$PYTHON" -c "import torch, h5py" 2>/dev/null; then
    "$prefix/bin/paro" synth -q -o "$work/d.h5" --grid 2x4x8 --text 0 --layers 1 --heads 2 --samples 1 --no-v
    "$prefix/bin/paro" calibrate -q "$work/d.h5" -o "$work/p.h5" --density 0.5
    PARO_PYTHON="$PYTHON" PYTHONVERBOSE=1 "$prefix/bin/paro" export "$work/p.h5" --flex "$work/p.pt" 2>"$work/export.log" ||
        { cat "$work/export.log"; exit 1; }
    grep -q "$prefix/share/paro/python/paro/export.py" "$work/export.log" ||
        { echo "FAIL: the installed paro export did not run the installed package"; exit 1; }
fi

# CMake consumer: configured from a copy, so nothing of paro's tree is on its paths.
cp -r "$SOURCE_DIR/tests/install/consumer" "$work/consumer"
cmake -S "$work/consumer" -B "$work/consumer-build" -DCMAKE_PREFIX_PATH="$prefix" >"$work/consumer.log" 2>&1 ||
    { cat "$work/consumer.log"; exit 1; }
cmake --build "$work/consumer-build" >>"$work/consumer.log" 2>&1 || { cat "$work/consumer.log"; exit 1; }
"$work/consumer-build/consumer"

# pkg-config consumer (skipped where pkg-config is not installed; scripts/setup.sh installs it).
if ! command -v pkg-config >/dev/null; then
    echo "pkg-config missing: the pkg-config consumer is skipped"
    exit 0
fi
PKG_CONFIG_PATH="$libdir/pkgconfig" pkg-config --exists paro-runtime paro-stats
# shellcheck disable=SC2046
cc -o "$work/consumer-pc" "$work/consumer/main.c" $(PKG_CONFIG_PATH="$libdir/pkgconfig" pkg-config --cflags --libs paro-stats) \
    -Wl,-rpath,"$libdir"
"$work/consumer-pc"
