"""paro: pattern-aware token reordering for attention in video diffusion transformers.

The Python side of the paro toolkit (docs/pytorch.md). `paro.capi` is the ctypes mirror of the C
headers (paro_runtime.h, paro_stats.h); `paro.load_runtime()` / `paro.load_stats()` open the
shared libraries by the search order in `paro._library`. `paro.Capture` records a model's attention
inputs into a paro-dump file; `paro.Plan`, `paro.attention` and `paro.apply` run a pattern on the
CUDA runtime; `paro.FlexPattern` runs it with FlexAttention (these need torch).
"""
from ._library import LibraryNotFound, library_candidates, load_runtime, load_stats


_LAZY = {"Capture": "capture", "Plan": "runtime", "attention": "runtime", "apply": "runtime", "kernel_name": "runtime",
         "NoGpuError": "runtime", "RuntimeFailure": "runtime", "FlexPattern": "flex"}


def __getattr__(name):  # the parts that need torch load when first used
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'paro' has no attribute {name!r}")

__version__ = "0.1.0"
__all__ = ["Capture", "FlexPattern", "Plan", "apply", "attention", "kernel_name", "NoGpuError", "RuntimeFailure", "LibraryNotFound", "library_candidates", "load_runtime", "load_stats", "__version__"]
