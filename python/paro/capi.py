"""ctypes mirror of the C API: kernels/runtime/paro_runtime.h and kernels/stats/paro_stats.h.

Every struct, enum value and function signature here is checked against the headers by
tests/python/test_capi_mirror.py (a C program prints sizeof/offsetof of the real structs), so the
two cannot drift. Names follow the headers without their paro_ prefix.
"""
import ctypes as C

RUNTIME_API_VERSION = 4  # PARO_RUNTIME_API_VERSION this mirror was written for
STATS_API_VERSION = 2    # PARO_STATS_API_VERSION

# enum paro_status
OK, ERROR_INVALID_ARGUMENT, ERROR_UNSUPPORTED, ERROR_NO_GPU, ERROR_CUDA, ERROR_OUT_OF_MEMORY, ERROR_FILE = range(7)
# enum paro_dtype
FLOAT32, FLOAT16, BFLOAT16 = range(3)
# enum paro_pv_format
PV_INT8, PV_FP16, PV_FP8_E4M3 = range(3)
# enum paro_order: paro's numbering (NOT the authors' runtime's)
ORDER_FHW, ORDER_FWH, ORDER_HFW, ORDER_HWF, ORDER_WFH, ORDER_WHF = range(6)
ORDER_NAMES = ("FHW", "FWH", "HFW", "HWF", "WFH", "WHF")
# PARO_STAGE_*
STAGE_QUANTIZE, STAGE_ATTENTION, STAGE_ALL = 1, 2, 3


class plan_desc(C.Structure):
    _fields_ = [("grid", C.c_int64 * 3), ("text_tokens", C.c_int64), ("text_suffix", C.c_int), ("block", C.c_int),
                ("layers", C.c_int), ("slots", C.c_int), ("heads", C.c_int),
                ("orders", C.POINTER(C.c_uint8)), ("masks", C.POINTER(C.c_uint8))]


class plan_info(C.Structure):
    _fields_ = [("tokens", C.c_int64), ("tiles_per_side", C.c_int64), ("layers", C.c_int), ("slots", C.c_int),
                ("heads", C.c_int), ("density", C.c_double), ("device_bytes", C.c_size_t)]


class tensor(C.Structure):
    _fields_ = [("data", C.c_void_p), ("stride_batch", C.c_int64), ("stride_head", C.c_int64),
                ("stride_token", C.c_int64)]


class attention_args(C.Structure):
    _fields_ = [("batch", C.c_int), ("heads", C.c_int), ("tokens", C.c_int), ("head_dim", C.c_int),
                ("dtype", C.c_int), ("q", tensor), ("k", tensor), ("v", tensor), ("out", tensor),
                ("layer", C.c_int), ("slot", C.c_int), ("scale", C.c_float), ("smooth_k", C.c_int),
                ("stages", C.c_int), ("identity_order", C.c_int)]


class stats_engine_desc(C.Structure):
    _fields_ = [("grid", C.c_int64 * 3), ("text_tokens", C.c_int64), ("text_suffix", C.c_int), ("block", C.c_int),
                ("eps", C.c_float), ("device", C.c_int), ("memory_budget", C.c_size_t)]


class stats_engine_info(C.Structure):
    _fields_ = [("tokens", C.c_int64), ("tiles_per_side", C.c_int64), ("tiles_per_head", C.c_size_t),
                ("device_bytes", C.c_size_t)]


class stats_heads(C.Structure):
    _fields_ = [("q", C.c_void_p), ("k", C.c_void_p), ("q_stride_head", C.c_int64), ("q_stride_token", C.c_int64),
                ("k_stride_head", C.c_int64), ("k_stride_token", C.c_int64), ("heads", C.c_int),
                ("head_dim", C.c_int), ("dtype", C.c_int), ("scale", C.c_double)]


class stats_buffers(C.Structure):
    _fields_ = [("mass", C.POINTER(C.c_double)), ("max", C.POINTER(C.c_float)),
                ("below_eps", C.POINTER(C.c_uint32))]


class stats_scoring(C.Structure):
    _fields_ = [("eps", C.c_float), ("density", C.c_double), ("recall", C.c_double), ("min_density", C.c_double),
                ("force_text", C.c_int), ("force_ragged", C.c_int), ("objective", C.c_int), ("alpha", C.c_double),
                ("sigma", C.c_double)]


class stats_recorder_desc(C.Structure):
    _fields_ = [("grid", C.c_int64 * 3), ("text_tokens", C.c_int64), ("text_suffix", C.c_int),
                ("scoring", stats_scoring), ("device", C.c_int), ("spool_dir", C.c_char_p), ("threads", C.c_int),
                ("memory_budget", C.c_size_t), ("all_orders", C.c_int)]


class stats_samples(C.Structure):
    _fields_ = [("count", C.c_int64), ("timestep", C.POINTER(C.c_double)), ("step", C.POINTER(C.c_int64)),
                ("prompt", C.POINTER(C.c_int64)), ("num_steps", C.c_int64), ("prompt_name_count", C.c_int64),
                ("prompt_names", C.POINTER(C.c_char_p)), ("model", C.c_char_p), ("layer_count", C.c_int64),
                ("model_layer", C.POINTER(C.c_int64))]


