#pragma once
// The per-tile arithmetic of the INT8 attention kernels, shared by the sm_80 kernel (mma.sync,
// attention.cu) and the sm_90a kernel (warpgroup MMA, attention_sm90.cu). Both hold a warp's 16
// query rows x 64 keys of S in the mma.m16n8 accumulator layout: thread (g = lane / 4, t = lane % 4)
// owns rows g and g + 8, keys 8j + 2t and 8j + 2t + 1 of n-block j (acc[j][0..1] and acc[j][2..3]).
//
// Integers become floats through the 1.5 * 2^23 magic number: as_float(kMagic + x) = 1.5 * 2^23 + x
// for |x| < 2^22, so a biased int32 accumulator reads as a float with one FFMA to scale and unbias.
#include <cfloat>

#include "common.cuh"

namespace paro::gpu {

constexpr int kAttnThreads = 128;       // one warpgroup: 4 warps x 16 query rows
constexpr uint32_t kOnes = 0x01010101u; // int8 ones: P' . 1 = row sums on the tensor core

__device__ __forceinline__ float ex2(float x) {
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
    return y;
}
__device__ __forceinline__ uint32_t f2h2(float lo, float hi) {  // one cvt.rn.f16x2.f32
    const __half2 v = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<const uint32_t*>(&v);
}
// Four floats in [0, 255.4375) rounded to integers (fp16 rounds 255.4375 up to 255.5, which then
// rounds to even, 256), packed as bytes: two cvt.rn.f16x2.f32, two half2 adds of 1024 (in
// [1024, 2048) an fp16 step is 1, so the integer lands in the low byte of each half), one byte
// permute: five instructions where four float magic-number adds and three permutes took seven (no
// faster on H100: the Hopper kernel is not bound by issue alone; see bench/RESULTS.md).
__device__ __forceinline__ uint32_t pack4(float a, float b, float c, float d) {
    const __half2 k1024 = __half2half2(__ushort_as_half(0x6400));
    const __half2 ab = __hadd2(__floats2half2_rn(a, b), k1024), cd = __hadd2(__floats2half2_rn(c, d), k1024);
    return __byte_perm(*reinterpret_cast<const uint32_t*>(&ab), *reinterpret_cast<const uint32_t*>(&cd), 0x6420);
}

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

__device__ __forceinline__ void cp_async16(uint32_t smem_addr, const void* gmem) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(smem_addr), "l"(gmem));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

// Per query row (thread: rows g and g + 8): running max m of the scores (log2 domain), the
// reference rho of the last tile (INT8 PV: O and l are kept in units of 2^rho / 255) and the row sum l.
struct RowState {
    float m0 = -INFINITY, m1 = -INFINITY, rho0 = -INFINITY, rho1 = -INFINITY, l0 = 0.f, l1 = 0.f;
};

// The two halves of a tile's softmax that both PV precisions share (thread: rows g and g + 8).
// Row maxima of the scores (log2 domain), from the accumulators (plus BIAS: the biased integers)
// compared as integers: monotonic in the score since sc > 0. RAGGED: keys at or past `valid` get a
// value far below any real score (and p = 0 in tile_exp2).
template <bool RAGGED, int BIAS>
__device__ __forceinline__ void tile_row_max(const int (&acc)[8][4], float sc, int valid, int t, float& mx0,
                                             float& mx1) {
    constexpr int kMasked = kMagic - (1 << 22) - BIAS;
    auto key_value = [&](int j, int e) {
        return RAGGED && 8 * j + 2 * t + (e & 1) >= valid ? kMasked : acc[j][e];
    };
    int im0 = key_value(0, 0), im1 = key_value(0, 2);
#pragma unroll
    for (int j = 0; j < 8; ++j) {
        im0 = max(im0, max(key_value(j, 0), key_value(j, 1)));
        im1 = max(im1, max(key_value(j, 2), key_value(j, 3)));
    }
#pragma unroll
    for (int o2 = 1; o2 <= 2; o2 <<= 1) {
        im0 = max(im0, __shfl_xor_sync(0xffffffffu, im0, o2));
        im1 = max(im1, __shfl_xor_sync(0xffffffffu, im1, o2));
    }
    mx0 = (__int_as_float(im0 + BIAS) - kMagicF) * sc;
    mx1 = (__int_as_float(im1 + BIAS) - kMagicF) * sc;
}

