"""Recording a model's attention inputs, unchanged model: q/k(/v) into a paro-dump v1 file, or, in
statistics mode, only what calibration keeps of them into a paro-stats v1 file (docs/formats.md).

    with paro.Capture("dump.h5", grid=(13, 30, 45), text_tokens=226, num_steps=50,
                      steps=range(0, 50, 5)) as cap:
        cap.set_prompts(["a cat on a skateboard"])
        pipe(prompt, num_inference_steps=50, callback_on_step_end=cap.diffusers_callback())

    with paro.Capture(stats="stats.h5", grid=..., density=0.5) as cap:   # statistics mode
        ...                                                               # (CUDA tensors)

Statistics mode computes the six orders' tile statistics of each recorded call on the GPU, from
the tensors in place (libparo_stats), scores them on host threads while the model goes on, and
writes per (layer, head, sample) the orders' metrics and the chosen order's tile masses: about
1/15 of the q/k dump at the CogVideoX-5B shape. `paro calibrate stats.h5` gives the pattern the
dump of the same run gives; the scoring options (eps, density, recall, min_density, objective,
alpha, sigma, force_text, force_ragged: those of paro calibrate) are fixed here. Both `path` and
`stats` may be given: one run, both files.

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
import ctypes as C
import math
import numbers
import os

import h5py
import numpy as np
import torch

from . import capi
from ._library import load_stats
from ._sdpa_hook import SdpaHook

_GUIDANCE = ("cond", "uncond", "all")
_FP16_MAX = 65504.0


def _integer(name, value, minimum=None, maximum=None):
    """value as an int, or TypeError / ValueError naming `name` (no truncation of 2.5 or '3')."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if minimum is not None and value < minimum or maximum is not None and value > maximum:
        bounds = f"at least {minimum}" if maximum is None else f"in {minimum}..{maximum}"
        raise ValueError(f"{name} must be {bounds}, got {value}")
    return int(value)


def _integers(name, values, minimum=0, maximum=None):
    """A non-empty list of distinct integers in range, or TypeError / ValueError naming `name`."""
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise TypeError(f"{name} must be a list of integers, got {values!r}")
    out = [_integer(f"{name} entry", v, minimum, maximum) for v in values]
    if not out:
        raise ValueError(f"{name} is empty: give None for all, or the indices to record")
    if len(set(out)) != len(out):
        raise ValueError(f"{name} lists an index twice: {out}")
    return out


