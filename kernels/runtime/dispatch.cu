// Which attention kernel instance runs: the one place that maps (architecture, head dim, output
// type, QK and PV formats) to a kernel (attention_kernels.hpp lists the instances, the kernel files
// compile them). A new PV format is one policy in pv_sm80.cuh and/or its Hopper variant plus one
// case in launch_format below.
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <type_traits>

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
constexpr bool kHasFp8Pv = !std::is_same_v<Kernel<64, float, PvFormat::int8>, AttentionSm80<64, float, PvFormat::int8>>;

template <template <int, typename, PvFormat> class Kernel>
cudaError_t launch_format(PvFormat f, DType out_dt, const Shape& s, const PlanView& plan, const Quantized& w,
                          float sm_scale, MutView out, int heads, cudaStream_t st) {
    switch (f) {
        case PvFormat::int8: return launch_out_type<Kernel, PvFormat::int8>(out_dt, s, plan, w, sm_scale, out, heads, st);
        case PvFormat::fp16: return launch_out_type<Kernel, PvFormat::fp16>(out_dt, s, plan, w, sm_scale, out, heads, st);
        case PvFormat::fp8_e4m3:
            if constexpr (kHasFp8Pv<Kernel>)
                return launch_out_type<Kernel, PvFormat::fp8_e4m3>(out_dt, s, plan, w, sm_scale, out, heads, st);
            break;  // attention_has_kernel says no: paro_can_implement refuses such heads
    }
    return cudaErrorNotSupported;
}

}  // namespace

bool attention_has_kernel(int kernel) {
    const bool hopper_only = pv_format_of(kernel) == PvFormat::fp8_e4m3 || qk_format_of(kernel) == QkFormat::fp16;
    return !hopper_only || attention_kernel_for_current_device() == AttentionKernel::wgmma;
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
    // One launch per kernel variant present, each over its own heads' rows (the schedule's run of
    // them); with no per-head variants, INT8 QK and PV over every head.
    const bool hopper = attention_kernel_for_current_device() == AttentionKernel::wgmma;
    for (int v = 0; v < kNumHeadKernels; ++v) {
        const int heads = !plan.kernels ? (v == head_kernel(QkFormat::int8, PvFormat::int8) ? s.heads : 0)
                                        : plan.kernel_begin[v + 1] - plan.kernel_begin[v];
        if (heads == 0) continue;
        PlanView p = plan;
        if (plan.kernels) p.schedule += size_t(plan.kernel_begin[v]) * size_t(s.nb);
        p.triples = plan.triples_of[v];
        p.tail_triples = plan.tail_triples_of[v];
        const PvFormat f = pv_format_of(v);
        cudaError_t e = cudaErrorNotSupported;  // 16-bit QK off Hopper: attention_has_kernel says no
        if (qk_format_of(v) == QkFormat::fp16) {
            if (hopper) e = launch_format<AttentionSm90Fp16Qk>(f, out_dt, s, p, w, sm_scale, out, heads, st);
        } else {
            e = hopper ? launch_format<AttentionSm90Int8Qk>(f, out_dt, s, p, w, sm_scale, out, heads, st)
                       : launch_format<AttentionSm80>(f, out_dt, s, p, w, sm_scale, out, heads, st);
        }
        if (e != cudaSuccess) return e;
    }
    return cudaSuccess;
}

}  // namespace paro::gpu
