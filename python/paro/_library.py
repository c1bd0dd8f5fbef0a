"""Finding libparo_runtime.so and libparo_stats.so.

Search order (the first file that exists wins; docs/pytorch.md):
  1. the environment variable naming the file: PARO_RUNTIME_LIBRARY / PARO_STATS_LIBRARY;
  2. paro/lib/ inside the installed package (a wheel built with PARO_BUNDLE_LIBS);
  3. the build tree: $PARO_BUILD_DIR, else <repository>/build when the package is imported from
     the repository's python/ folder;
  4. the system: the versioned name (libparo_runtime.so.0) through the dynamic loader, i.e.
     LD_LIBRARY_PATH, ld.so.cache (an installed prefix after ldconfig), or an rpath.
"""
import ctypes
import os
from pathlib import Path

from . import capi

_PACKAGE = Path(__file__).resolve().parent
_NAMES = {"runtime": ("PARO_RUNTIME_LIBRARY", "libparo_runtime.so", 0),
          "stats": ("PARO_STATS_LIBRARY", "libparo_stats.so", 0)}


class LibraryNotFound(OSError):
    """No candidate of the search order could be loaded; the message lists what was tried."""


def library_candidates(which):
    """The paths (or loader names) tried for `which` ("runtime" or "stats"), in order."""
    env, name, soversion = _NAMES[which]
    out = []
    if os.environ.get(env):
        return [os.environ[env]]  # named explicitly: nothing else is tried
    out.append(str(_PACKAGE / "lib" / name))
    build = os.environ.get("PARO_BUILD_DIR")
    if build:
        out.append(str(Path(build) / name))
    elif (_PACKAGE.parent.parent / "CMakeLists.txt").is_file():  # imported from the repository
        out.append(str(_PACKAGE.parent.parent / "build" / name))
    out.append(f"{name}.{soversion}")  # the dynamic loader's search
    return out


def _load(which):
    tried = []
    for candidate in library_candidates(which):
        if "/" in candidate and not Path(candidate).is_file():
            tried.append(f"{candidate} (no such file)")
            continue
        try:
            return ctypes.CDLL(candidate)
        except OSError as e:
            tried.append(f"{candidate} ({e})")
    env = _NAMES[which][0]
    raise LibraryNotFound(f"libparo_{which}.so not found; tried: {'; '.join(tried)}. Build paro "
                          f"(cmake --build build), install it, or set {env}")


def load_runtime():
    """The runtime library with every function's signature declared (paro.capi)."""
    lib = _load("runtime")
    capi.declare_runtime(lib)
    return lib


def load_stats():
    """The GPU tile-statistics library with every function's signature declared (paro.capi)."""
    lib = _load("stats")
    capi.declare_stats(lib)
    return lib
