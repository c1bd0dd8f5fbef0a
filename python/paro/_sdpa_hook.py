"""What Capture and apply share: wrapping torch.nn.functional.scaled_dot_product_attention for the
length of a `with` block, numbering the calls that are layers, and knowing the sampling step.

A call is a layer when q, k are [batch, heads, N, D] with N = the layout's tokens for both (joint
self-attention); layers are numbered by call order within a step. Other calls pass through
unnumbered. Calls must look the function up at call time (`F.scaled_dot_product_attention`).
"""
import math
import numbers
import warnings

import torch
import torch.nn.functional as F


def _math_sdpa(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None):
    """Plain attention, for PyTorch builds without scaled_dot_product_attention (before 2.0)."""
    s = (query @ key.transpose(-2, -1)) * (scale if scale is not None else 1.0 / math.sqrt(query.shape[-1]))
    if is_causal:
        n, m = s.shape[-2:]
        s = s.masked_fill(torch.ones(n, m, dtype=torch.bool, device=s.device).triu(1), float("-inf"))
    if attn_mask is not None:
        s = s.masked_fill(~attn_mask, float("-inf")) if attn_mask.dtype == torch.bool else s + attn_mask
    p = torch.softmax(s, dim=-1)
    if dropout_p > 0:
        p = torch.nn.functional.dropout(p, dropout_p)
    return p @ value


_ACTIVE = []  # the hooks inside their `with`, in entry order: each wraps the one before


class SdpaHook:
    """Base of the context managers; subclasses implement _layer_call."""

    def __init__(self, tokens):
        self.tokens = int(tokens)
        self._step, self._timestep, self._call = 0, 0.0, 0
        self._first_step_calls = None  # layer calls of the first step that had any, once it ended
        self._warned_growth = False

    def __enter__(self):
        if any(h is self for h in _ACTIVE):
            raise RuntimeError(f"this {type(self).__name__} is already inside its `with`")
        self._had_sdpa = hasattr(F, "scaled_dot_product_attention")
        self._original = F.scaled_dot_product_attention if self._had_sdpa else _math_sdpa
        F.scaled_dot_product_attention = self._sdpa
        _ACTIVE.append(self)
        return self

    def __exit__(self, exc_type, exc, tb):
        # Nested hooks may end in any order: the one entered after this one now wraps what this
        # one wrapped; the innermost restores the function.
        i = next((i for i, h in enumerate(_ACTIVE) if h is self), None)
        if i is None:
            return False
        if i + 1 < len(_ACTIVE):
            _ACTIVE[i + 1]._original, _ACTIVE[i + 1]._had_sdpa = self._original, self._had_sdpa
        elif self._had_sdpa:
            F.scaled_dot_product_attention = self._original
        else:
            del F.scaled_dot_product_attention
        del _ACTIVE[i]
        return False

    def step(self, index, timestep=None):
        """Marks the start of sampling step `index` (layers are numbered from 0 again)."""
        if isinstance(index, bool) or not isinstance(index, numbers.Integral):
            raise TypeError(f"step: index must be an integer, got {index!r}")
        if self._call and self._first_step_calls is None:
            self._first_step_calls = self._call
        self._step, self._call = int(index), 0
        self._timestep = float(index if timestep is None else timestep)
        self._on_step()

    def diffusers_callback(self):
        """A diffusers `callback_on_step_end`: marks the start of the next step after each one."""
        def on_step_end(pipe, i, t, callback_kwargs):
            self.step(i + 1)
            return callback_kwargs
        return on_step_end

    def _on_step(self):
        pass

    def _sdpa(self, query, key, value, *args, **kwargs):
        if (query.dim() == 4 and key.dim() == 4 and query.shape[2] == self.tokens and key.shape[2] == self.tokens
                and query.shape[:2] == key.shape[:2]):
            layer, self._call = self._call, self._call + 1
            if self._first_step_calls is not None and layer == self._first_step_calls and not self._warned_growth:
                self._warned_growth = True
                warnings.warn(f"{type(self).__name__}: step {self._step} has more layer calls than the "
                              f"{self._first_step_calls} of the first step: a forward pass without .step()? "
                              "(its calls count as further layers)", RuntimeWarning, stacklevel=3)
            return self._layer_call(layer, query, key, value, args, kwargs)
        return self._original(query, key, value, *args, **kwargs)

    def _layer_call(self, layer, query, key, value, args, kwargs):
        raise NotImplementedError
