#pragma once
// PTX wrappers of Hopper (sm_90a) for the attention kernel (attention_sm90.cu): warpgroup MMA with
// descriptors of the swizzled K-major operand layout (SwizzledRows, common.cuh), wgmma issue /
// commit / wait and the operand fences around them; mbarriers and the bulk copy engine (TMA) that
// feed the tiles; setmaxnreg; shared-memory loads.
#include <cstdint>

#include "common.cuh"
#include "ptx.cuh"

// The sm_90a device pass: the only one where wgmma exists.
#if defined(__CUDA_ARCH__) && (__CUDA_ARCH__ >= 900) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define PARO_SM90_DEVICE 1
#endif

namespace paro::gpu {

#ifdef PARO_SM90_DEVICE
// Descriptor of a K-major SwizzledRows<RB> operand, from the low word (start address >> 4, and the
// leading byte offset 1: unused in the swizzled K-major modes); the high word holds the stride byte
// offset (the distance between 8-row groups) and the swizzle mode. Steps along K inside a row, and
// from stage to stage, just add to the start address: a kernel keeps the low word of its shared
// memory base and adds compile-time offsets (address / 16).
__device__ __forceinline__ uint32_t desc_lo(uint32_t smem_addr) { return (smem_addr >> 4) | (1u << 16); }
template <int RB>
__device__ __forceinline__ uint64_t wgmma_desc(uint32_t lo) {
    return uint64_t(lo) | (uint64_t(((8 * RB) >> 4) | (uint32_t(SwizzledRows<RB>::kMode) << 30)) << 32);
}
__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void wgmma_wait() {
    asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}
__device__ __forceinline__ void fence_proxy_async() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }
// The compiler does not know that a wgmma writes its accumulators asynchronously: this empty asm,
// placed after the wait, keeps every read of an accumulator below it (CUTLASS's
// warpgroup_fence_operand).
__device__ __forceinline__ void fence_operand(int (&d)[8][4]) {
#pragma unroll
    for (int j = 0; j < 8; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) asm volatile("" : "+r"(d[j][e])::"memory");
}
template <int N>
__device__ __forceinline__ void fence_operand(float (&d)[N][4]) {
#pragma unroll
    for (int j = 0; j < N; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) asm volatile("" : "+f"(d[j][e])::"memory");
}

// One warpgroup MMA with A from registers (a, four 32-bit fragments) and B from shared memory (desc):
// d[64 x N] of N / 2 registers per thread in the mma.m16n8 C layout (d[j][e]: n-block j of 8). SHAPE
// names the shape and types, TAIL the operands after the descriptor (scale-d, and the input scales and
// transpose where the types have them). D_CONSTRAINT "=r"/"=f" when d is an output only (scale-d 0:
// its old values are not kept alive until the issue), "+r"/"+f" when it accumulates. PARO_OPS_R<R>:
// the operand list of R accumulator registers, then A and the descriptor; PARO_ACC8(C, j): the
// constraints of n-blocks j .. j + 7 (32 registers).
#define PARO_OPS_R32  \
    "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "  \
    "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, {%32, %33, %34, %35}, %36"
#define PARO_OPS_R36  \
    "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "  \
    "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, "  \
    "%32, %33, %34, %35}, {%36, %37, %38, %39}, %40"
#define PARO_OPS_R68  \
    "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "  \
    "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, "  \
    "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, "  \
    "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63, "  \
    "%64, %65, %66, %67}, {%68, %69, %70, %71}, %72"
#define PARO_ACC1(C, j) C(d[j][0]), C(d[j][1]), C(d[j][2]), C(d[j][3])
#define PARO_ACC8(C, j)                                                                                        \
    PARO_ACC1(C, j), PARO_ACC1(C, j + 1), PARO_ACC1(C, j + 2), PARO_ACC1(C, j + 3), PARO_ACC1(C, j + 4),      \
        PARO_ACC1(C, j + 5), PARO_ACC1(C, j + 6), PARO_ACC1(C, j + 7)