class stats_recorder_times(C.Structure):
    _fields_ = [("gpu_seconds", C.c_double), ("wait_seconds", C.c_double), ("score_seconds", C.c_double),
                ("write_seconds", C.c_double)]


STRUCTS = {"paro_plan_desc": plan_desc, "paro_plan_info": plan_info, "paro_tensor": tensor,
           "paro_attention_args": attention_args, "paro_stats_engine_desc": stats_engine_desc,
           "paro_stats_engine_info": stats_engine_info, "paro_stats_heads": stats_heads,
           "paro_stats_buffers": stats_buffers, "paro_stats_scoring": stats_scoring,
           "paro_stats_recorder_desc": stats_recorder_desc, "paro_stats_samples": stats_samples,
           "paro_stats_recorder_times": stats_recorder_times}

_p = C.c_void_p  # opaque handles (paro_plan*, paro_stats_engine*) and CUDA streams
_status = C.c_int

# name: (restype, argtypes), for each function of the headers.
RUNTIME_FUNCTIONS = {
    "paro_status_string": (C.c_char_p, [_status]),
    "paro_last_error": (C.c_char_p, []),
    "paro_runtime_api_version": (C.c_int, []),
    "paro_device_check": (_status, [C.POINTER(C.c_int)]),
    "paro_attention_kernel_name": (C.c_char_p, []),
    "paro_plan_load": (_status, [C.c_char_p, C.POINTER(_p)]),
    "paro_plan_load_heads": (_status, [C.c_char_p, C.c_int, C.c_int, C.POINTER(_p)]),
    "paro_plan_create": (_status, [C.POINTER(plan_desc), C.POINTER(_p)]),
    "paro_plan_get_info": (_status, [_p, C.POINTER(plan_info)]),
    "paro_plan_destroy": (None, [_p]),
    "paro_plan_set_pv_format": (_status, [_p, C.POINTER(C.c_uint8), C.c_int]),
    "paro_plan_set_qk_bits": (_status, [_p, C.POINTER(C.c_uint8), C.c_int]),
    "paro_plan_set_pv_bits": (_status, [_p, C.POINTER(C.c_uint8), C.c_int]),
    "paro_can_implement": (_status, [_p, C.POINTER(attention_args)]),
    "paro_workspace_size": (_status, [C.POINTER(attention_args), C.POINTER(C.c_size_t)]),
    "paro_attention": (_status, [_p, C.POINTER(attention_args), _p, C.c_size_t, _p]),
    "paro_permute": (_status, [_p, C.c_int, C.c_int, C.c_int, C.c_int, C.c_int, C.c_int, C.c_int, tensor, tensor,
                               _p]),
    "paro_reference_attention": (_status, [_p, C.c_int, C.c_int, C.c_int, C.c_int, C.c_int, C.c_int,
                                           C.POINTER(C.c_float), C.POINTER(C.c_float), C.POINTER(C.c_float),
                                           C.POINTER(C.c_float), C.c_float, _p]),
    "paro_stream_check": (_status, [_p]),
}
STATS_FUNCTIONS = {
    "paro_stats_api_version": (C.c_int, []),
    "paro_stats_last_error": (C.c_char_p, []),
    "paro_stats_engine_create": (_status, [C.POINTER(stats_engine_desc), C.POINTER(_p)]),
    "paro_stats_engine_destroy": (None, [_p]),
    "paro_stats_engine_get_info": (_status, [_p, C.POINTER(stats_engine_info)]),
    "paro_stats_can_implement": (_status, [_p, C.POINTER(stats_heads)]),
    "paro_stats_accumulate": (_status, [_p, C.POINTER(stats_heads), stats_buffers, _p]),
    "paro_stats_overflow_seen": (_status, [_p, C.POINTER(C.c_int)]),
    "paro_stats_recorder_create": (_status, [C.POINTER(stats_recorder_desc), C.POINTER(_p)]),
    "paro_stats_recorder_destroy": (None, [_p]),
    "paro_stats_recorder_add": (_status, [_p, C.c_int64, C.c_int64, C.POINTER(stats_heads), _p]),
    "paro_stats_recorder_write": (_status, [_p, C.POINTER(stats_samples), C.c_char_p]),
    "paro_stats_recorder_get_times": (_status, [_p, C.POINTER(stats_recorder_times)]),
}


def _declare(lib, functions, version_function, version):
    getattr(lib, version_function).restype = C.c_int
    found = lib[version_function]()
    if found < version:  # later versions only add functions
        raise OSError(f"{lib._name}: {version_function}() is {found}, this paro package needs version {version}")
    for name, (restype, argtypes) in functions.items():
        f = getattr(lib, name)
        f.restype, f.argtypes = restype, argtypes


def declare_runtime(lib):
    _declare(lib, RUNTIME_FUNCTIONS, "paro_runtime_api_version", RUNTIME_API_VERSION)


def declare_stats(lib):
    _declare(lib, STATS_FUNCTIONS, "paro_stats_api_version", STATS_API_VERSION)