// f = 2^(F * sc - bias) per score, F the biased score (one FFMA + EX2); masked keys give 0.
template <bool RAGGED, int BIAS>
__device__ __forceinline__ void tile_exp2(const int (&acc)[8][4], float sc, float bias0, float bias1, int valid,
                                          int t, float (&f)[8][4]) {
#pragma unroll
    for (int j = 0; j < 8; ++j) {
        f[j][0] = ex2(fmaf(__int_as_float(acc[j][0] + BIAS), sc, -bias0));
        f[j][1] = ex2(fmaf(__int_as_float(acc[j][1] + BIAS), sc, -bias0));
        f[j][2] = ex2(fmaf(__int_as_float(acc[j][2] + BIAS), sc, -bias1));
        f[j][3] = ex2(fmaf(__int_as_float(acc[j][3] + BIAS), sc, -bias1));
    }
    if (RAGGED) {
#pragma unroll
        for (int j = 0; j < 8; ++j)
#pragma unroll
            for (int e = 0; e < 4; ++e)
                if (8 * j + 2 * t + (e & 1) >= valid) f[j][e] = 0.f;
    }
}

// The softmax of one tile, from S to the unsigned 8-bit A fragments of P' for the PV product:
//   rho = the tile's row max rounded up to an integer (log2 domain; bounded below by the running
//   max - 64); p' = 255 * 2^(s - rho) in [0, 255], so the tile's largest P quantizes to 128..255;
//   l = l * beta + sum(P'_u8) (on the tensor core: the same rounded values the PV product uses),
// with beta = 2^(rho_prev - rho), an exact power of two, returned for the caller's O update. (Against
// 127 * 2^(s - tile max) in int8: 26-29% less error from P, bench/p_quant_error.py.) BIAS is what to
// add to the accumulators to get the biased integers (0 when they started at kMagic, kMagic when
// they are raw sums). RAGGED: keys at or past `valid` are masked (the last key tile of a ragged
// sequence).
template <bool RAGGED, int BIAS>
__device__ __forceinline__ void softmax_tile(const int (&acc)[8][4], float sc, int valid, int t, RowState& rs,
                                             float& beta0, float& beta1, uint32_t (&pa)[2][4]) {
    float mx0, mx1;
    tile_row_max<RAGGED, BIAS>(acc, sc, valid, t, mx0, mx1);
    rs.m0 = fmaxf(rs.m0, mx0);
    rs.m1 = fmaxf(rs.m1, mx1);
    // Never more than 2^64 below the running max (such a tile contributes nothing measurable; the
    // bound keeps beta <= 2^64).
    const float r0 = ceilf(fmaxf(mx0, rs.m0 - 64.f)), r1 = ceilf(fmaxf(mx1, rs.m1 - 64.f));
    beta0 = ex2(rs.rho0 - r0);  // 0 on the first tile
    beta1 = ex2(rs.rho1 - r1);
    rs.rho0 = r0;
    rs.rho1 = r1;
    // p' = 2^(F * sc - bias) with F the biased score, bias = 1.5 * 2^23 * sc + rho - log2(255) + guard.
    // The bias is rounded once, by up to 2^-24 of its magnitude, ~0.75 * sc: without the guard the
    // tile's largest P' could round past 255.4375 (see pack4) and wrap as a byte once sc (the score
    // step) exceeds ~0.003, i.e. for large Q and K. guard = 2 * sc + 1e-4 covers that and the row
    // max's own rounding (|rho| grows with sc, so the 2 * sc term covers it too); at ordinary scales
    // the largest P' still rounds to 255 (254.95 at sc 1e-4). The guard differs a little from tile to
    // tile (sc carries the tile's k scale), so tiles' weights differ by up to ln2 * 2 * |sc_a - sc_b|:
    // ~0.03% at sc 2e-4, ~0.7% at sc 5e-3, where INT8 QK's own error is several times larger.
    // (Exponentials in half2 were tried: ex2.approx.f16x2 is two MUFU operations on sm_90, so they
    // saved nothing.)
    const float kLog2_255 = 7.994353436858858f;
    const float guard = fmaf(2.f, sc, 1e-4f) - kLog2_255;
    const float bias0 = fmaf(kMagicF, sc, r0 + guard), bias1 = fmaf(kMagicF, sc, r1 + guard);
    float f[8][4];
    tile_exp2<RAGGED, BIAS>(acc, sc, bias0, bias1, valid, t, f);
    // P' as u8 A fragments of m16n8k32 (the wgmma register-A layout is the same); keys within each
    // 16 are in the order V^T was shuffled into (prep.cu).
#pragma unroll
    for (int kc = 0; kc < 2; ++kc) {
        const int j = 4 * kc;
        pa[kc][0] = pack4(f[j][0], f[j][1], f[j + 1][0], f[j + 1][1]);
        pa[kc][1] = pack4(f[j][2], f[j][3], f[j + 1][2], f[j + 1][3]);
        pa[kc][2] = pack4(f[j + 2][0], f[j + 2][1], f[j + 3][0], f[j + 3][1]);
        pa[kc][3] = pack4(f[j + 2][2], f[j + 2][3], f[j + 3][2], f[j + 3][3]);
    }
    int sums[4] = {0, 0, 0, 0};  // from zero (no constants to load); two conversions per tile are cheap
    mma_i8<true>(sums, pa[0], kOnes, kOnes);
    mma_i8<true>(sums, pa[1], kOnes, kOnes);
    rs.l0 = fmaf(rs.l0, beta0, __int2float_rn(sums[0]));
    rs.l1 = fmaf(rs.l1, beta1, __int2float_rn(sums[2]));
}

