#!/bin/bash
# `pip install ./python` with no network: the wheel builds with --no-index (the in-tree backend has
# no build requirements), installs, imports away from the repository, and finds the libraries by
# the documented order (a bundled library first, then PARO_BUILD_DIR).
set -u
: "${PYTHON:?}" "${SOURCE_DIR:?}" "${BUILD_DIR:?}"
"$PYTHON" -m pip --version > /dev/null 2>&1 || { echo "no pip: skipped"; exit 77; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
listing() { (cd "$SOURCE_DIR/python" && find . -not -path '*__pycache__*' | sort); }
before=$(listing)
"$PYTHON" -m pip wheel --no-index --no-deps "$SOURCE_DIR/python" -w "$dir/wheel" > "$dir/log" 2>&1 ||
  { cat "$dir/log"; echo "FAIL: the wheel does not build offline"; exit 1; }
[ "$before" = "$(listing)" ] || { diff <(echo "$before") <(listing); echo "FAIL: building left files in python/"; exit 1; }
"$PYTHON" -m pip install --no-index --no-deps --target "$dir/site" "$dir"/wheel/*.whl > "$dir/log" 2>&1 ||
  { cat "$dir/log"; echo "FAIL: the wheel does not install"; exit 1; }
cd "$dir"
PYTHONPATH="$dir/site" PARO_BUILD_DIR="$BUILD_DIR" "$PYTHON" - "$dir/site" "$BUILD_DIR" <<'PY' || exit 1
import sys, os, paro
site, build = sys.argv[1], sys.argv[2]
assert paro.__file__.startswith(site), paro.__file__
c = paro.library_candidates("runtime")
assert c == [f"{site}/paro/lib/libparo_runtime.so", f"{build}/libparo_runtime.so", "libparo_runtime.so.0"], c
os.environ["PARO_RUNTIME_LIBRARY"] = "/nonexistent/libparo_runtime.so"
try:
    paro.load_runtime()
    raise SystemExit("FAIL: a missing PARO_RUNTIME_LIBRARY loaded something")
except paro.LibraryNotFound as e:
    assert "/nonexistent/libparo_runtime.so (no such file)" in str(e) and "PARO_RUNTIME_LIBRARY" in str(e), e
del os.environ["PARO_RUNTIME_LIBRARY"]
if os.path.isfile(f"{build}/libparo_runtime.so"):
    assert paro.load_runtime().paro_runtime_api_version() == 4
print("installed package ok")
PY
if [ -f "$BUILD_DIR/libparo_runtime.so" ]; then  # a wheel with the libraries inside
  PARO_BUNDLE_LIBS="$BUILD_DIR/libparo_runtime.so:$BUILD_DIR/libparo_stats.so" \
    "$PYTHON" -m pip wheel --no-index --no-deps "$SOURCE_DIR/python" -w "$dir/bundled" > "$dir/log" 2>&1 ||
    { cat "$dir/log"; exit 1; }
  "$PYTHON" -m pip install --no-index --no-deps --target "$dir/site2" "$dir"/bundled/*.whl > "$dir/log" 2>&1 || exit 1
  PYTHONPATH="$dir/site2" PARO_BUILD_DIR=/nonexistent "$PYTHON" -c "
import paro
lib = paro.load_runtime(); stats = paro.load_stats()
assert lib._name.endswith('site2/paro/lib/libparo_runtime.so'), lib._name
print('bundled libraries ok')" || exit 1
fi
echo ok
