"""ctypes binding of libparo_runtime.so for PyTorch (no build-time linking).

    import torch, paro_torch
    rt = paro_torch.Runtime("build/libparo_runtime.so")
    plan = rt.plan_load("pattern.h5")              # or rt.plan_create(grid, text, orders, masks)
    out = rt.attention(plan, q, k, v, layer=0, slot=0)  # q, k, v: [B, H, N, D] fp16/bf16/fp32 CUDA

q, k, v may be any strided view whose last dim is contiguous (e.g. [B, N, H, D].transpose(1, 2)).
"""
import ctypes as C
import math

import torch

PARO_FLOAT32, PARO_FLOAT16, PARO_BFLOAT16 = 0, 1, 2
STAGE_QUANTIZE, STAGE_ATTENTION, STAGE_ALL = 1, 2, 3
PV_FORMATS = {"int8": 0, "fp16": 1, "fp8_e4m3": 2}  # paro_pv_format
ORDERS = ["FHW", "FWH", "HFW", "HWF", "WFH", "WHF"]  # paro's numbering (not the authors')


class PlanDesc(C.Structure):
    _fields_ = [("grid", C.c_int64 * 3), ("text_tokens", C.c_int64), ("text_suffix", C.c_int), ("block", C.c_int),
                ("layers", C.c_int), ("slots", C.c_int), ("heads", C.c_int),
                ("orders", C.POINTER(C.c_uint8)), ("masks", C.POINTER(C.c_uint8))]


class PlanInfo(C.Structure):
    _fields_ = [("tokens", C.c_int64), ("tiles_per_side", C.c_int64), ("layers", C.c_int), ("slots", C.c_int),
                ("heads", C.c_int), ("density", C.c_double), ("device_bytes", C.c_size_t)]


class Tensor(C.Structure):
    _fields_ = [("data", C.c_void_p), ("stride_batch", C.c_int64), ("stride_head", C.c_int64),
                ("stride_token", C.c_int64)]


class Args(C.Structure):
    _fields_ = [("batch", C.c_int), ("heads", C.c_int), ("tokens", C.c_int), ("head_dim", C.c_int),
                ("dtype", C.c_int), ("q", Tensor), ("k", Tensor), ("v", Tensor), ("out", Tensor),
                ("layer", C.c_int), ("slot", C.c_int), ("scale", C.c_float), ("smooth_k", C.c_int),
                ("stages", C.c_int), ("identity_order", C.c_int)]


_DT = {torch.float32: PARO_FLOAT32, torch.float16: PARO_FLOAT16, torch.bfloat16: PARO_BFLOAT16}


def _view(t):
    assert t.is_cuda and t.dim() == 4 and t.stride(3) == 1, "need a CUDA [B, H, N, D] view with contiguous D"
    return Tensor(t.data_ptr(), t.stride(0), t.stride(1), t.stride(2))