def _output_path(name, path):
    """os.fspath(path) once it can be written: not a folder, in a writable folder that exists."""
    try:
        path = os.fspath(path)
    except TypeError:
        raise TypeError(f"{name} must be a path, got {path!r}") from None
    if os.path.isdir(path):
        raise ValueError(f"{name} {path!r} is a directory")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise ValueError(f"{name} {path!r}: the folder {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"{name} {path!r}: the folder {parent} is not writable (Permission denied)")
    return path


def _fraction(name, value, low_open=True):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {value!r}")
    if not ((0 < value if low_open else 0 <= value) and value <= 1):
        raise ValueError(f"{name} must be in {'(0' if low_open else '[0'}, 1], got {value}")
    return float(value)


class Capture(SdpaHook):
    """Context manager recording q/k(/v) of attention calls; see the module docstring.

    grid: (F, H, W) of the video tokens; text_tokens / text_position: the text part of the
    sequence. num_steps: the sampling run's step count (needed for timestep slots).
    layers / steps / heads: what to record (None: all); layers are renumbered 0.. in the dump,
    each group keeping its model index in the attribute model_layer. with_v also records v
    (output-error objective, validation). dtype: "float16" or "float32" on disk.
    stats: the statistics file to write (statistics mode), with the scoring options (as paro
    calibrate's), spool_dir (where the scoring spool goes; default: the statistics file's folder)
    and threads (host threads scoring; 0: all). all_orders keeps every head's masses under all six
    orders (six times the size), so that `paro merge` combines the file exactly with statistics of
    more prompts captured later, whatever order the merged samples choose.
    """

    def __init__(self, path=None, *, grid, text_tokens=0, text_position="prefix", num_steps=None, layers=None,
                 steps=None, heads=None, guidance="cond", with_v=False, dtype="float16", model="",
                 stats=None, eps=1e-3, density=None, recall=None, min_density=0.0, objective="recall", alpha=0.5,
                 sigma=0.9, force_text=True, force_ragged=True, spool_dir=None, threads=0,
                 all_orders=False):
        if path is None and stats is None:
            raise ValueError("Capture needs a dump path, stats=PATH, or both")
        path = None if path is None else _output_path("path", path)
        stats = None if stats is None else _output_path("stats", stats)
        if path is not None and stats is not None and os.path.abspath(path) == os.path.abspath(stats):
            raise ValueError(f"path and stats name the same file {path!r}")
        if isinstance(grid, (str, bytes)) or not hasattr(grid, "__len__"):
            raise TypeError(f"grid must be three positive sizes (F, H, W), got {grid!r}")
        if len(grid) != 3:
            raise ValueError(f"grid must be three positive sizes (F, H, W), got {grid}")
        grid = [_integer("grid entry", g, 1) for g in grid]
        text_tokens = _integer("text_tokens", text_tokens, 0)
        num_steps = None if num_steps is None else _integer("num_steps", num_steps, 1)
        layers = None if layers is None else _integers("layers", layers)
        steps = None if steps is None else _integers("steps", steps, 0, None if num_steps is None else num_steps - 1)
        heads = None if heads is None else _integers("heads", heads)
        for name, value in (("with_v", with_v), ("all_orders", all_orders), ("force_text", force_text),
                            ("force_ragged", force_ragged)):
            if not isinstance(value, bool):
                raise TypeError(f"{name} must be True or False, got {value!r}")
        if not isinstance(model, str):
            raise TypeError(f"model must be a string (the model's name), got {model!r}")
        if density is not None:
            _fraction("density", density)
        if recall is not None:
            _fraction("recall", recall)
        _fraction("min_density", min_density, low_open=False)
        threads = _integer("threads", threads, 0)
        if spool_dir is not None and not os.path.isdir(spool_dir):
            raise ValueError(f"spool_dir {spool_dir!r} is not a folder")
        if objective not in ("recall", "paper"):
            raise ValueError(f"objective must be 'recall' or 'paper' in statistics mode, got {objective!r} "
                             "(output-error needs v: capture a dump)")
        if text_position not in ("prefix", "suffix"):
            raise ValueError(f"text_position must be 'prefix' or 'suffix', got {text_position!r}")
        if guidance not in _GUIDANCE:
            raise ValueError(f"guidance must be one of {_GUIDANCE}, got {guidance!r}")
        if dtype not in ("float16", "float32"):
            raise ValueError(f"dtype must be 'float16' or 'float32', got {dtype!r}")
        self.path, self.stats_path = path, stats
        self._scoring = dict(eps=float(eps), density=float(density if density is not None else (1.0 if recall else 0.5)),
                             recall=float(recall or 0.0), min_density=float(min_density), force_text=int(bool(force_text)),
                             force_ragged=int(bool(force_ragged)), objective=0 if objective == "recall" else 1,
                             alpha=float(alpha), sigma=float(sigma))
        self._spool_dir = spool_dir
        self._threads = threads
        self._all_orders = bool(all_orders)
        self.grid = tuple(int(g) for g in grid)
        self.text_tokens = int(text_tokens)
        super().__init__(self.text_tokens + self.grid[0] * self.grid[1] * self.grid[2])
        self.text_position = text_position
        self.num_steps = num_steps
        self.layers = None if layers is None else sorted(layers)
        self.steps = None if steps is None else set(steps)
        self.heads = None if heads is None else sorted(heads)
        self.guidance = guidance
        self.with_v = with_v
        self.dtype = np.float16 if dtype == "float16" else np.float32
        self.model = model
        self._file = None

    # ---- the with-block ----------------------------------------------------------------------
    def __enter__(self):
        self._file = None
        if self.path is not None:
            self._tmp = f"{self.path}.tmp{os.getpid()}"
            self._file = h5py.File(self._tmp, "w")
            try:
                f = self._file
                f.attrs["paro_format"] = "paro-dump"
                f.attrs["paro_version"] = 1
                f.attrs["grid"] = np.array(self.grid, dtype=np.int64)
                f.attrs["text_tokens"] = self.text_tokens
                f.attrs["text_position"] = self.text_position
                f.attrs["model"] = self.model
            except BaseException:
                self._file.close()
                self._file = None
                os.remove(self._tmp)
                raise
        self._recorder = None  # statistics mode: made at the first recorded call (its device)
        self._stats_tmp = None if self.stats_path is None else f"{self.stats_path}.tmp{os.getpid()}"
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
            # The files appear under their names only when everything succeeded, the dump first.
            try:
                if self._file is not None:
                    self._file.close()
                    self._file = None
                    if done:
                        try:
                            os.replace(self._tmp, self.path)
                        except OSError:
                            os.remove(self._tmp)
                            raise
                    elif os.path.exists(self._tmp):
                        os.remove(self._tmp)
                if done and self._recorder is not None:
                    os.replace(self._stats_tmp, self.stats_path)
            finally:
                if self._recorder is not None:
                    if os.path.exists(self._stats_tmp):
                        os.remove(self._stats_tmp)
                    self._recorder.close()
        return False

    # ---- what the caller tells -----------------------------------------------------------------
    def _on_step(self):
        self._step_samples = None

    def step(self, index, timestep=None):
        """Marks the start of sampling step `index` (0 <= index <= num_steps when num_steps is given:
        diffusers' callback marks step num_steps after the last one, where nothing may be recorded)."""
        index = _integer("step index", index, 0, self.num_steps)
        if timestep is not None:  # a number or a 0-d tensor (diffusers' timesteps)
            try:
                timestep = float(timestep)
            except (TypeError, ValueError, RuntimeError):
                raise TypeError(f"step: timestep must be a number, got {timestep!r}") from None
            if not math.isfinite(timestep):
                raise ValueError(f"step: timestep must be finite, got {timestep}")
        super().step(index, timestep)

    def set_prompts(self, prompts):
        """The prompt text of each selected batch entry (a string: the same for all)."""
        if isinstance(prompts, str):
            prompts = [prompts]
        elif isinstance(prompts, bytes) or not hasattr(prompts, "__iter__"):
            raise TypeError(f"set_prompts: prompts must be a string or a list of strings, got {prompts!r}")
        prompts = list(prompts)
        bad = [p for p in prompts if not isinstance(p, str)]
        if bad or not prompts:
            raise TypeError(f"set_prompts: prompts must be a string or a non-empty list of strings, got {prompts!r}")
        self._prompts = prompts

    # ---- the wrapper -----------------------------------------------------------------------------
    def _layer_call(self, layer, query, key, value, args, kwargs):
        out = self._original(query, key, value, *args, **kwargs)
        if self.num_steps is not None and self._step >= self.num_steps:
            raise ValueError(f"an attention call at step {self._step}: past the last of num_steps={self.num_steps} "
                             "(step() marked one step too many?)")
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
        if self._file is not None:
            self._write_dump(layer, l, q, k, v, scale, rows, first, count, heads)
        if self.stats_path is not None:
            if self._recorder is None:
                self._recorder = _Recorder(self, q.device)
            index = None if self.heads is None else torch.tensor(heads, device=q.device)
            for i, b in enumerate(rows):
                qb, kb = (q[b], k[b]) if index is None else (q[b].index_select(0, index), k[b].index_select(0, index))
                self._recorder.add(l, first + i, qb, kb, scale)
        self._written.setdefault(l, set()).add(first)

    def _write_dump(self, layer, l, q, k, v, scale, rows, first, count, heads):
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
                x = t[b, heads].to(torch.float32).cpu().numpy()
                where = f"model layer {layer} {name} (batch entry {b}, step {self._step})"
                peak = np.abs(x).max(initial=0.0)  # NaN and Inf carry through the max: one pass
                if not np.isfinite(peak):
                    raise ValueError(f"{where} holds NaN or Inf: paro calibrate cannot use it; not recorded")
                if self.dtype == np.float16 and peak > _FP16_MAX:
                    raise ValueError(f"{where}: |values| up to {peak:.4g} overflow the float16 dump "
                                     f"(max {_FP16_MAX:g}): capture with dtype=\"float32\"")
                d[first + i] = x.astype(self.dtype)

    def _finish(self):
        if not self._sample_step:
            raise RuntimeError(f"{self.path or self.stats_path}: no attention call of {self.tokens} tokens was recorded "
                               f"(grid {self.grid}, {self.text_tokens} text tokens)")
        firsts = sorted({first for written in self._written.values() for first in written})
        for l, written in self._written.items():
            missing = [f for f in firsts if f not in written]
            if missing:
                raise RuntimeError(f"{self.path or self.stats_path}: model layer {self._model_layer(l)} was not called in the step of "
                                   f"sample {missing[0]} (step {self._sample_step[missing[0]]})")
        if self._file is not None:
            f = self._file
            f["samples/timestep"] = np.array(self._sample_timestep, dtype=np.float64)
            f["samples/step"] = np.array(self._sample_step, dtype=np.int64)
            f["samples/prompt"] = np.array(self._sample_prompt, dtype=np.int64)
            f["samples"].attrs["prompt_names"] = self._prompt_names
            if self.num_steps is not None:
                f["samples"].attrs["num_steps"] = int(self.num_steps)
        if self._recorder is not None:
            self._recorder.write(self._stats_tmp)

    @property
    def stats_times(self):
        """Statistics mode: seconds spent in the GPU statistics, waiting for the host scoring,
        scoring (host threads) and writing; None before the first recorded call."""
        return None if self._recorder is None else self._recorder.times()

    def _model_layer(self, l):
        return next(m for m, d in self._dump_layer.items() if d == l)


_DTYPES = {torch.float16: capi.FLOAT16, torch.bfloat16: capi.BFLOAT16, torch.float32: capi.FLOAT32}


class _Recorder:
    """Statistics mode's handle on libparo_stats' recorder (paro_stats.h)."""

    def __init__(self, cap, device):
        if device.type != "cuda":
            raise RuntimeError(f"{cap.stats_path}: statistics mode computes on the GPU and needs CUDA tensors "
                               f"(attention runs on {device}); capture a dump instead")
        self.lib = load_stats()
        self.cap, self.device = cap, device
        d = capi.stats_recorder_desc()
        d.grid[:] = cap.grid
        d.text_tokens = cap.text_tokens
        d.text_suffix = int(cap.text_position == "suffix")
        for name, value in cap._scoring.items():
            setattr(d.scoring, name, value)
        d.device = device.index if device.index is not None else torch.cuda.current_device()
        spool = cap._spool_dir if cap._spool_dir is not None else (os.path.dirname(os.path.abspath(cap.stats_path)))
        d.spool_dir = os.fsencode(spool)
        d.threads = cap._threads
        d.all_orders = int(cap._all_orders)
        handle = C.c_void_p()
        self._check(self.lib.paro_stats_recorder_create(C.byref(d), C.byref(handle)), "creating the recorder")
        self.handle = handle

    def _check(self, status, what):
        if status != capi.OK:
            raise RuntimeError(f"{self.cap.stats_path}: {what}: {self.lib.paro_stats_last_error().decode()}")

    def add(self, layer, sample, q, k, scale):
        """q, k: [heads, N, D] of one sample, on the recorder's device."""
        if q.dtype not in _DTYPES or k.dtype != q.dtype:
            raise TypeError(f"statistics mode takes float16, bfloat16 or float32 q/k, got {q.dtype}/{k.dtype}")
        if q.device != self.device or k.device != self.device:
            raise RuntimeError(f"layer {layer}: q/k on {q.device}/{k.device}, the recorder on {self.device}")
        q = q if q.stride(-1) == 1 else q.contiguous()
        k = k if k.stride(-1) == 1 else k.contiguous()
        h = capi.stats_heads(q=q.data_ptr(), k=k.data_ptr(), q_stride_head=q.stride(0), q_stride_token=q.stride(1),
                             k_stride_head=k.stride(0), k_stride_token=k.stride(1), heads=q.shape[0],
                             head_dim=q.shape[2], dtype=_DTYPES[q.dtype], scale=float(scale or 0.0))
        stream = torch.cuda.current_stream(self.device).cuda_stream
        self._check(self.lib.paro_stats_recorder_add(self.handle, layer, sample, C.byref(h), C.c_void_p(stream)),
                    f"layer {layer} sample {sample}")

    def write(self, path):
        cap = self.cap
        S = len(cap._sample_step)
        timestep = (C.c_double * S)(*cap._sample_timestep)
        step = (C.c_int64 * S)(*cap._sample_step)
        prompt = (C.c_int64 * S)(*cap._sample_prompt)
        names = (C.c_char_p * len(cap._prompt_names))(*[n.encode() for n in cap._prompt_names])
        layers = sorted(cap._dump_layer.items(), key=lambda kv: kv[1])
        model_layer = (C.c_int64 * len(layers))(*[m for m, _ in layers])
        s = capi.stats_samples(count=S, timestep=timestep, step=step, prompt=prompt,
                               num_steps=int(cap.num_steps or 0), prompt_name_count=len(cap._prompt_names),
                               prompt_names=names, model=cap.model.encode(), layer_count=len(layers),
                               model_layer=model_layer)
        self._check(self.lib.paro_stats_recorder_write(self.handle, C.byref(s), os.fsencode(path)), "writing")

    def times(self):
        if not self.handle:
            return self._last_times
        t = capi.stats_recorder_times()
        self._check(self.lib.paro_stats_recorder_get_times(self.handle, C.byref(t)), "reading the times")
        return {"gpu": t.gpu_seconds, "wait": t.wait_seconds, "score": t.score_seconds, "write": t.write_seconds}

    def close(self):
        if self.handle:
            self._last_times = self.times()
            self.lib.paro_stats_recorder_destroy(self.handle)
            self.handle = None
