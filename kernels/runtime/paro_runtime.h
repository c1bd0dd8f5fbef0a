/* paro_runtime.h: the C API of the paro CUDA runtime.
 *
 * Block-sparse INT8 attention over 64 x 64 tiles of a per-head token permutation, driven by a
 * pattern file ("paro-pattern") or by masks handed over in memory. Everything works on raw device
 * pointers and a CUDA stream, so PyTorch (ctypes), JAX or C++ can call it without linking against
 * paro at build time: load libparo_runtime.so, call paro_plan_load once per model, then
 * paro_attention once per attention call. docs/runtime.md has the details and a Python example.
 *
 * Conventions
 *  - Every function returns a paro_status; PARO_OK is 0. paro_last_error() gives a one-line
 *    message for the last failure on the calling thread.
 *  - Tensors are [batch, heads, tokens, dim] views with the last dimension contiguous and the other
 *    strides given in elements (PyTorch's .stride()). Rows must start on 16-byte boundaries.
 *  - q, k, v are in ORIGINAL token order (raster video order, text where the layout puts it); the
 *    output is written in original order too. The permutation is fused into the quantization
 *    kernel (gather on read) and into the attention epilogue (scatter on write).
 *  - Work is enqueued on `stream` and is asynchronous: launch errors are reported at once, errors
 *    inside a kernel at the next synchronizing call (paro_stream_check).
 *  - A stream is a cudaStream_t passed as void* (NULL: the legacy default stream).
 */
#ifndef PARO_RUNTIME_H
#define PARO_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The library is built with hidden visibility: only what is marked PARO_API is exported. */
#if defined(__GNUC__)
#define PARO_API __attribute__((visibility("default")))
#else
#define PARO_API
#endif

/* Version 2: per-head PV formats (paro_pv_format, paro_plan_set_pv_format) replace PV bit widths;
 * paro_plan_set_pv_bits stays as a deprecated wrapper. fp8_e4m3 heads run on Hopper; elsewhere
 * paro_can_implement and paro_attention refuse their layers with PARO_ERROR_UNSUPPORTED.
 * Version 4: per-head QK bit widths (paro_plan_set_qk_bits; paro_plan_load takes the pattern's
 * qk_bits): 16-bit QK on Hopper; the workspace holds room for it. */
#define PARO_RUNTIME_API_VERSION 4

typedef enum paro_status {
    PARO_OK = 0,
    PARO_ERROR_INVALID_ARGUMENT = 1, /* a null pointer, a wrong shape, a misaligned row... */
    PARO_ERROR_UNSUPPORTED = 2,      /* a valid request the kernels do not implement (head dim 96, FP8 PV) */
    PARO_ERROR_NO_GPU = 3,           /* no usable CUDA device or driver */
    PARO_ERROR_CUDA = 4,             /* a CUDA call failed; paro_last_error() names it */
    PARO_ERROR_OUT_OF_MEMORY = 5,
    PARO_ERROR_FILE = 6              /* the pattern file is unreadable or invalid */
} paro_status;

typedef enum paro_dtype { PARO_FLOAT32 = 0, PARO_FLOAT16 = 1, PARO_BFLOAT16 = 2 } paro_dtype;

/* How a head's P (probabilities) and V enter the PV product; the codes of the pattern file's
 * pv_format (paro::PvFormat). */
typedef enum paro_pv_format {
    PARO_PV_INT8 = 0,     /* P u8 per tile and row, V s8 per tile and channel, int32 MMA (the default) */
    PARO_PV_FP16 = 1,     /* P and V in fp16, fp32 accumulation; |v| must stay below 65504 */
    PARO_PV_FP8_E4M3 = 2  /* Hopper kernels only (compute capability 9.0, sm_90a code); elsewhere
                             paro_can_implement and paro_attention refuse such layers: PARO_ERROR_UNSUPPORTED */
} paro_pv_format;

/* Axis orders, by name. NOTE: the same numbering as paro's AxisOrder, NOT the authors' runtime
 * (theirs is FHW, FWH, HWF, HFW, WHF, WFH). */
typedef enum paro_order {
    PARO_ORDER_FHW = 0, PARO_ORDER_FWH = 1, PARO_ORDER_HFW = 2,
    PARO_ORDER_HWF = 3, PARO_ORDER_WFH = 4, PARO_ORDER_WHF = 5
} paro_order;