// The accumulators' constraints last (they hold commas).
#define PARO_WGMMA_RA(OPS, SHAPE, TAIL, ...)                                                                  \
    asm volatile("wgmma.mma_async.sync.aligned." SHAPE " " OPS ", " TAIL ";\n"                              \
                 : __VA_ARGS__                                                                                 \
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc))
#define PARO_WGMMA_RA_N64(C, SHAPE, TAIL) PARO_WGMMA_RA(PARO_OPS_R32, SHAPE, TAIL, PARO_ACC8(C, 0))
#define PARO_OUT_R(x) "=r"(x)
#define PARO_INOUT_R(x) "+r"(x)
#define PARO_OUT_F(x) "=f"(x)
#define PARO_INOUT_F(x) "+f"(x)
// d (+)= a[64 x 32] (s8, or u8 when AU8: P') * B[32 x 64] (s8), int32 accumulators; ACC = false: d = a * b.
template <bool ACC, bool AU8 = false>
__device__ __forceinline__ void wgmma_s8_n64(int (&d)[8][4], const uint32_t (&a)[4], uint64_t desc) {
    if constexpr (ACC && AU8)
        PARO_WGMMA_RA_N64(PARO_INOUT_R, "m64n64k32.s32.u8.s8", "1");
    else if constexpr (ACC)
        PARO_WGMMA_RA_N64(PARO_INOUT_R, "m64n64k32.s32.s8.s8", "1");
    else if constexpr (AU8)
        PARO_WGMMA_RA_N64(PARO_OUT_R, "m64n64k32.s32.u8.s8", "0");
    else
        PARO_WGMMA_RA_N64(PARO_OUT_R, "m64n64k32.s32.s8.s8", "0");
}
// d (+)= a[64 x 16] (f16) * B[16 x 64] (f16, K-major), fp32 accumulators; ACC = false: d = a * b.
template <bool ACC>
__device__ __forceinline__ void wgmma_f16_n64(float (&d)[8][4], const uint32_t (&a)[4], uint64_t desc) {
    if constexpr (ACC)
        PARO_WGMMA_RA_N64(PARO_INOUT_F, "m64n64k16.f32.f16.f16", "1, 1, 1, 0");
    else
        PARO_WGMMA_RA_N64(PARO_OUT_F, "m64n64k16.f32.f16.f16", "0, 1, 1, 0");
}
// d (+)= a[64 x 32] (e4m3) * B[32 x 64] (e4m3, K-major), fp32 accumulators; ACC = false: d = a * b.
template <bool ACC>
__device__ __forceinline__ void wgmma_e4m3_n64(float (&d)[8][4], const uint32_t (&a)[4], uint64_t desc) {
    if constexpr (ACC)
        PARO_WGMMA_RA_N64(PARO_INOUT_F, "m64n64k32.f32.e4m3.e4m3", "1, 1, 1");
    else
        PARO_WGMMA_RA_N64(PARO_OUT_F, "m64n64k32.f32.e4m3.e4m3", "0, 1, 1");
}
// fp16 PV with the row sums: d += a[64 x 16] (f16) * B[16 x (D + 8)] (f16, K-major), fp32
// accumulators, B being V^T's D rows and then 8 rows of ones, so n-block D / 8 sums P's rows.
template <int D>
__device__ __forceinline__ void wgmma_f16_pv_sums(float (&d)[D / 8 + 1][4], const uint32_t (&a)[4], uint64_t desc) {
    static_assert(D == 64 || D == 128);
    if constexpr (D == 64)
        PARO_WGMMA_RA(PARO_OPS_R36, "m64n72k16.f32.f16.f16", "1, 1, 1, 0", PARO_ACC8(PARO_INOUT_F, 0),
                      PARO_ACC1(PARO_INOUT_F, 8));
    else
        PARO_WGMMA_RA(PARO_OPS_R68, "m64n136k16.f32.f16.f16", "1, 1, 1, 0", PARO_ACC8(PARO_INOUT_F, 0),
                      PARO_ACC8(PARO_INOUT_F, 8), PARO_ACC1(PARO_INOUT_F, 16));
}
#undef PARO_OUT_R
#undef PARO_INOUT_R
#undef PARO_OUT_F
#undef PARO_INOUT_F
#undef PARO_WGMMA_RA_N64
#undef PARO_WGMMA_RA
#undef PARO_OPS_R32
#undef PARO_OPS_R36
#undef PARO_OPS_R68
#undef PARO_ACC8
#undef PARO_ACC1
__device__ __forceinline__ float4 lds_f32x4(uint32_t a) {
    float4 x;
    asm volatile("ld.shared.v4.f32 {%0, %1, %2, %3}, [%4];\n" : "=f"(x.x), "=f"(x.y), "=f"(x.z), "=f"(x.w) : "r"(a));
    return x;
}
__device__ __forceinline__ uint32_t lds_u32(uint32_t a) {
    uint32_t x;
    asm volatile("ld.shared.u32 %0, [%1];\n" : "=r"(x) : "r"(a) : "memory");
    return x;
}
__device__ __forceinline__ void sts_u32(uint32_t a, uint32_t x) {
    asm volatile("st.shared.u32 [%0], %1;\n" ::"r"(a), "r"(x) : "memory");
}
__device__ __forceinline__ uint2 lds_u32x2(uint32_t a) {
    uint2 x;
    asm volatile("ld.shared.v2.u32 {%0, %1}, [%2];\n" : "=r"(x.x), "=r"(x.y) : "r"(a) : "memory");
    return x;
}
__device__ __forceinline__ void sts_u32x2(uint32_t a, uint32_t x, uint32_t y) {
    asm volatile("st.shared.v2.u32 [%0], {%1, %2};\n" ::"r"(a), "r"(x), "r"(y) : "memory");
}

