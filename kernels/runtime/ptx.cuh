#pragma once
// PTX wrappers of the sm_80 instruction set the attention kernels use (the Hopper kernel too:
// its softmax and cp.async ring run on the same instructions): tensor-core MMA, ldmatrix,
// cp.async, ex2 and the float -> fp16 / u8 packing of P.
#include <cuda_fp16.h>

#include <cstdint>

namespace paro::gpu {

__device__ __forceinline__ float ex2(float x) {
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
    return y;
}
// ORDERED (here and in pack4, pack4_e4m3): the instruction that writes the result is volatile, so it
// stays below a preceding volatile wait (the Hopper kernel's wgmma wait, softmax.cuh pack_p8).
template <bool ORDERED = false>
__device__ __forceinline__ uint32_t f2h2(float lo, float hi) {  // one cvt.rn.f16x2.f32
    if constexpr (ORDERED) {
        uint32_t v;
        asm volatile("cvt.rn.f16x2.f32 %0, %1, %2;\n" : "=r"(v) : "f"(hi), "f"(lo));
        return v;
    }
    const __half2 v = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<const uint32_t*>(&v);
}
// Four floats in [0, 255.4375) rounded to integers (fp16 rounds 255.4375 up to 255.5, which then
// rounds to even, 256), packed as bytes: two cvt.rn.f16x2.f32, two half2 adds of 1024 (in
// [1024, 2048) an fp16 step is 1, so the integer lands in the low byte of each half), one byte
// permute: five instructions where four float magic-number adds and three permutes took seven (no
// faster on H100: the Hopper kernel is not bound by issue alone; see bench/RESULTS.md).
template <bool ORDERED = false>
__device__ __forceinline__ uint32_t pack4(float a, float b, float c, float d) {
    const __half2 k1024 = __half2half2(__ushort_as_half(0x6400));
    const __half2 ab = __hadd2(__floats2half2_rn(a, b), k1024), cd = __hadd2(__floats2half2_rn(c, d), k1024);
    const uint32_t lo = *reinterpret_cast<const uint32_t*>(&ab), hi = *reinterpret_cast<const uint32_t*>(&cd);
    if constexpr (ORDERED) {
        uint32_t packed;
        asm volatile("prmt.b32 %0, %1, %2, 0x6420;\n" : "=r"(packed) : "r"(lo), "r"(hi));
        return packed;
    }
    return __byte_perm(lo, hi, 0x6420);
}

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 890
// FP8 (e4m3) on sm_89 and later: four floats rounded to e4m3 (saturating at +-448), packed as bytes
// a, b, c, d from the low byte up; and d += a * b on e4m3 inputs with fp32 accumulators.
#define PARO_PACK4_E4M3                                                                                        \
    "{\n.reg .b16 l, h;\ncvt.rn.satfinite.e4m3x2.f32 l, %2, %1;\ncvt.rn.satfinite.e4m3x2.f32 h, %4, %3;\n" \
    "mov.b32 %0, {l, h};\n}\n"                                                                            \
        : "=r"(packed)                                                                                     \
        : "f"(a), "f"(b), "f"(c), "f"(d)
template <bool ORDERED = false>
__device__ __forceinline__ uint32_t pack4_e4m3(float a, float b, float c, float d) {
    uint32_t packed;  // cvt's first source lands in the upper byte
    if constexpr (ORDERED)
        asm volatile(PARO_PACK4_E4M3);
    else
        asm(PARO_PACK4_E4M3);
    return packed;
}
#undef PARO_PACK4_E4M3
__device__ __forceinline__ void mma_e4m3(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k32.row.col.f32.e4m3.e4m3.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
#endif

// c += a * b, int8 inputs (A unsigned when AU8: P'), int32 accumulators.
#define PARO_MMA_I8(TYPES)                                                                                  \
    asm volatile("mma.sync.aligned.m16n8k32.row.col.s32." TYPES ".s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, " \
                 "{%0,%1,%2,%3};\n"                                                                       \
                 : "+r"(c[0]), "+r"(c[1]), "+r"(c[2]), "+r"(c[3])                                           \
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1))
template <bool AU8 = false>
__device__ __forceinline__ void mma_i8(int (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    if constexpr (AU8)
        PARO_MMA_I8("u8.s8");
    else
        PARO_MMA_I8("s8.s8");
}
#undef PARO_MMA_I8

// d += a * b, fp16 inputs, fp32 accumulators.
__device__ __forceinline__ void mma_f16(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ void ldmatrix_x4_at(uint32_t& r0, uint32_t& r1, uint32_t& r2, uint32_t& r3, uint32_t a) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3)
                 : "r"(a));
}
__device__ __forceinline__ void ldmatrix_x4(uint32_t& r0, uint32_t& r1, uint32_t& r2, uint32_t& r3, const void* p) {
    ldmatrix_x4_at(r0, r1, r2, r3, static_cast<uint32_t>(__cvta_generic_to_shared(p)));
}

__device__ __forceinline__ void cp_async16(uint32_t smem_addr, const void* gmem) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(smem_addr), "l"(gmem));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

}  // namespace paro::gpu
