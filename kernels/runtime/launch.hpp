#pragma once
// Internal interface between the host runtime (runtime.cpp) and the CUDA kernels (*.cu).
// Plain structs of device pointers; every launcher returns the cudaError_t of its launch.
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "paro/pv_format.hpp"
#include "paro/runtime_limits.hpp"

#ifdef __CUDACC__
#define PARO_HOST_DEVICE_INLINE __host__ __device__ inline
#else
#define PARO_HOST_DEVICE_INLINE inline
#endif

namespace paro::gpu {

constexpr int kTile = paro::kRuntimeTile;  // tokens per tile (query and key)
// Rows of a query tile the fp16-PV Hopper kernel may have to compute again (RedoList, attention_cta.cuh):
// one entry per warp of 16 query rows.
constexpr int kRedoEntriesPerTile = kTile / 16;

enum class DType : int { f32 = 0, f16 = 1, bf16 = 2 };

// How a head's Q and K enter the QK^T product: INT8 (the default), or 16-bit (the pattern's qk_bits
// 16): fp16 with power-of-two scales (prep.cu), fp32 accumulation (Hopper only).
enum class QkFormat : uint8_t { int8 = 0, fp16 = 1 };
constexpr int kNumQkFormats = 2;

// A head's attention kernel variant: its QK and PV formats, as one code (the plan groups a layer's
// heads by it and runs one launch per variant present).
constexpr int kNumHeadKernels = kNumQkFormats * kNumPvFormats;
PARO_HOST_DEVICE_INLINE constexpr int head_kernel(QkFormat q, PvFormat p) {
    return int(q) * kNumPvFormats + int(p);
}
PARO_HOST_DEVICE_INLINE constexpr QkFormat qk_format_of(int kernel) { return QkFormat(kernel / kNumPvFormats); }
PARO_HOST_DEVICE_INLINE constexpr PvFormat pv_format_of(int kernel) { return PvFormat(kernel % kNumPvFormats); }

struct View {  // [batch, heads, tokens, dim], last dim contiguous
    const void* data;
    int64_t sb, sh, st;
};
struct MutView {
    void* data;
    int64_t sb, sh, st;
};

// Where the quantized operands live (the workspace). K and V^T are stored tile by tile, each tile's
// rows in the swizzled layout wgmma reads from shared memory (SwizzledRows, common.cuh).
struct Quantized {
    // Q and K: [BH] regions of qk_head_bytes each, in permuted order; INT8-QK heads use the first half
    // ([Npad][D] int8), 16-bit-QK heads all of it ([Npad][D] fp16).
    //  Q: row-major;
    //  K: mean-subtracted when smooth_k, per 64-key tile swizzled: INT8 one SwizzledRows<D> block,
    //     fp16 D / 64 blocks of SwizzledRows<128> (64 keys x 64 channels each).
    int8_t* q;
    int8_t* k;
    // V, [BH] regions of 2 * nb * D * 64 bytes each (vt_head_bytes), one layout per head:
    //  INT8-PV heads: [nb][D][64] int8 per tile transposed, keys shuffled within 16 (see prep.cu),
    //                 in the first half of the region; FP8-PV heads: the same layout, e4m3;
    //  fp16-PV heads: [nb][D][64] fp16 per tile transposed, keys in permuted order, not quantized.
    int8_t* vt;
    float* q_scale;   // [BH][Npad]         one per query row, permuted order (16-bit QK: powers of two)
    float* k_scale;   // [BH][nb]           (16-bit QK: powers of two)
    // [BH][nb][D / 2][4] per tile and channel pair: {vs[2i], vs[2i + 1], -1.5 * 2^23 * vs[2i],
    // -1.5 * 2^23 * vs[2i + 1]}: the O update's FFMA operands, one 16-byte shared load per thread
    // (FP8 heads: the last two are 0).
    float* v_scale;
    float* k_mean;    // [BH][D]
    // [4] the persistent Hopper kernels' counters, zeroed by each launch: work taken (triples, rows,
    // redone rows) and rows to redo (RedoList::count)
    uint32_t* row_counter;
    uint2* redo;  // [BH * (nb + 2) * kRedoEntriesPerTile] RedoList::entries
};

struct PlanView {
    const int32_t* gathers;  // [6][N]: permuted position -> original token
    const uint8_t* orders;   // [heads] of this layer (nullptr: identity for all heads)
    const uint32_t* row_ptr; // [heads][nb + 1] for this (slot, layer), offsets into cols
    const uint16_t* cols;    // kept key tiles, ascending within a row
    // Per-head kernel variant of this layer (head_kernel: QK and PV formats): nullptr when every
    // head is INT8 QK and INT8 PV. One launch per variant present; variant v's heads are
    // kernel_begin[v] .. kernel_begin[v + 1] in the schedule's order.
    const uint8_t* kernels;  // [heads]
    // The launch's work: item = head << 16 | query tile row (the sm_80 grid: one CTA per item), the rows of this
    // format's heads longest first (the plan's schedule for this (slot, layer), offset by dispatch),
    // so the long rows start first and short ones fill the end of the grid. The first 3 * triples
    // items are triples, rows r, r + 1, r + 2 of a head that keep the same key tiles; the
    // Hopper kernels with three consumer warpgroups run each triple on one ring of shared K/V stages.
    // Then (nb % 3) * tail_triples items, each head's last nb % 3 rows, which those kernels run as
    // tail triples, rows nb - 3 .. nb - 1 (the first ones a second time) and other kernels as rows.
    const uint32_t* schedule;
    uint32_t triples, tail_triples;              // of the variant being launched (dispatch)
    uint32_t triples_of[kNumHeadKernels];        // per variant, for this (slot, layer)
    uint32_t tail_triples_of[kNumHeadKernels];
    // 16 bits: heads < 65536 (items pack the head in 16 bits).
    uint16_t kernel_begin[kNumHeadKernels + 1];
    PARO_HOST_DEVICE_INLINE PvFormat pv_format(int h) const { return kernels ? pv_format_of(kernels[h]) : PvFormat::int8; }
    PARO_HOST_DEVICE_INLINE QkFormat qk_format(int h) const { return kernels ? qk_format_of(kernels[h]) : QkFormat::int8; }
};

// Bytes of the V workspace region per (batch, head): room for fp16 V (2 bytes per element); INT8
// heads use the first half.
PARO_HOST_DEVICE_INLINE size_t vt_head_bytes(int nb, int d) { return size_t(nb) * size_t(d) * kTile * 2; }

// Bytes of the Q (and of the K) workspace region per (batch, head): room for fp16 (16-bit-QK heads).
PARO_HOST_DEVICE_INLINE size_t qk_head_bytes(int npad, int d) { return size_t(npad) * size_t(d) * 2; }

struct Shape {
    int batch, heads, tokens, head_dim, nb, npad;
};

cudaError_t launch_k_mean(DType dt, const Shape& s, View k, float* k_mean, cudaStream_t st);
cudaError_t launch_quantize(DType dt, const Shape& s, const PlanView& plan, View q, View k, View v,
                            bool smooth_k, const Quantized& w, cudaStream_t st);
// The attention kernels launch_attention runs on the current device: wgmma on a compute-capability
// 9.0 device when this build has sm_90a code, mma.sync otherwise. The environment variable
// PARO_ATTENTION_KERNEL=mma.sync forces the sm_80 kernels (for comparisons).
// Whether this build has kernels the current device can run (an image for its architecture).
bool kernels_run_on_current_device();
enum class AttentionKernel : int { mma_sync = 0, wgmma = 1 };
AttentionKernel attention_kernel_for_current_device();
// Whether the current device has an attention kernel for heads of variant `kernel` (head_kernel;
// FP8 PV and 16-bit QK: Hopper only).
bool attention_has_kernel(int kernel);
// Block-sparse attention: one launch per kernel variant present in the plan's layer (dispatch.cu).
cudaError_t launch_attention(DType out_dt, const Shape& s, const PlanView& plan, const Quantized& w,
                             float sm_scale, MutView out, cudaStream_t st);
cudaError_t launch_permute(DType dt, const Shape& s, const int32_t* gathers, const uint8_t* orders, bool inverse,
                           View in, MutView out, cudaStream_t st);
// fp32 reference; plan.row_ptr == nullptr means dense.
cudaError_t launch_reference(const Shape& s, const PlanView& plan, const float* q, const float* k, const float* v,
                             float* out, float sm_scale, cudaStream_t st);

}  // namespace paro::gpu
