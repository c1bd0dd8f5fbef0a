"""Running a pattern in PyTorch on paro's CUDA runtime (libparo_runtime.so).

    plan = paro.Plan("pattern.h5")                        # on the current CUDA device
    out = paro.attention(q, k, v, plan, layer=3, step=12, num_steps=50)
    with paro.apply(plan, num_steps=50) as run:           # every SDPA layer call of a model
        pipe(prompt, num_inference_steps=50, callback_on_step_end=run.diffusers_callback())

`paro.attention` is the custom op `paro::attention` (torch.library, PyTorch 2.4+): it runs on the
current stream with no host synchronization, can be captured in a CUDA graph, and does not break a
`torch.compile` graph (a fake implementation gives the output's shape). q, k, v are
[batch, heads, N, D] CUDA tensors of one dtype (fp16, bf16, fp32), any strides with D contiguous.
"""
import ctypes as C
import itertools
import numbers
import warnings
import weakref

import torch

from . import capi
from . import pattern as pattern_mod
from ._library import load_runtime
from ._sdpa_hook import SdpaHook

_DTYPES = {torch.float32: capi.FLOAT32, torch.float16: capi.FLOAT16, torch.bfloat16: capi.BFLOAT16}
_PLANS = weakref.WeakValueDictionary()  # plan id -> Plan (custom ops take numbers); the caller keeps it alive
_IDS = itertools.count(1)


class RuntimeFailure(RuntimeError):
    """A runtime call failed; the message has the C status and the runtime's last error."""


class NoGpuError(RuntimeFailure):
    """The CUDA runtime needs a CUDA GPU and there is none (PARO_ERROR_NO_GPU, or torch sees none)."""


def _cuda_device(device):
    """torch.device of a usable CUDA device (None: the current one), or NoGpuError saying what torch reports."""
    if not torch.cuda.is_available():
        why = ("this torch was built without CUDA" if torch.version.cuda is None
               else "torch.cuda.is_available() is False (no CUDA device or driver)")
        raise NoGpuError(f"paro's CUDA runtime needs a CUDA GPU; torch {torch.__version__} reports: {why}")
    if device is None:
        return torch.device("cuda", torch.cuda.current_device())
    if isinstance(device, bool) or not isinstance(device, (numbers.Integral, str, torch.device)):
        raise TypeError(f"device must be a CUDA device index, 'cuda:N' or a torch.device, got {device!r}")
    d = torch.device("cuda", int(device)) if isinstance(device, numbers.Integral) else torch.device(device)
    if d.type != "cuda":
        raise ValueError(f"device must be a CUDA device, got {d}")
    d = torch.device("cuda", torch.cuda.current_device() if d.index is None else d.index)
    if not 0 <= d.index < torch.cuda.device_count():
        raise ValueError(f"device {d}: torch sees {torch.cuda.device_count()} CUDA device(s)")
    return d


def _plan_of(plan, what="plan"):
    """The open Plan `plan`, or TypeError / ValueError saying a paro.Plan is needed or that it is closed."""
    if not isinstance(plan, Plan):
        raise TypeError(f"{what} must be a paro.Plan (paro.Plan(\"pattern.h5\")), got {type(plan).__name__} {plan!r:.80}")
    if not getattr(plan, "handle", None) or _PLANS.get(getattr(plan, "id", None)) is not plan:
        raise ValueError(f"{what}: the paro.Plan is closed")
    return plan


