#pragma once
// The Hopper attention kernel (attention_sm90.cu): which INT8 attention kernel runs, and its launcher.
#include "launch.hpp"

namespace paro::gpu {

enum class AttentionKernel : int { mma_sync = 0, wgmma = 1 };

// The kernels launch_attention runs on the current device: wgmma on a
// compute-capability 9.0 device when this build has sm_90a code, mma.sync otherwise. The
// environment variable PARO_ATTENTION_KERNEL=mma.sync forces the sm_80 kernel (for comparisons).
AttentionKernel attention_kernel_for_current_device();

// Block-sparse attention with warpgroup MMA, the same contract as the mma.sync kernels: pv16 = false
// runs the INT8-PV heads (a grid over all `heads`, fp16-PV heads return at once), pv16 = true the
// fp16-PV heads listed in plan.head_map[0 .. heads). Returns cudaErrorInvalidDeviceFunction when the
// build has no sm_90a code.
cudaError_t launch_attention_sm90(DType out_dt, bool pv16, const Shape& s, const PlanView& plan, const Quantized& w,
                                  float sm_scale, MutView out, int heads, cudaStream_t st);

}  // namespace paro::gpu
