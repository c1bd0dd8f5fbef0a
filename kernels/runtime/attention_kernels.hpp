#pragma once
// The attention kernel instances dispatch.cu chooses from: per architecture, a launcher for every
// (head dim, output type, PV format), compiled (explicitly instantiated) in the kernel's file.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "launch.hpp"

namespace paro::gpu {

// launch() runs the kernel over the rows of `heads` heads of plan: the first heads * nb items of
// plan.schedule (dispatch.cu points it at the format's own).
template <int D, typename TOut, PvFormat F>
struct AttentionSm80 {  // mma.sync: attention_sm80.cu
    static cudaError_t launch(const Shape& s, const PlanView& plan, const Quantized& w, float sm_scale, MutView out,
                              int heads, cudaStream_t st);
};
template <int D, typename TOut, PvFormat F, QkFormat Q>
struct AttentionSm90 {  // warpgroup MMA: attention_sm90.cu; cudaErrorInvalidDeviceFunction without sm_90a code
    static cudaError_t launch(const Shape& s, const PlanView& plan, const Quantized& w, float sm_scale, MutView out,
                              int heads, cudaStream_t st);
};
template <int D, typename TOut, PvFormat F>
using AttentionSm90Int8Qk = AttentionSm90<D, TOut, F, QkFormat::int8>;
template <int D, typename TOut, PvFormat F>
using AttentionSm90Fp16Qk = AttentionSm90<D, TOut, F, QkFormat::fp16>;

// The instances of KERNEL for PV format F (and the Hopper kernel's further arguments): every head
// dim and output type.
#define PARO_ATTENTION_INSTANCES(KERNEL, ...)                                 \
    template struct KERNEL<64, float, __VA_ARGS__>;                           \
    template struct KERNEL<128, float, __VA_ARGS__>;                          \
    template struct KERNEL<64, __half, __VA_ARGS__>;                          \
    template struct KERNEL<128, __half, __VA_ARGS__>;                         \
    template struct KERNEL<64, __nv_bfloat16, __VA_ARGS__>;                   \
    template struct KERNEL<128, __nv_bfloat16, __VA_ARGS__>
static_assert(kRuntimeHeadDims[0] == 64 && kRuntimeHeadDims[1] == 128 && kRuntimeHeadDims.size() == 2,
              "PARO_ATTENTION_INSTANCES and dispatch.cu cover exactly the runtime's head dims");

}  // namespace paro::gpu