class Plan:
    """A pattern file loaded onto a CUDA device (paro_plan_load). Keep it alive while in use.

    heads=(h0, h1) keeps heads [h0, h1) of every layer only (paro_plan_load_heads): the plan of one
    rank in head-parallel inference (xDiT / Ulysses), called with q, k, v of those heads."""

    def __init__(self, pattern_path, device=None, heads=None):
        self.handle = None
        self.device = _cuda_device(device)
        self.pattern = pattern_mod.load(pattern_path)
        self.lib = load_runtime()
        h0, h1 = (0, -1) if heads is None else (int(heads[0]), int(heads[1]))
        handle = C.c_void_p()
        with torch.cuda.device(self.device):
            self._check(self.lib.paro_plan_load_heads(str(pattern_path).encode(), h0, h1, C.byref(handle)),
                        "paro_plan_load_heads")
        self._adopt(handle)

    @classmethod
    def from_arrays(cls, grid, text_tokens, orders, masks_bits, text_suffix=False, layers=1, slots=1, device=None):
        """A plan from memory (paro_plan_create): orders [layers * heads] (paro's numbering),
        masks_bits [slots * layers * heads * ceil(nb * nb / 8)] packed as in the pattern file, or
        None for dense. Without a pattern file, give slots to attention() directly."""
        import numpy as np
        self = cls.__new__(cls)
        self.handle, self.pattern = None, None
        self.device = _cuda_device(device)
        self.lib = load_runtime()
        orders = np.ascontiguousarray(orders, dtype=np.uint8).reshape(-1)
        if len(orders) == 0 or len(orders) % layers:
            raise ValueError(f"{len(orders)} orders are not layers ({layers}) x heads")
        heads = len(orders) // layers
        tokens = int(text_tokens) + int(grid[0]) * int(grid[1]) * int(grid[2])
        nb = -(-tokens // 64)
        want = slots * layers * heads * ((nb * nb + 7) // 8)
        if masks_bits is not None and np.asarray(masks_bits).size != want:
            raise ValueError(f"masks_bits holds {np.asarray(masks_bits).size} bytes; {slots} slots x {layers} layers x "
                             f"{heads} heads of {(nb * nb + 7) // 8} bytes are {want}")
        d = capi.plan_desc()
        d.grid[:] = [int(g) for g in grid]
        d.text_tokens, d.text_suffix, d.block = int(text_tokens), int(bool(text_suffix)), 64
        d.layers, d.slots, d.heads = layers, slots, heads
        d.orders = orders.ctypes.data_as(C.POINTER(C.c_uint8))
        if masks_bits is not None:
            masks_bits = np.ascontiguousarray(masks_bits, dtype=np.uint8)
            d.masks = masks_bits.ctypes.data_as(C.POINTER(C.c_uint8))
        handle = C.c_void_p()
        with torch.cuda.device(self.device):
            self._check(self.lib.paro_plan_create(C.byref(d), C.byref(handle)), "paro_plan_create")
        self._adopt(handle)
        return self

    def _adopt(self, handle):
        self.handle = handle
        info = self.info()
        self.tokens, self.layers, self.slots, self.heads = info.tokens, info.layers, info.slots, info.heads
        self._workspaces = {}  # CUDA stream handle -> workspace tensor (_workspace)
        self.id = next(_IDS)
        _PLANS[self.id] = self

    def info(self):
        """paro_plan_get_info: tokens, tiles per side, layers, slots, heads, density, device bytes."""
        info = capi.plan_info()
        self._check(self.lib.paro_plan_get_info(self.handle, C.byref(info)), "paro_plan_get_info")
        return info

    def set_pv_format(self, formats):
        """One PV format for every head ("int8", "fp16", "fp8_e4m3"), or one per head [layers * heads]."""
        codes = {"int8": capi.PV_INT8, "fp16": capi.PV_FP16, "fp8_e4m3": capi.PV_FP8_E4M3}
        names = [formats] if isinstance(formats, str) else list(formats)
        unknown = sorted({repr(f) for f in names if f not in codes})
        if unknown:
            raise ValueError(f"set_pv_format: {', '.join(unknown)} is not one of {', '.join(codes)}")
        if not isinstance(formats, str) and len(names) != self.layers * self.heads:
            raise ValueError(f"set_pv_format: {len(names)} formats for {self.layers} layers x {self.heads} heads")
        # The plan's device is current while the runtime (re)allocates the plan's per-head codes.
        with torch.cuda.device(self.device):
            if isinstance(formats, str):
                status = self.lib.paro_plan_set_pv_format(self.handle, None, codes[formats])
            else:
                per_head = (C.c_uint8 * len(names))(*[codes[f] for f in names])
                status = self.lib.paro_plan_set_pv_format(self.handle, per_head, capi.PV_INT8)
        self._check(status, "paro_plan_set_pv_format")

    def set_qk_bits(self, bits):
        """One QK bit width for every head (16: 16-bit QK, Hopper only; 8: INT8), or one per head [layers * heads]."""
        if isinstance(bits, numbers.Integral):
            with torch.cuda.device(self.device):
                status = self.lib.paro_plan_set_qk_bits(self.handle, None, int(bits))
        else:
            if len(bits) != self.layers * self.heads:
                raise ValueError(f"set_qk_bits: {len(bits)} widths for {self.layers} layers x {self.heads} heads")
            widths = [int(b) for b in bits]
            if any(not 0 <= b <= 255 for b in widths):
                raise ValueError(f"set_qk_bits: widths must be 4, 8 or 16, got {sorted(set(widths))}")
            per_head = (C.c_uint8 * len(widths))(*widths)
            with torch.cuda.device(self.device):
                status = self.lib.paro_plan_set_qk_bits(self.handle, per_head, 0)
        self._check(status, "paro_plan_set_qk_bits")

    def close(self):
        if getattr(self, "handle", None):
            _PLANS.pop(self.id, None)
            self.lib.paro_plan_destroy(self.handle)  # frees on the plan's device whichever is current
            self.handle = None

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown
            pass

    def slot(self, step, num_steps):
        """The timestep slot of sampling step `step` of `num_steps` (as paro calibrate assigns)."""
        if self.pattern is None:
            raise ValueError("a plan made from arrays has no slot boundaries: pass slot= instead of step=")
        return self.pattern.slot_of_step(step, num_steps)

    def _check(self, status, what):
        if status != capi.OK:
            raise RuntimeFailure(f"{what}: {self.lib.paro_status_string(status).decode()}: "
                                f"{self.lib.paro_last_error().decode()}")

    def _args(self, q, k, v, out, layer, slot, scale):
        def view(t):
            return capi.tensor(t.data_ptr(), t.stride(0), t.stride(1), t.stride(2))
        b, h, n, d = q.shape
        return capi.attention_args(b, h, n, d, _DTYPES[q.dtype], view(q), view(k), view(v), view(out), layer, slot,
                                   0.0 if scale is None else scale, 1, capi.STAGE_ALL, 0)

    def check_args(self, q, k, v, layer, slot):
        """Raises TypeError / ValueError naming the argument the runtime would not take (shapes,
        dtype, device, strides, layer, slot), in Python, before any C call."""
        for name, t in (("q", q), ("k", k), ("v", v)):
            if not isinstance(t, torch.Tensor):
                raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if q.dtype not in _DTYPES:
            raise TypeError(f"q has dtype {q.dtype}; the runtime takes {', '.join(map(str, _DTYPES))}")
        if q.dim() != 4:
            raise ValueError(f"q must be [batch, heads, N, D], got shape {tuple(q.shape)}")
        if q.shape[3] not in (64, 128):
            raise ValueError(f"q has head dim {q.shape[3]}: the runtime takes 64 or 128")
        if not 1 <= q.shape[0] <= 65535:
            raise ValueError(f"q has batch {q.shape[0]}: the runtime takes 1 to 65535")
        for name, t in (("k", k), ("v", v)):
            if t.dtype != q.dtype:
                raise TypeError(f"{name} has dtype {t.dtype}, q has {q.dtype}: q, k, v must share one dtype")
            if t.shape != q.shape:
                raise ValueError(f"{name} has shape {tuple(t.shape)}, q has {tuple(q.shape)}: q, k, v must be "
                                 "[batch, heads, N, D] of one shape")
        for name, t in (("q", q), ("k", k), ("v", v)):
            if not t.is_cuda:
                raise ValueError(f"{name} is on {t.device}: the runtime takes CUDA tensors")
            if t.device != self.device:
                raise ValueError(f"{name} is on {t.device}, the plan on {self.device}")
            if t.stride(3) != 1:
                raise ValueError(f"{name} has strides {tuple(t.stride())}: the head dimension D must be contiguous")
            if t.data_ptr() % 16 or any(st * t.element_size() % 16 for st in t.stride()[:3]):
                raise ValueError(f"{name} (strides {tuple(t.stride())}, address {t.data_ptr():#x}): rows must start "
                                 "at 16-byte boundaries")
        for name, value, count in (("layer", layer, self.layers), ("slot", slot, self.slots)):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not 0 <= value < count:
                raise ValueError(f"{name} {value!r} is outside the plan's 0..{count - 1}")
        if q.shape[1] != self.heads:
            raise ValueError(f"q has {q.shape[1]} heads, the plan {self.heads}")
        if q.shape[2] != self.tokens:
            raise ValueError(f"q has {q.shape[2]} tokens, the plan {self.tokens}")

    def can_run(self, q, k, v, layer, slot):
        """Whether the runtime takes these tensors (shapes, dtype, strides, indices), without launching."""
        try:
            self.check_args(q, k, v, layer, slot)
        except (TypeError, ValueError):
            return False
        a = self._args(q, k, v, q, layer, slot, None)
        return self.lib.paro_can_implement(self.handle, C.byref(a)) == capi.OK

    def run(self, q, k, v, out, layer, slot, scale=None):
        """out = attention(q, k, v) with the (layer, slot) masks, on the current stream; out is a tensor
        of q's shape, dtype and device (any strides with D contiguous, rows not overlapping). scale None:
        1/sqrt(D)."""
        self.check_args(q, k, v, layer, slot)
        if not isinstance(out, torch.Tensor):
            raise TypeError(f"out must be a torch.Tensor, got {type(out).__name__}")
        if out.shape != q.shape or out.dtype != q.dtype or out.device != q.device:
            raise ValueError(f"out is {tuple(out.shape)} {out.dtype} on {out.device}; q is {tuple(q.shape)} {q.dtype} "
                             f"on {q.device}")
        if scale is not None and not (isinstance(scale, numbers.Real) and 0 < scale < float("inf")):
            raise ValueError(f"scale must be a positive finite number (or None: 1/sqrt(D)), got {scale!r}")
        return self._run(q, k, v, out, layer, slot, scale)

    def _workspace(self, nbytes, stream):
        """The call's workspace. While a CUDA graph is captured, a new tensor: the graph's private pool keeps
        it for the graph's replays. Eagerly, one per stream, grown when a call needs more: calls on two
        streams never share one, and a replaced one goes back to the caching allocator, which reuses it
        only after the work queued on its stream (record_stream covers a stream handle that was reused)."""
        if torch.cuda.is_current_stream_capturing():
            return torch.empty(nbytes, dtype=torch.uint8, device=self.device)
        ws = self._workspaces.get(stream.cuda_stream)
        if ws is None or ws.numel() < nbytes:
            ws = self._workspaces[stream.cuda_stream] = torch.empty(nbytes, dtype=torch.uint8, device=self.device)
        ws.record_stream(stream)
        return ws

    def _run(self, q, k, v, out, layer, slot, scale):
        # The arguments are checked (run, check_args).
        a = self._args(q, k, v, out, layer, slot, scale)
        size = C.c_size_t()
        self._check(self.lib.paro_workspace_size(C.byref(a), C.byref(size)), "paro_workspace_size")
        current = torch.cuda.current_stream(self.device)
        workspace = self._workspace(size.value, current)
        stream = current.cuda_stream
        if torch.cuda.current_device() != self.device.index:
            with torch.cuda.device(self.device):
                self._check(self.lib.paro_attention(self.handle, C.byref(a), C.c_void_p(workspace.data_ptr()),
                                                    size.value, C.c_void_p(stream)), "paro_attention")
            return out
        self._check(self.lib.paro_attention(self.handle, C.byref(a), C.c_void_p(workspace.data_ptr()), size.value,
                                            C.c_void_p(stream)), "paro_attention")
        return out


def kernel_name():
    """The attention kernel the runtime runs on the current device ("wgmma (sm_90a)", ...);
    NoGpuError when the runtime finds no usable CUDA device (paro_device_check)."""
    lib = load_runtime()
    count = C.c_int(0)
    status = lib.paro_device_check(C.byref(count))
    if status != capi.OK:
        raise NoGpuError(f"paro_device_check: {lib.paro_status_string(status).decode()}: "
                         f"{lib.paro_last_error().decode()}")
    return lib.paro_attention_kernel_name().decode()


def _attention_impl(q, k, v, plan_id, layer, slot, scale):
    plan = _PLANS.get(plan_id)
    if plan is None or not plan.handle:
        raise ValueError(f"plan id {plan_id}: the paro.Plan is closed (or was never made)")
    plan.check_args(q, k, v, layer, slot)
    return _run_checked(plan, q, k, v, layer, slot, scale)


def _run_checked(plan, q, k, v, layer, slot, scale):
    """The attention into a new tensor, the arguments already checked; scale None or <= 0: 1/sqrt(D)."""
    return plan._run(q, k, v, torch.empty_like(q), layer, slot, None if scale is None or scale <= 0 else float(scale))


if hasattr(torch, "library") and hasattr(torch.library, "custom_op"):
    @torch.library.custom_op("paro::attention", mutates_args=(), device_types="cuda")
    def _attention_op(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, plan_id: int, layer: int, slot: int,
                      scale: float) -> torch.Tensor:
        return _attention_impl(q, k, v, plan_id, layer, slot, scale)

    @_attention_op.register_fake
    def _(q, k, v, plan_id, layer, slot, scale):
        return torch.empty_like(q)
else:  # PyTorch before 2.4: a plain function (no torch.compile integration)
    _attention_op = _attention_impl


def attention(q, k, v, plan, layer, step=None, num_steps=None, slot=None, scale=None):
    """Block-sparse INT8 attention of one layer with the plan's orders and masks; give the slot, or
    the sampling step and the step count it belongs to. Wrong arguments raise TypeError /
    ValueError naming them (Plan.check_args) before any C call."""
    if not isinstance(plan, Plan):  # open-ness and the tensors are checked where it runs (_attention_impl)
        _plan_of(plan)
    for name, value in (("layer", layer), ("slot", slot), ("step", step), ("num_steps", num_steps)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Integral)):
            raise TypeError(f"{name} must be an integer, got {value!r}")
    if slot is None:
        if step is None or num_steps is None:
            raise ValueError("give slot=, or step= and num_steps=")
        slot = plan.slot(step, num_steps)
    if scale is not None and not (isinstance(scale, numbers.Real) and 0 < scale < float("inf")):
        raise ValueError(f"scale must be a positive finite number (or None: 1/sqrt(D)), got {scale!r}")
    scale = 0.0 if scale is None else float(scale)  # 0.0: 1/sqrt(D) (the op's signature takes a float)
    # Eager calls skip the op dispatcher (about 30 us a call); traced ones need the op.
    if _traced():
        return _attention_op(q, k, v, plan.id, int(layer), int(slot), scale)
    return _attention_impl(q, k, v, plan.id, int(layer), int(slot), scale)


def _traced():
    compiler = getattr(torch, "compiler", None)
    return compiler is not None and hasattr(compiler, "is_compiling") and compiler.is_compiling()


class apply(SdpaHook):
    """Routes a model's SDPA layer calls through paro.attention by layer and step (see the module
    docstring). Calls the plan does not cover (more layers, other shapes, masks, dropout, causal,
    CPU tensors) fall back to SDPA, with one warning per reason."""

    def __init__(self, plan, num_steps):
        _plan_of(plan)
        if isinstance(num_steps, bool) or not isinstance(num_steps, numbers.Integral) or num_steps < 1:
            raise ValueError(f"num_steps must be a positive integer, got {num_steps!r}")
        if plan.pattern is None:
            raise ValueError("paro.apply needs a plan loaded from a pattern file (its timestep slots); a plan made "
                             "from arrays takes paro.attention(..., slot=) instead")
        super().__init__(plan.tokens)
        self.plan, self.num_steps = plan, int(num_steps)
        self.routed = self.fallbacks = 0
        self._warned = set()

    def __enter__(self):
        self.step(0)
        return super().__enter__()

    def _fallback(self, why, query, key, value, args, kwargs):
        if why not in self._warned:
            self._warned.add(why)
            warnings.warn(f"paro.apply: {why}: those calls run the original attention", stacklevel=3)
        self.fallbacks += 1
        return self._original(query, key, value, *args, **kwargs)

    def _layer_call(self, layer, query, key, value, args, kwargs):
        extra = dict(zip(("attn_mask", "dropout_p", "is_causal", "scale"), args), **kwargs)
        if extra.get("attn_mask") is not None or extra.get("dropout_p", 0.0) or extra.get("is_causal", False):
            return self._fallback("attention masks, dropout or causal calls", query, key, value, args, kwargs)
        if layer >= self.plan.layers:
            return self._fallback(f"layer {layer} is past the plan's {self.plan.layers}", query, key, value, args,
                                  kwargs)
        if not 0 <= self._step < self.num_steps:
            return self._fallback(f"step {self._step} is outside 0..{self.num_steps - 1}", query, key, value, args,
                                  kwargs)
        slot = self.plan.slot(self._step, self.num_steps)
        if not self.plan.can_run(query, key, value, layer, slot):
            return self._fallback(f"tensors the runtime does not take (shape {tuple(query.shape)}, {query.dtype}, "
                                  f"{query.device})", query, key, value, args, kwargs)
        scale = extra.get("scale")
        if scale is not None and not (isinstance(scale, numbers.Real) and 0 < scale < float("inf")):
            return self._fallback(f"softmax scale {scale!r} (the runtime takes positive finite scales)", query, key,
                                  value, args, kwargs)
        self.routed += 1
        if _traced():
            return attention(query, key, value, self.plan, layer, slot=slot, scale=scale)
        # Eager: can_run has just checked these arguments; attention() would check them again.
        return _run_checked(self.plan, query, key, value, layer, slot, scale)