// mbarriers (shared::cta, 8 bytes): init, arrive (release), arrive announcing the bytes a bulk copy
// will complete on it, and a test of a phase (acquire) that may suspend the thread for a while (a
// hardware time limit) before it fails: a phase of parity P has completed when try_wait.parity(P)
// succeeds, so a fresh barrier passes a wait on parity 1 at once.
__device__ __forceinline__ void mbar_init(uint32_t bar, uint32_t count) {
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
}
// The barriers' initialization, visible to the other threads and the copy engine (before a __syncthreads).
__device__ __forceinline__ void mbar_init_fence() { asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory"); }
__device__ __forceinline__ void mbar_arrive(uint32_t bar) {
    asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
}
__device__ __forceinline__ void mbar_arrive_expect_tx(uint32_t bar, uint32_t bytes) {
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes) : "memory");
}
// Whether the barrier's phase of this parity has completed; may suspend the thread for a while
// before it answers no.
__device__ __forceinline__ bool mbar_try_wait(uint32_t bar, uint32_t parity) {
    uint32_t done;
    asm volatile("{\n.reg .pred p;\nmbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\nselp.u32 %0, 1, 0, p;\n}\n"
                 : "=r"(done)
                 : "r"(bar), "r"(parity)
                 : "memory");
    return done != 0;
}
__device__ __forceinline__ void mbar_wait(uint32_t bar, uint32_t parity) {
    while (!mbar_try_wait(bar, parity)) {
    }
}
// Bulk copy (the TMA engine, no tensor map) of `bytes` (a multiple of 16; both addresses 16-byte
// aligned) from global to shared memory, completing its bytes on mbarrier bar.
__device__ __forceinline__ void bulk_copy_g2s(uint32_t dst, const void* src, uint32_t bytes, uint32_t bar) {
    asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];\n" ::"r"(dst),
                 "l"(src), "r"(bytes), "r"(bar)
                 : "memory");
}
// Programmatic dependent launch: let the next grid in the stream (launched with programmatic stream
// serialization) start once every CTA of this one has said so or ended; and wait until the grids this
// one was launched behind have completed (at once if none).
__device__ __forceinline__ void grid_launch_dependents() { asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory"); }
__device__ __forceinline__ void grid_dependency_wait() { asm volatile("griddepcontrol.wait;\n" ::: "memory"); }
// A warpgroup's register budget, changed at run time (the producer gives registers to the consumers).
template <int N>
__device__ __forceinline__ void setmaxnreg_dec() {
    asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(N));
}
template <int N>
__device__ __forceinline__ void setmaxnreg_inc() {
    asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(N));
}
#endif  // PARO_SM90_DEVICE

}  // namespace paro::gpu
