"""paro: pattern-aware token reordering for attention in video diffusion transformers.

The Python side of the paro toolkit (docs/pytorch.md). `paro.capi` is the ctypes mirror of the C
headers (paro_runtime.h, paro_stats.h); `paro.load_runtime()` / `paro.load_stats()` open the
shared libraries by the search order in `paro._library`.
"""
from ._library import LibraryNotFound, library_candidates, load_runtime, load_stats

__version__ = "0.1.0"
__all__ = ["LibraryNotFound", "library_candidates", "load_runtime", "load_stats", "__version__"]