typedef struct paro_plan paro_plan; /* device-ready pattern: orders + CSR lists of kept tiles */

/* In-memory description of a pattern (what a pattern file holds, minus the metadata). */
typedef struct paro_plan_desc {
    int64_t grid[3];          /* F, H, W of the video token grid */
    int64_t text_tokens;      /* tokens that are never permuted */
    int text_suffix;          /* 0: text tokens first (CogVideoX), 1: last (HunyuanVideo) */
    int block;                /* tile size; must be 64 */
    int layers, slots, heads;
    const uint8_t* orders;    /* [layers][heads] paro_order values */
    /* [slots][layers][heads][mask_bytes] tile bits over the PERMUTED sequence, row-major,
     * bit t = r * nb + c in byte t / 8 at bit t % 8; mask_bytes = (nb * nb + 7) / 8,
     * nb = ceil(tokens / 64). 1 = compute the tile. NULL: every tile kept (dense). */
    const uint8_t* masks;
} paro_plan_desc;

typedef struct paro_plan_info {
    int64_t tokens;
    int64_t tiles_per_side;
    int layers, slots, heads;
    double density;           /* fraction of tiles kept, over every (slot, layer, head) */
    size_t device_bytes;      /* device memory the plan holds */
} paro_plan_info;

/* One attention call: q, k, v -> out, all [batch, heads, tokens, head_dim] of one dtype. */
typedef struct paro_tensor {
    void* data;
    int64_t stride_batch, stride_head, stride_token; /* in elements */
} paro_tensor;

typedef struct paro_attention_args {
    int batch, heads, tokens, head_dim;
    paro_dtype dtype;         /* of q, k, v and out */
    paro_tensor q, k, v, out;
    int layer, slot;          /* which masks and orders of the plan to use */
    float scale;              /* softmax scale; 0 means 1 / sqrt(head_dim) */
    int smooth_k;             /* 1: subtract K's per-channel mean before quantizing (default) */
    int stages;               /* 0 or PARO_STAGE_ALL; for profiling, one stage alone */
    int identity_order;       /* profiling only: ignore the plan's orders (no permutation) */
} paro_attention_args;

#define PARO_STAGE_QUANTIZE 1 /* K mean, then permute + quantize Q, K, V into the workspace */
#define PARO_STAGE_ATTENTION 2 /* block-sparse INT8 attention from the workspace into out */
#define PARO_STAGE_ALL 3

PARO_API const char* paro_status_string(paro_status status);
PARO_API const char* paro_last_error(void);
PARO_API int paro_runtime_api_version(void);

/* PARO_OK and the device count when a CUDA device is usable, else PARO_ERROR_NO_GPU. */
PARO_API paro_status paro_device_check(int* device_count);

/* The INT8 attention kernel paro_attention runs on the current device: "wgmma (sm_90a)" on
   compute capability 9.0 when the library has sm_90a code, else "mma.sync (sm_80)". Setting the
   environment variable PARO_ATTENTION_KERNEL=mma.sync forces the latter (for comparisons). */
PARO_API const char* paro_attention_kernel_name(void);

/* Reads a pattern file and uploads orders and per-row lists of kept tiles to the current device. */
PARO_API paro_status paro_plan_load(const char* pattern_path, paro_plan** plan);
/* The same for heads [head_begin, head_end) of every layer only (head_end -1: to the last head): the
 * plan of one rank in head-parallel inference (xDiT / Ulysses), whose calls then pass
 * heads = head_end - head_begin. PARO_ERROR_INVALID_ARGUMENT for a range outside the pattern's heads
 * (API version 3). */
PARO_API paro_status paro_plan_load_heads(const char* pattern_path, int head_begin, int head_end, paro_plan** plan);
PARO_API paro_status paro_plan_create(const paro_plan_desc* desc, paro_plan** plan);
PARO_API paro_status paro_plan_get_info(const paro_plan* plan, paro_plan_info* info);
/* Frees the plan on its own device, whichever device is current (NULL: nothing). */
PARO_API void paro_plan_destroy(paro_plan* plan);
/* Per-head PV format: formats is [layers][heads] of paro_pv_format codes (what paro_plan_load
 * takes from the pattern), or NULL to give every head `all`. Plans start with every head at
 * PARO_PV_INT8 (the per-head codes go to the plan's device, whichever is current).
 * PARO_ERROR_INVALID_ARGUMENT for a code that is no paro_pv_format. Not to be called
 * while attention calls with this plan are in flight, nor between capturing a CUDA graph of such
 * calls and replaying it (a graph keeps the launches of the formats it was captured with). */
