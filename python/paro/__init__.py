"""paro: pattern-aware token reordering for attention in video diffusion transformers.

The Python side of the paro toolkit (docs/pytorch.md). `paro.capi` is the ctypes mirror of the C
headers (paro_runtime.h, paro_stats.h); `paro.load_runtime()` / `paro.load_stats()` open the
shared libraries by the search order in `paro._library`. `paro.Capture` records a model's attention
inputs into a paro-dump file (needs torch).
"""
from ._library import LibraryNotFound, library_candidates, load_runtime, load_stats


def __getattr__(name):  # the parts that need torch load when first used
    if name == "Capture":
        from .capture import Capture
        return Capture
    raise AttributeError(f"module 'paro' has no attribute {name!r}")

__version__ = "0.1.0"
__all__ = ["Capture", "LibraryNotFound", "library_candidates", "load_runtime", "load_stats", "__version__"]
