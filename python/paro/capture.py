"""Recording a model's attention inputs into a paro-dump v1 file (docs/formats.md), unchanged model.

    with paro.Capture("dump.h5", grid=(13, 30, 45), text_tokens=226, num_steps=50,
                      steps=range(0, 50, 5)) as cap:
        cap.set_prompts(["a cat on a skateboard"])
        pipe(prompt, num_inference_steps=50, callback_on_step_end=cap.diffusers_callback())

Inside the `with`, torch.nn.functional.scaled_dot_product_attention is wrapped: every call whose
q, k, v are [batch, heads, N, D] with N = text_tokens + F*H*W for both q and k (joint
self-attention; other calls pass through unnumbered) is one layer, numbered by call order within a
step. Calls must go through the module attribute (`F.scaled_dot_product_attention(...)`, as
diffusers' processors do), not a name imported before the capture started. q and k are taken as
they reach attention: after the q/k norm and the rotary embedding. The results are the original
function's, so the model's output does not change.

Samples: each recorded step adds one sample per selected batch entry (guidance "cond": the second
half of the batch, diffusers' [uncond, cond] order; "uncond": the first half; "all": every
entry). Each (layer, step) slice is written as it arrives (chunks of [1, 1, N, D]), so memory
stays at one layer's q/k. The file appears under its name only when the `with` ends cleanly.
"""
import math
import os

import h5py
import numpy as np
import torch

from ._sdpa_hook import SdpaHook

_GUIDANCE = ("cond", "uncond", "all")


