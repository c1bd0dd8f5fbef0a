// Which attention kernel instance runs: the one place that maps (architecture, head dim, output
// type, PV format) to a kernel (attention_kernels.hpp lists the instances, the kernel files compile
// them). A new PV format is one policy in pv_sm80.cuh and/or its Hopper variant plus one case in
// launch_format below.
#include <atomic>
#include <cstdlib>
#include <cstring>

#include "attention_kernels.hpp"

namespace paro::gpu {

namespace {

template <template <int, typename, PvFormat> class Kernel, PvFormat F, typename TOut>
cudaError_t launch_head_dim(const Shape& s, const PlanView& plan, const Quantized& w, float sm_scale, MutView out,
                            int heads, cudaStream_t st) {
    return s.head_dim == 64 ? Kernel<64, TOut, F>::launch(s, plan, w, sm_scale, out, heads, st)
                            : Kernel<128, TOut, F>::launch(s, plan, w, sm_scale, out, heads, st);
}

template <template <int, typename, PvFormat> class Kernel, PvFormat F>
cudaError_t launch_out_type(DType out_dt, const Shape& s, const PlanView& plan, const Quantized& w, float sm_scale,
                            MutView out, int heads, cudaStream_t st) {
    switch (out_dt) {
        case DType::f32: return launch_head_dim<Kernel, F, float>(s, plan, w, sm_scale, out, heads, st);
        case DType::f16: return launch_head_dim<Kernel, F, __half>(s, plan, w, sm_scale, out, heads, st);
        case DType::bf16: return launch_head_dim<Kernel, F, __nv_bfloat16>(s, plan, w, sm_scale, out, heads, st);
    }
    return cudaErrorInvalidValue;
}

// FP8 PV exists on Hopper only (e4m3 tensor-core MMA: sm_89 and later; the sm_80 path has none).
template <template <int, typename, PvFormat> class Kernel>
constexpr bool kHasFp8Pv = false;
template <>
constexpr bool kHasFp8Pv<AttentionSm90> = true;

template <template <int, typename, PvFormat> class Kernel>
cudaError_t launch_format(PvFormat f, DType out_dt, const Shape& s, const PlanView& plan, const Quantized& w,
                          float sm_scale, MutView out, int heads, cudaStream_t st) {
    switch (f) {
        case PvFormat::int8: return launch_out_type<Kernel, PvFormat::int8>(out_dt, s, plan, w, sm_scale, out, heads, st);
        case PvFormat::fp16: return launch_out_type<Kernel, PvFormat::fp16>(out_dt, s, plan, w, sm_scale, out, heads, st);
        case PvFormat::fp8_e4m3:
            if constexpr (kHasFp8Pv<Kernel>)
                return launch_out_type<Kernel, PvFormat::fp8_e4m3>(out_dt, s, plan, w, sm_scale, out, heads, st);
            break;  // attention_has_pv_kernel says no: paro_can_implement refuses such heads
    }
    return cudaErrorNotSupported;
}

}  // namespace

bool attention_has_pv_kernel(PvFormat f) {
    return f != PvFormat::fp8_e4m3 || attention_kernel_for_current_device() == AttentionKernel::wgmma;
}

AttentionKernel attention_kernel_for_current_device() {
#ifdef PARO_HAVE_SM90A
    static const bool forced_sm80 = [] {
        const char* e = std::getenv("PARO_ATTENTION_KERNEL");
        return e && std::strcmp(e, "mma.sync") == 0;
    }();
    if (forced_sm80) return AttentionKernel::mma_sync;
    constexpr int kMaxDevices = 64;
    static std::atomic<int> cc[kMaxDevices] = {};  // 10 * major + minor per device; 0 = not asked yet
    int dev = 0;
    if (cudaGetDevice(&dev) != cudaSuccess || dev < 0) return AttentionKernel::mma_sync;
    int v = dev < kMaxDevices ? cc[dev].load(std::memory_order_relaxed) : 0;
    if (v == 0) {
        int major = 0, minor = 0;
        if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess ||
            cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev) != cudaSuccess)
            return AttentionKernel::mma_sync;
        v = 10 * major + minor;
        if (dev < kMaxDevices) cc[dev].store(v, std::memory_order_relaxed);
    }
    return v == 90 ? AttentionKernel::wgmma : AttentionKernel::mma_sync;
#else
    return AttentionKernel::mma_sync;
#endif
}

cudaError_t launch_attention(DType out_dt, const Shape& s, const PlanView& plan, const Quantized& w, float sm_scale,
                             MutView out, cudaStream_t st) {
    // One launch per PV format present, each over its own heads' rows (the schedule's run of them);
    // with no per-head formats, INT8 over every head.
    const bool hopper = attention_kernel_for_current_device() == AttentionKernel::wgmma;
    for (const PvFormat f : kAllPvFormats) {
        const int fi = index_of(f);
        const int heads = !plan.formats ? (f == PvFormat::int8 ? s.heads : 0)
                                        : plan.format_begin[fi + 1] - plan.format_begin[fi];
        if (heads == 0) continue;
        PlanView p = plan;
        if (plan.formats) p.schedule += size_t(plan.format_begin[fi]) * size_t(s.nb);
        const cudaError_t e = hopper ? launch_format<AttentionSm90>(f, out_dt, s, p, w, sm_scale, out, heads, st)
                                     : launch_format<AttentionSm80>(f, out_dt, s, p, w, sm_scale, out, heads, st);
        if (e != cudaSuccess) return e;
    }
    return cudaSuccess;
}

}  // namespace paro::gpu