// d += a * b, fp16 inputs, fp32 accumulators.
__device__ __forceinline__ void mma_f16(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
constexpr uint32_t kOnesH2 = 0x3C003C00u;  // two fp16 ones
// The fp16-PV softmax keeps O and l in units of 2^m with m a lazily updated row maximum: m moves
// only when a tile's maximum exceeds it by more than kLazyMax (log2 units), so p <= 2^kLazyMax
// (fine in fp16) and most tiles need no rescale of O (FlashAttention-4's trick).
constexpr float kLazyMax = 8.f;

// The fp16-PV softmax of one tile: p = 2^(s - m) as the fp16 A fragments of mma.m16n8k16 (the S
// fragments of n-blocks 2kc and 2kc + 1 are exactly the A fragment of keys 16kc .. 16kc + 15: no
// shuffle, no per-tile scale), l = l * beta + sum(p) (on the tensor core, of the rounded values), and
// beta = 2^(m_prev - m) returned for the caller's O rescale (1 when m did not move, 0 on the first
// tile). BIAS and RAGGED as in softmax_tile.
template <bool RAGGED, int BIAS>
__device__ __forceinline__ void softmax_tile16(const int (&acc)[8][4], float sc, int valid, int t, RowState& rs,
                                               float& beta0, float& beta1, uint32_t (&pa)[4][4]) {
    float mx0, mx1;
    tile_row_max<RAGGED, BIAS>(acc, sc, valid, t, mx0, mx1);
    const float n0 = mx0 > rs.m0 + kLazyMax ? mx0 : rs.m0, n1 = mx1 > rs.m1 + kLazyMax ? mx1 : rs.m1;
    beta0 = n0 == rs.m0 ? 1.f : ex2(rs.m0 - n0);
    beta1 = n1 == rs.m1 ? 1.f : ex2(rs.m1 - n1);
    rs.m0 = n0;
    rs.m1 = n1;
    // p = 2^(F * sc - bias), F the biased score, bias = 1.5 * 2^23 * sc + m.
    const float bias0 = fmaf(kMagicF, sc, n0), bias1 = fmaf(kMagicF, sc, n1);
    float f[8][4];
    tile_exp2<RAGGED, BIAS>(acc, sc, bias0, bias1, valid, t, f);
#pragma unroll
    for (int kc = 0; kc < 4; ++kc) {
        pa[kc][0] = f2h2(f[2 * kc][0], f[2 * kc][1]);
        pa[kc][1] = f2h2(f[2 * kc][2], f[2 * kc][3]);
        pa[kc][2] = f2h2(f[2 * kc + 1][0], f[2 * kc + 1][1]);
        pa[kc][3] = f2h2(f[2 * kc + 1][2], f[2 * kc + 1][3]);
    }
    float sums[4] = {0.f, 0.f, 0.f, 0.f};
#pragma unroll
    for (int kc = 0; kc < 4; ++kc) mma_f16(sums, pa[kc], kOnesH2, kOnesH2);
    rs.l0 = fmaf(rs.l0, beta0, sums[0]);
    rs.l1 = fmaf(rs.l1, beta1, sums[2]);
}

// O = O * beta + (P'_u8 V_i8) * v_scale for one 8-channel block (pv: its accumulator fragment,
// plus BIAS as in softmax_tile; vs: the v scales of channels 2t, 2t + 1 and their products with
// -1.5 * 2^23, as the prep kernel stores them: Quantized::v_scale).
// (F - 1.5 * 2^23) * vs = F * vs + (-1.5 * 2^23 * vs): the int -> float conversion is one FFMA.
template <int BIAS>
__device__ __forceinline__ void o_update(float (&o)[4], const int (&pv)[4], float4 vs, float beta0, float beta1) {
    o[0] = fmaf(o[0], beta0, fmaf(__int_as_float(pv[0] + BIAS), vs.x, vs.z));
    o[1] = fmaf(o[1], beta0, fmaf(__int_as_float(pv[1] + BIAS), vs.y, vs.w));
    o[2] = fmaf(o[2], beta1, fmaf(__int_as_float(pv[2] + BIAS), vs.x, vs.z));
    o[3] = fmaf(o[3], beta1, fmaf(__int_as_float(pv[3] + BIAS), vs.y, vs.w));
}

// Q fragments of the warp's 16 rows (m16n8k32 A operand, row-major), straight from global memory.
template <int D>
__device__ __forceinline__ void load_q_fragments(const int8_t* qw, int g, int t, uint32_t (&qa)[D / 32][4]) {
#pragma unroll
    for (int kk = 0; kk < D / 32; ++kk) {
        qa[kk][0] = *reinterpret_cast<const uint32_t*>(qw + g * D + kk * 32 + t * 4);
        qa[kk][1] = *reinterpret_cast<const uint32_t*>(qw + (g + 8) * D + kk * 32 + t * 4);
        qa[kk][2] = *reinterpret_cast<const uint32_t*>(qw + g * D + kk * 32 + 16 + t * 4);
        qa[kk][3] = *reinterpret_cast<const uint32_t*>(qw + (g + 8) * D + kk * 32 + 16 + t * 4);
    }
}

// Epilogue: O / l for the thread's rows (permuted positions p0 = first row of the thread, p0 + 8),
// each written to its original token (the inverse permutation, fused).
template <int D, typename TOut>
__device__ __forceinline__ void store_rows(const Shape& s, const PlanView& plan, const MutView& out, int b, int h,
                                           int p0, int t, const float (&o)[D / 8][4], float l0, float l1) {
    const float inv0 = l0 > 0.f ? 1.f / l0 : 0.f, inv1 = l1 > 0.f ? 1.f / l1 : 0.f;
    const int32_t* gather = plan.orders ? plan.gathers + size_t(plan.orders[h]) * s.tokens : nullptr;
    TOut* ob = static_cast<TOut*>(out.data) + b * out.sb + h * out.sh;
    const int p1 = p0 + 8;
    if (p0 < s.tokens) {
        TOut* row = ob + int64_t(gather ? gather[p0] : p0) * out.st;
#pragma unroll
        for (int nb8 = 0; nb8 < D / 8; ++nb8) Elem<TOut>::store2(row + 8 * nb8 + 2 * t, o[nb8][0] * inv0, o[nb8][1] * inv0);
    }
    if (p1 < s.tokens) {
        TOut* row = ob + int64_t(gather ? gather[p1] : p1) * out.st;
#pragma unroll
        for (int nb8 = 0; nb8 < D / 8; ++nb8) Elem<TOut>::store2(row + 8 * nb8 + 2 * t, o[nb8][2] * inv1, o[nb8][3] * inv1);
    }
}

// Launches an attention kernel over (query tile, head, batch) with `bytes` of dynamic shared memory
// (opting in above 48 KB; per device, cheap enough to set on every call); the launch's error.
template <typename Kernel>
cudaError_t launch_row_tiles(Kernel kernel, int bytes, const Shape& s, int heads, const PlanView& plan,
                             const Quantized& w, float sm_scale, MutView out, cudaStream_t st) {
    if (bytes > 48 * 1024) {
        const cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes);
        if (e != cudaSuccess) return e;
    }
    const dim3 grid(s.nb, heads, s.batch);
    kernel<<<grid, kAttnThreads, bytes, st>>>(s, plan, w, sm_scale * 1.4426950408889634f, out);  // log2(e)
    return cudaGetLastError();
}

}  // namespace paro::gpu