class Capture(SdpaHook):
    """Context manager recording q/k(/v) of attention calls; see the module docstring.

    grid: (F, H, W) of the video tokens; text_tokens / text_position: the text part of the
    sequence. num_steps: the sampling run's step count (needed for timestep slots).
    layers / steps / heads: what to record (None: all); layers are renumbered 0.. in the dump,
    each group keeping its model index in the attribute model_layer. with_v also records v
    (output-error objective, validation). dtype: "float16" or "float32" on disk.
    """

    def __init__(self, path, *, grid, text_tokens=0, text_position="prefix", num_steps=None, layers=None,
                 steps=None, heads=None, guidance="cond", with_v=False, dtype="float16", model=""):
        if len(grid) != 3 or any(int(g) < 1 for g in grid):
            raise ValueError(f"grid must be three positive sizes (F, H, W), got {grid}")
        if text_position not in ("prefix", "suffix"):
            raise ValueError(f"text_position must be 'prefix' or 'suffix', got {text_position!r}")
        if guidance not in _GUIDANCE:
            raise ValueError(f"guidance must be one of {_GUIDANCE}, got {guidance!r}")
        if dtype not in ("float16", "float32"):
            raise ValueError(f"dtype must be 'float16' or 'float32', got {dtype!r}")
        self.path = os.fspath(path)
        self.grid = tuple(int(g) for g in grid)
        self.text_tokens = int(text_tokens)
        super().__init__(self.text_tokens + self.grid[0] * self.grid[1] * self.grid[2])
        self.text_position = text_position
        self.num_steps = num_steps
        self.layers = None if layers is None else sorted(set(int(x) for x in layers))
        self.steps = None if steps is None else set(int(x) for x in steps)
        self.heads = None if heads is None else sorted(set(int(x) for x in heads))
        self.guidance = guidance
        self.with_v = with_v
        self.dtype = np.float16 if dtype == "float16" else np.float32
        self.model = model
        self._file = None

    # ---- the with-block ----------------------------------------------------------------------
    def __enter__(self):
        self._tmp = f"{self.path}.tmp{os.getpid()}"
        self._file = h5py.File(self._tmp, "w")
        f = self._file
        f.attrs["paro_format"] = "paro-dump"
        f.attrs["paro_version"] = 1
        f.attrs["grid"] = np.array(self.grid, dtype=np.int64)
        f.attrs["text_tokens"] = self.text_tokens
        f.attrs["text_position"] = self.text_position
        f.attrs["model"] = self.model
        self._prompt_names, self._prompts = [], None
        self._sample_step, self._sample_timestep, self._sample_prompt = [], [], []
        self._step_samples = None  # first sample index and count of the current step, once allocated
        self._written = {}  # dump layer -> set of first-sample indices written
        self._dump_layer = {}  # model layer -> dump layer
        self.step(0)
        return super().__enter__()

    def __exit__(self, exc_type, exc, tb):
        super().__exit__(exc_type, exc, tb)
        done = False
        try:
            if exc_type is None:
                self._finish()
                done = True
        finally:
            self._file.close()
            self._file = None
            if done:
                os.replace(self._tmp, self.path)
            elif os.path.exists(self._tmp):
                os.remove(self._tmp)
        return False

    # ---- what the caller tells -----------------------------------------------------------------
    def _on_step(self):
        self._step_samples = None

    def set_prompts(self, prompts):
        """The prompt text of each selected batch entry (a string: the same for all)."""
        self._prompts = [prompts] if isinstance(prompts, str) else list(prompts)

    # ---- the wrapper -----------------------------------------------------------------------------
    def _layer_call(self, layer, query, key, value, args, kwargs):
        out = self._original(query, key, value, *args, **kwargs)
        if (self.steps is None or self._step in self.steps) and (self.layers is None or layer in self.layers):
            scale = kwargs.get("scale", args[3] if len(args) > 3 else None)
            with torch.no_grad():
                self._record(layer, query, key, value, scale)
        return out

    def _selected(self, batch):
        if self.guidance == "all":
            return list(range(batch))
        if batch % 2:
            raise ValueError(f"guidance={self.guidance!r} needs an even batch ([uncond, cond] halves), got {batch}")
        half = batch // 2
        return list(range(half, batch)) if self.guidance == "cond" else list(range(half))

    def _allocate(self, count):
        """Sample indices of the current step, allocated at its first recorded call."""
        if self._step_samples is None:
            prompts = self._prompts or ["prompt 0"]
            if len(prompts) == 1:
                prompts = prompts * count
            if len(prompts) != count:
                raise ValueError(f"{len(prompts)} prompts for {count} selected batch entries")
            first = len(self._sample_step)
            for p in prompts:
                if p not in self._prompt_names:
                    self._prompt_names.append(p)
                self._sample_prompt.append(self._prompt_names.index(p))
                self._sample_step.append(self._step)
                self._sample_timestep.append(self._timestep)
            self._step_samples = (first, count)
        return self._step_samples

    def _record(self, layer, q, k, v, scale):
        rows = self._selected(q.shape[0])
        first, count = self._allocate(len(rows))
        heads = self.heads if self.heads is not None else list(range(q.shape[1]))
        if heads[-1] >= q.shape[1]:
            raise ValueError(f"head {heads[-1]} asked for, but layer {layer} has {q.shape[1]} heads")
        l = self._dump_layer.setdefault(layer, len(self._dump_layer))
        g = self._file.require_group(f"layers/{l}")
        g.attrs["model_layer"] = layer
        if scale is not None and abs(scale - 1 / math.sqrt(q.shape[-1])) > 1e-12 * scale:
            g.attrs["scale"] = float(scale)
        tensors = [("q", q), ("k", k)] + ([("v", v)] if self.with_v else [])
        for name, t in tensors:
            shape = (len(heads), self.tokens, t.shape[-1])
            if name not in g:
                g.create_dataset(name, shape=(0,) + shape, maxshape=(None,) + shape, chunks=(1, 1) + shape[1:],
                                 dtype=self.dtype)
            d = g[name]
            if d.shape[1:] != shape:
                raise ValueError(f"layer {layer} {name}: shape {tuple(t.shape)} changed from {d.shape[1:]}")
            if d.shape[0] < first + count:
                d.resize(first + count, axis=0)
            for i, b in enumerate(rows):  # one [heads, N, D] slice at a time
                d[first + i] = t[b, heads].to(torch.float32).cpu().numpy().astype(self.dtype)
        self._written.setdefault(l, set()).add(first)

    def _finish(self):
        if not self._sample_step:
            raise RuntimeError(f"{self.path}: no attention call of {self.tokens} tokens was recorded "
                               f"(grid {self.grid}, {self.text_tokens} text tokens)")
        firsts = sorted({first for written in self._written.values() for first in written})
        for l, written in self._written.items():
            missing = [f for f in firsts if f not in written]
            if missing:
                raise RuntimeError(f"{self.path}: model layer {self._model_layer(l)} was not called in the step of "
                                   f"sample {missing[0]} (step {self._sample_step[missing[0]]})")
        f = self._file
        f["samples/timestep"] = np.array(self._sample_timestep, dtype=np.float64)
        f["samples/step"] = np.array(self._sample_step, dtype=np.int64)
        f["samples/prompt"] = np.array(self._sample_prompt, dtype=np.int64)
        f["samples"].attrs["prompt_names"] = self._prompt_names
        if self.num_steps is not None:
            f["samples"].attrs["num_steps"] = int(self.num_steps)

    def _model_layer(self, l):
        return next(m for m, d in self._dump_layer.items() if d == l)