PARO_API paro_status paro_plan_set_pv_format(paro_plan* plan, const uint8_t* formats, paro_pv_format all);
/* Per-head QK bit width: qk_bits is [layers][heads] (what paro_plan_load takes from the pattern), or
 * NULL to give every head all_bits. 16: Q and K in fp16 with power-of-two scales (Q exact for fp16
 * and bf16 inputs but for values below 2^-20 of its row's maximum; K after the smooth_k mean
 * subtraction rounded to 11 bits), fp32 accumulation:
 * the Hopper kernels only, elsewhere paro_can_implement and paro_attention refuse such layers with
 * PARO_ERROR_UNSUPPORTED. 8 and 4: INT8 (there is no INT4 path; plans start there). Anything else:
 * PARO_ERROR_INVALID_ARGUMENT. Not to be called while attention calls with this plan are in flight,
 * nor between capturing a CUDA graph of such calls and replaying it. */
PARO_API paro_status paro_plan_set_qk_bits(paro_plan* plan, const uint8_t* qk_bits, int all_bits);
/* Deprecated (API version 1): paro_plan_set_pv_format with bit widths, pv_bits [layers][heads] or
 * NULL for all_bits: 16 -> PARO_PV_FP16, 8 and 4 -> PARO_PV_INT8 (there never was an INT4 path),
 * anything else PARO_ERROR_INVALID_ARGUMENT. */
PARO_API paro_status paro_plan_set_pv_bits(paro_plan* plan, const uint8_t* pv_bits, int all_bits);

/* Checks what paro_attention checks but the workspace and the current device (shapes, dtype, alignment,
 * output rows that overlap, plan indices, a kernel image for the current GPU in this build, a kernel
 * for every QK and PV format of the layer) without launching: PARO_OK, PARO_ERROR_INVALID_ARGUMENT or
 * PARO_ERROR_UNSUPPORTED. */
PARO_API paro_status paro_can_implement(const paro_plan* plan, const paro_attention_args* args);
/* Device workspace paro_attention needs for these shapes (Q, K and V^T with room for their 16-bit
 * formats, and scales). */
PARO_API paro_status paro_workspace_size(const paro_attention_args* args, size_t* bytes);

/* The whole op: permute + quantize Q/K/V (fused), block-sparse INT8 (or 16-bit) QK^T, fp32 online softmax,
 * per head INT8 PV (P quantized per tile and row) or fp16 PV (paro_pv_format); output scattered
 * back to original token order. */
PARO_API paro_status paro_attention(const paro_plan* plan, const paro_attention_args* args, void* workspace,
                           size_t workspace_bytes, void* stream);

/* Standalone permutation of one [batch, heads, tokens, dim] tensor by the plan's orders of `layer`:
 * forward: out[p] = in[gather[p]] (original -> permuted); inverse: out[gather[p]] = in[p]. in and out
 * must not share memory (PARO_ERROR_INVALID_ARGUMENT); the plan's device must be current. */
PARO_API paro_status paro_permute(const paro_plan* plan, int layer, int inverse, paro_dtype dtype, int batch, int heads,
                         int tokens, int dim, paro_tensor in, paro_tensor out, void* stream);

/* Plain fp32 reference attention on the GPU (for validation; slow, exact up to fp32 rounding).
 * q, k, v, out: float32, contiguous [batch, heads, tokens, head_dim], original order.
 * plan == NULL: dense attention. Otherwise the tile mask of (layer, slot) over the plan's orders (the
 * plan's device current);
 * a query whose tile row keeps nothing gets zeros. scale 0 means 1/sqrt(head_dim). */
PARO_API paro_status paro_reference_attention(const paro_plan* plan, int layer, int slot, int batch, int heads, int tokens,
                                     int head_dim, const float* q, const float* k, const float* v, float* out,
                                     float scale, void* stream);

/* Synchronizes the stream and reports any error raised inside a kernel. */
PARO_API paro_status paro_stream_check(void* stream);

#ifdef __cplusplus
}
#endif

#endif /* PARO_RUNTIME_H */