class Runtime:
    def __init__(self, path):
        self.lib = L = C.CDLL(path)
        L.paro_last_error.restype = C.c_char_p
        L.paro_status_string.restype = C.c_char_p
        L.paro_plan_load.argtypes = [C.c_char_p, C.POINTER(C.c_void_p)]
        L.paro_plan_create.argtypes = [C.POINTER(PlanDesc), C.POINTER(C.c_void_p)]
        L.paro_plan_get_info.argtypes = [C.c_void_p, C.POINTER(PlanInfo)]
        L.paro_plan_destroy.argtypes = [C.c_void_p]
        L.paro_workspace_size.argtypes = [C.POINTER(Args), C.POINTER(C.c_size_t)]
        L.paro_attention.argtypes = [C.c_void_p, C.POINTER(Args), C.c_void_p, C.c_size_t, C.c_void_p]
        L.paro_can_implement.argtypes = [C.c_void_p, C.POINTER(Args)]
        L.paro_plan_set_pv_format.argtypes = [C.c_void_p, C.POINTER(C.c_uint8), C.c_int]
        if L.paro_runtime_api_version() < 2:
            raise RuntimeError(f"{path}: paro runtime API version {L.paro_runtime_api_version()}, need 2 (PV formats)")
        L.paro_attention_kernel_name.restype = C.c_char_p
        self._ws = None

    def kernel_name(self):
        """The attention kernel paro_attention runs on the current device."""
        return self.lib.paro_attention_kernel_name().decode()

    def _check(self, status, what):
        if status != 0:
            raise RuntimeError(f"{what}: {self.lib.paro_status_string(status).decode()}: "
                               f"{self.lib.paro_last_error().decode()}")

    def plan_load(self, path):
        p = C.c_void_p()
        self._check(self.lib.paro_plan_load(path.encode(), C.byref(p)), "paro_plan_load")
        return p

    def plan_create(self, grid, text_tokens, orders, masks, text_suffix=False, layers=1, slots=1):
        """orders: uint8 [layers*heads]; masks: packed bits uint8 [slots*layers*heads*mask_bytes] (numpy)."""
        import numpy as np
        orders = np.ascontiguousarray(orders, dtype=np.uint8)
        masks = np.ascontiguousarray(masks, dtype=np.uint8)
        d = PlanDesc()
        d.grid[:] = list(grid)
        d.text_tokens, d.text_suffix, d.block = text_tokens, int(text_suffix), 64
        d.layers, d.slots, d.heads = layers, slots, len(orders) // layers
        d.orders = orders.ctypes.data_as(C.POINTER(C.c_uint8))
        d.masks = masks.ctypes.data_as(C.POINTER(C.c_uint8))
        p = C.c_void_p()
        self._check(self.lib.paro_plan_create(C.byref(d), C.byref(p)), "paro_plan_create")
        return p

    def plan_set_pv_format(self, plan, formats):
        """formats: one PV format for every head ("int8", "fp16", "fp8_e4m3" or its paro_pv_format code),
        or one per head, [layers*heads]."""
        code = lambda f: PV_FORMATS[f] if isinstance(f, str) else int(f)
        if isinstance(formats, (str, int)):
            self._check(self.lib.paro_plan_set_pv_format(plan, None, code(formats)), "paro_plan_set_pv_format")
        else:
            import numpy as np
            b = np.ascontiguousarray([code(f) for f in formats], dtype=np.uint8)
            self._check(self.lib.paro_plan_set_pv_format(plan, b.ctypes.data_as(C.POINTER(C.c_uint8)), 0),
                        "paro_plan_set_pv_format")

    def plan_info(self, plan):
        i = PlanInfo()
        self._check(self.lib.paro_plan_get_info(plan, C.byref(i)), "paro_plan_get_info")
        return i

    def destroy(self, plan):
        self.lib.paro_plan_destroy(plan)

    def make_args(self, q, k, v, out, layer=0, slot=0, scale=0.0, stages=STAGE_ALL, identity_order=False):
        B, H, N, D = q.shape
        a = Args(B, H, N, D, _DT[q.dtype], _view(q), _view(k), _view(v), _view(out), layer, slot, scale, 1,
                 stages, int(identity_order))
        return a

    def attention(self, plan, q, k, v, layer=0, slot=0, scale=0.0, out=None, stages=STAGE_ALL,
                  identity_order=False):
        if out is None:
            out = torch.empty_like(q)
        a = self.make_args(q, k, v, out, layer, slot, scale, stages, identity_order)
        size = C.c_size_t()
        self._check(self.lib.paro_workspace_size(C.byref(a), C.byref(size)), "paro_workspace_size")
        if self._ws is None or self._ws.numel() < size.value or self._ws.device != q.device:
            self._ws = torch.empty(size.value, dtype=torch.uint8, device=q.device)
        stream = torch.cuda.current_stream(q.device).cuda_stream
        self._check(self.lib.paro_attention(plan, C.byref(a), C.c_void_p(self._ws.data_ptr()), size.value,
                                            C.c_void_p(stream)), "paro_attention")
        return out


def gather_index(grid, text_tokens, order, text_suffix=False):
    """Permuted position -> original token, as paro's make_permutation (text tokens fixed)."""
    F, Hh, W = grid
    g = torch.arange(F * Hh * W).view(F, Hh, W)
    dims = ["FHW".index(c) for c in ORDERS[order] if True]
    vid = g.permute(*dims).reshape(-1)
    if text_suffix:
        return torch.cat([vid, torch.arange(F * Hh * W, F * Hh * W + text_tokens)])
    return torch.cat([torch.arange(text_tokens), vid + text_tokens])


def random_masks(heads, nb, density, gen):
    """bool [heads, nb, nb] with the diagonal kept, like paro bench."""
    m = torch.rand(heads, nb, nb, generator=gen) < density
    m[:, torch.arange(nb), torch.arange(nb)] = True
    if density >= 1.0:
        m[:] = True
    return m


def pack_bits(m):
    """bool [..., nb, nb] -> uint8 bytes per mask, bit t = r*nb + c, LSB first."""
    import numpy as np
    flat = m.reshape(m.shape[0], -1).numpy().astype(np.uint8)
    return np.packbits(flat, axis=1, bitorder="little").reshape(-1)
