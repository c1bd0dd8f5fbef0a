"""What Capture and apply share: wrapping torch.nn.functional.scaled_dot_product_attention for the
length of a `with` block, numbering the calls that are layers, and knowing the sampling step.

A call is a layer when q, k are [batch, heads, N, D] with N = the layout's tokens for both (joint
self-attention); layers are numbered by call order within a step. Other calls pass through
unnumbered. Calls must look the function up at call time (`F.scaled_dot_product_attention`).
"""
import math

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


class SdpaHook:
    """Base of the context managers; subclasses implement _layer_call."""

    def __init__(self, tokens):
        self.tokens = int(tokens)
        self._step, self._timestep, self._call = 0, 0.0, 0

    def __enter__(self):
        self._had_sdpa = hasattr(F, "scaled_dot_product_attention")
        self._original = F.scaled_dot_product_attention if self._had_sdpa else _math_sdpa
        F.scaled_dot_product_attention = self._sdpa
        return self

    def __exit__(self, exc_type, exc, tb):
        if self._had_sdpa:
            F.scaled_dot_product_attention = self._original
        else:
            del F.scaled_dot_product_attention
        return False

    def step(self, index, timestep=None):
        """Marks the start of sampling step `index` (layers are numbered from 0 again)."""
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
            return self._layer_call(layer, query, key, value, args, kwargs)
        return self._original(query, key, value, *args, **kwargs)

    def _layer_call(self, layer, query, key, value, args, kwargs):
        raise NotImplementedError
