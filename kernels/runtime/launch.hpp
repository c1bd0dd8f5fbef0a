#pragma once
// Internal interface between the host runtime (runtime.cpp) and the CUDA kernels (*.cu).
// Plain structs of device pointers; every launcher returns the cudaError_t of its launch.
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "paro/pv_format.hpp"
#include "paro/runtime_limits.hpp"

namespace paro::gpu {

constexpr int kTile = paro::kRuntimeTile;  // tokens per tile (query and key)

enum class DType : int { f32 = 0, f16 = 1, bf16 = 2 };

struct View {  // [batch, heads, tokens, dim], last dim contiguous
    const void* data;
    int64_t sb, sh, st;
};
struct MutView {
    void* data;
    int64_t sb, sh, st;
};

// Where the int8 operands live (the workspace). K and V^T are stored tile by tile, each tile's rows
// in the swizzled layout wgmma reads from shared memory (SwizzledRows, common.cuh).
struct Quantized {
    int8_t* q;        // [BH][Npad][D]      permuted order, row-major
    int8_t* k;        // [BH][Npad][D]      permuted order, mean-subtracted when smooth_k; 64-key tiles swizzled
    // V, [BH] regions of 2 * nb * D * 64 bytes each (vt_head_bytes), one layout per head:
    //  INT8-PV heads: [nb][D][64] int8 per tile transposed, keys shuffled within 16 (see prep.cu),
    //                 in the first half of the region; FP8-PV heads: the same layout, e4m3;
    //  fp16-PV heads: [nb][D][64] fp16 per tile transposed, keys in permuted order, not quantized.
    int8_t* vt;
    float* q_scale;   // [BH][Npad]         one per query row, permuted order
    float* k_scale;   // [BH][nb]
    // [BH][nb][D / 2][4] per tile and channel pair: {vs[2i], vs[2i + 1], -1.5 * 2^23 * vs[2i],
    // -1.5 * 2^23 * vs[2i + 1]}: the O update's FFMA operands, one 16-byte shared load per thread
    // (FP8 heads: the last two are 0).
    float* v_scale;
    float* k_mean;    // [BH][D]
    uint32_t* row_counter;  // [1] the persistent Hopper kernel's work counter, zeroed by each launch
};

struct PlanView {
    const int32_t* gathers;  // [6][N]: permuted position -> original token
    const uint8_t* orders;   // [heads] of this layer (nullptr: identity for all heads)
    const uint32_t* row_ptr; // [heads][nb + 1] for this (slot, layer), offsets into cols
    const uint16_t* cols;    // kept key tiles, ascending within a row
    // Per-head PV format of this layer: nullptr when every head is INT8. One launch per format
    // present; format f's heads are format_begin[f] .. format_begin[f + 1] in the schedule's order.
    const PvFormat* formats;  // [heads]
    // The launch's work, one CTA per item: item = head << 16 | query tile row, the rows of this
    // format's heads longest first (the plan's schedule for this (slot, layer), offset by dispatch),
    // so the long rows start first and short ones fill the end of the grid.
    const uint32_t* schedule;
    // 16 bits: heads < 65536 (items pack the head in 16 bits).
    uint16_t format_begin[kNumPvFormats + 1];
};

// Bytes of the V workspace region per (batch, head): room for fp16 V (2 bytes per element); INT8
// heads use the first half.
#ifdef __CUDACC__
#define PARO_HOST_DEVICE __host__ __device__
#else
#define PARO_HOST_DEVICE
#endif
PARO_HOST_DEVICE inline size_t vt_head_bytes(int nb, int d) { return size_t(nb) * size_t(d) * kTile * 2; }

struct Shape {
    int batch, heads, tokens, head_dim, nb, npad;
};

cudaError_t launch_k_mean(DType dt, const Shape& s, View k, float* k_mean, cudaStream_t st);
cudaError_t launch_quantize(DType dt, const Shape& s, const PlanView& plan, View q, View k, View v,
                            bool smooth_k, const Quantized& w, cudaStream_t st);
// The attention kernels launch_attention runs on the current device: wgmma on a compute-capability
// 9.0 device when this build has sm_90a code, mma.sync otherwise. The environment variable
// PARO_ATTENTION_KERNEL=mma.sync forces the sm_80 kernels (for comparisons).
enum class AttentionKernel : int { mma_sync = 0, wgmma = 1 };
AttentionKernel attention_kernel_for_current_device();
// Whether the current device has an attention kernel for heads of PV format f (FP8: Hopper only).
bool attention_has_pv_kernel(PvFormat f);
// Block-sparse attention: one launch per PV format present in the plan's layer (dispatch.cu).
cudaError_t launch_attention(DType out_dt, const Shape& s, const PlanView& plan, const Quantized& w,
                             float sm_scale, MutView out, cudaStream_t st);
cudaError_t launch_permute(DType dt, const Shape& s, const int32_t* gathers, const uint8_t* orders, bool inverse,
                           View in, MutView out, cudaStream_t st);
// fp32 reference; plan.row_ptr == nullptr means dense.
cudaError_t launch_reference(const Shape& s, const PlanView& plan, const float* q, const float* k, const float* v,
                             float* out, float sm_scale, cudaStream_t st);

}  // namespace paro::gpu
