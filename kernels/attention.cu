// Block-sparse INT8 attention over 64 x 64 tiles of the permuted sequence.
//
// One CTA = one 64-row query tile of one (batch, head); 4 warps, each owning 16 query rows.
// For every kept key tile of the row (CSR list, built once at plan load):
//   S = Q_i8 K_i8^T          mma.sync m16n8k32 s8 (int32 accumulate)
//   online softmax in fp32   (exp2 domain; scale folded into the Q/K scales)
//   P_i8 = round(127 * 2^(s - rowmax_tile(s)))  per row and tile: the tile's largest P maps to 127
//   O = O * beta + (P_i8 V_i8) * v_scale[tile][channel]                 mma.sync m16n8k32 s8
// where O and the row sum l are kept in units of the current tile's P scale, beta = 2^(rho_prev - rho)
// rescales them when the reference moves; the output is O / l.
// K and V^T tiles stream through shared memory with cp.async (3 stages); Q fragments stay
// in registers. The epilogue divides by the row sum and scatters each row to its original token
// (inverse permutation fused). mma.sync s8 is an sm_80 instruction that also runs on sm_90 and is
// the default everywhere; an sm_90a warpgroup-MMA (wgmma) variant of both products is built with
// -DPARO_WGMMA=ON (docs/runtime.md).
// Heads whose plan says pv_bits = 16 run attention_pv16_kernel instead (fp16 P and V, mma.m16n8k16
// with fp32 accumulation; see its comment); measured slower than INT8 PV on H100, so opt-in per head.
#include <cfloat>
#include <cstdlib>

#include "common.cuh"

namespace paro::gpu {

namespace {

constexpr int kAttnThreads = 128;
#if defined(PARO_WGMMA_PATH) && defined(__CUDA_ARCH__) && (__CUDA_ARCH__ >= 900) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
// The wgmma path needs more registers (125 at D 64, 208 at D 128 when allowed): cap it lower.
#ifndef PARO_D64_MIN_BLOCKS
#define PARO_D64_MIN_BLOCKS 3
#endif
#ifndef PARO_D128_MIN_BLOCKS
#define PARO_D128_MIN_BLOCKS 2
#endif
#endif
#ifndef PARO_D64_MIN_BLOCKS
#define PARO_D64_MIN_BLOCKS 4  // CTAs per SM the D = 64 kernel is register-capped for (4: 128 regs)
#endif
#ifndef PARO_D128_MIN_BLOCKS
#define PARO_D128_MIN_BLOCKS 3  // D = 128: 3 CTAs per SM (168 regs)
#endif
constexpr int kStages = 3;

__device__ __forceinline__ float ex2(float x) {
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
    return y;
}
#ifdef PARO_EXP_HALF
__device__ __forceinline__ uint32_t ex2_h2(uint32_t x) {  // two fp16 exponentials in one MUFU op
    uint32_t y;
    asm("ex2.approx.f16x2 %0, %1;" : "=r"(y) : "r"(x));
    return y;
}
#endif


#ifndef PARO_EXP_HALF
// Round a float in [0, 127.5) to the nearest integer and return it in the low byte.
__device__ __forceinline__ uint32_t f2u8(float x) { return __float_as_uint(x + 12582912.0f); }
__device__ __forceinline__ uint32_t pack4(float a, float b, float c, float d) {
    const uint32_t lo = __byte_perm(f2u8(a), f2u8(b), 0x0040);
    const uint32_t hi = __byte_perm(f2u8(c), f2u8(d), 0x0040);
    return __byte_perm(lo, hi, 0x5410);
}
#endif

__device__ __forceinline__ void mma_s8(int (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+r"(c[0]), "+r"(c[1]), "+r"(c[2]), "+r"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// ---- Hopper path (sm_90a): warpgroup MMA. The CTA's 4 warps are one warpgroup; A (Q or P')
// comes from registers in the same fragment layout as mma.m16n8k32, B (K or V^T) from shared memory
// in the no-swizzle "core matrix" layout (8 rows x 16 bytes contiguous, 128 B per core matrix), and
// the int32 accumulators come back in the same per-warp layout as mma.sync's, so the softmax code
// is shared by both paths.
#if defined(__CUDA_ARCH__) && (__CUDA_ARCH__ >= 900) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define PARO_WGMMA 1
#endif
// Opt-in (CMake -DPARO_WGMMA=ON): correct and tested, but as written (each warpgroup MMA waited for
// at once, nothing overlapped with it) it is slower than mma.sync on H100: 3.14 vs 2.25 ms at
// density 0.2, D 64 (bench/RESULTS.md). It pays only with FA3-style overlap, not written yet.
#if defined(PARO_WGMMA) && defined(PARO_WGMMA_PATH)
#define PARO_USE_WGMMA 1
#endif

#ifdef PARO_USE_WGMMA
// Descriptor of a K-major, no-swizzle B operand: lbo = bytes between core matrices along K,
// sbo = bytes between core matrices along N.
__device__ __forceinline__ uint64_t wgmma_desc(uint32_t smem_addr, uint32_t lbo, uint32_t sbo) {
    return uint64_t((smem_addr & 0x3FFFF) >> 4) | (uint64_t((lbo & 0x3FFFF) >> 4) << 16) |
           (uint64_t((sbo & 0x3FFFF) >> 4) << 32);
}
__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_wait0() { asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory"); }
__device__ __forceinline__ void fence_proxy_async() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }

// d[64 x 64] += a[64 x 32] (registers, s8) * B[32 x 64] (shared memory, s8), accumulators as
// d[j][e] = the mma.m16n8 C fragment of n-block j.
// ACC = false: d = a * b (the old contents of d are not read, so nothing but wgmma defines them and
// ptxas need not serialize); true: d += a * b.
template <bool ACC>
__device__ __forceinline__ void wgmma_s8_n64(int (&d)[8][4], const uint32_t (&a)[4], uint64_t desc) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %37, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n64k32.s32.s8.s8 "
        "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
        "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, "
        "{%32, %33, %34, %35}, %36, p;\n}\n"
        : "+r"(d[0][0]), "+r"(d[0][1]), "+r"(d[0][2]), "+r"(d[0][3]), "+r"(d[1][0]), "+r"(d[1][1]), "+r"(d[1][2]),
          "+r"(d[1][3]), "+r"(d[2][0]), "+r"(d[2][1]), "+r"(d[2][2]), "+r"(d[2][3]), "+r"(d[3][0]), "+r"(d[3][1]),
          "+r"(d[3][2]), "+r"(d[3][3]), "+r"(d[4][0]), "+r"(d[4][1]), "+r"(d[4][2]), "+r"(d[4][3]), "+r"(d[5][0]),
          "+r"(d[5][1]), "+r"(d[5][2]), "+r"(d[5][3]), "+r"(d[6][0]), "+r"(d[6][1]), "+r"(d[6][2]), "+r"(d[6][3]),
          "+r"(d[7][0]), "+r"(d[7][1]), "+r"(d[7][2]), "+r"(d[7][3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc), "n"(ACC ? 1 : 0));
}
#endif

__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t& r0, uint32_t& r1, uint32_t& r2, uint32_t& r3,
                                                  uint32_t a) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3)
                 : "r"(a));
}
// d += a * b, fp16 inputs, fp32 accumulators (the fp16-PV path).
__device__ __forceinline__ void mma_f16(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
__device__ __forceinline__ uint32_t f2h2(float lo, float hi) {  // one cvt.rn.f16x2.f32
    const __half2 v = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<const uint32_t*>(&v);
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t& r0, uint32_t& r1, uint32_t& r2, uint32_t& r3, const void* p) {
    const uint32_t a = static_cast<uint32_t>(__cvta_generic_to_shared(p));
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3)
                 : "r"(a));
}

__device__ __forceinline__ void cp_async16(uint32_t smem_addr, const void* gmem) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(smem_addr), "l"(gmem));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

template <int D>
struct AttnSmem {
    static constexpr int SK = D + 16;     // bytes per K row (16 B pad: conflict-free ldmatrix)
    static constexpr int SV = kTile + 16; // bytes per V^T row
    static constexpr int kBytes = kTile * SK;
    static constexpr int vBytes = D * SV;
    static constexpr int sBytes = D * 4;  // v scales of the tile
    static constexpr int stage = kBytes + vBytes + sBytes;
    static constexpr int total = kStages * stage;
    // wgmma path: K as core matrices [key / 8][d / 16] (8 keys x 16 bytes each; the next 8 keys
    // are D * 8 bytes on), V^T as [channel / 8][key / 16] (next 8 channels: 512 bytes on);
    // unpadded, so they fit in the padded regions above.
};

constexpr int kMagic = 0x4B400000;          // bits of 1.5 * 2^23: as_float(kMagic + x) = 1.5 * 2^23 + x
constexpr float kMagicF = 12582912.0f;      // for |x| < 2^22; int32 accumulators start at kMagic
constexpr uint32_t kOnes = 0x01010101u;     // int8 ones: P' . 1 = row sums on the tensor core

// S = Q K^T for the warp's 16 rows x 64 keys. mma.sync: accumulators start at the magic bias.
// wgmma: raw sums (the first k-step does not read the accumulators, so ptxas need not serialize),
// issued and committed here; the caller waits before reading them and softmax_pv adds the bias.
template <int D>
__device__ __forceinline__ void qk_product(const uint8_t* sk, int lane, const uint32_t (&qa)[D / 32][4],
                                           int (&acc)[8][4]) {
    using L = AttnSmem<D>;
#ifdef PARO_USE_WGMMA
    (void)lane;  // raw int32 sums here; softmax_pv adds the magic bias
    const uint32_t kbase = static_cast<uint32_t>(__cvta_generic_to_shared(sk));
    wgmma_fence();
    wgmma_s8_n64<false>(acc, qa[0], wgmma_desc(kbase, 128, (D * 8)));
#pragma unroll
    for (int kk = 1; kk < D / 32; ++kk) wgmma_s8_n64<true>(acc, qa[kk], wgmma_desc(kbase + kk * 256, 128, (D * 8)));
    wgmma_commit();
#else
#pragma unroll
    for (int j = 0; j < 8; ++j) {
        acc[j][0] = acc[j][1] = acc[j][2] = acc[j][3] = kMagic;
#pragma unroll
        for (int half = 0; half < D / 64; ++half) {
            uint32_t b0, b1, b2, b3;
            ldmatrix_x4(b0, b1, b2, b3, sk + (8 * j + (lane & 7)) * L::SK + half * 64 + (lane >> 3) * 16);
            mma_s8(acc[j], qa[2 * half], b0, b1);
            mma_s8(acc[j], qa[2 * half + 1], b2, b3);
        }
    }
#endif
}

// Everything after S for a warp's 16 query rows (thread: rows g and g + 8):
//   rho = tile row max (bounded below by running max - 64); p' = 127 * 2^(s - rho) in [0, 127]
//   P'_i8 -> O = O * beta + (P'_i8 V_i8) * v_scale,  l = l * beta + sum(P'_i8)  (both on tensor cores)
// O and l are in units of 2^rho / 127; beta = 2^(rho_prev - rho) moves them to the new unit.
template <int D, bool RAGGED>
__device__ __forceinline__ void softmax_pv(int (&acc)[8][4], const uint8_t* sv, const float* ss, float sc,
                                           int valid, int lane, float (&o)[D / 8][4], float& m0, float& m1,
                                           float& rho0, float& rho1, float& l0, float& l1) {
    using L = AttnSmem<D>;
    const int t = lane & 3;
#ifdef PARO_USE_WGMMA
#pragma unroll
    for (int j = 0; j < 8; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) acc[j][e] += kMagic;
#endif
    if (RAGGED) {  // keys past the end: far below any real score for the max, zeroed after exp
#pragma unroll
        for (int j = 0; j < 8; ++j)
#pragma unroll
            for (int e = 0; e < 4; ++e)
                if (8 * j + 2 * t + (e & 1) >= valid) acc[j][e] = kMagic - (1 << 22);
    }
    // Row max on the biased integers (monotonic in the score since sc > 0).
    int im0 = acc[0][0], im1 = acc[0][2];
#pragma unroll
    for (int j = 0; j < 8; ++j) {
        im0 = max(im0, max(acc[j][0], acc[j][1]));
        im1 = max(im1, max(acc[j][2], acc[j][3]));
    }
#pragma unroll
    for (int o2 = 1; o2 <= 2; o2 <<= 1) {
        im0 = max(im0, __shfl_xor_sync(0xffffffffu, im0, o2));
        im1 = max(im1, __shfl_xor_sync(0xffffffffu, im1, o2));
    }
    const float mx0 = (__int_as_float(im0) - kMagicF) * sc, mx1 = (__int_as_float(im1) - kMagicF) * sc;
    m0 = fmaxf(m0, mx0);
    m1 = fmaxf(m1, mx1);
    // The tile's own row max (its largest P quantizes to 127), never more than 2^64 below the running
    // max (such a tile contributes nothing measurable; the bound keeps beta <= 2^64).
    const float r0 = fmaxf(mx0, m0 - 64.f), r1 = fmaxf(mx1, m1 - 64.f);
    const float beta0 = ex2(rho0 - r0), beta1 = ex2(rho1 - r1);  // 0 on the first tile
    rho0 = r0;
    rho1 = r1;
    // p' = 2^(F * sc - bias) with F the biased score, bias = 1.5 * 2^23 * sc + rho - log2(127).
    const float kLog2_127 = 6.988684686772166f;
    const float bias0 = fmaf(kMagicF, sc, r0 - kLog2_127), bias1 = fmaf(kMagicF, sc, r1 - kLog2_127);
#ifdef PARO_EXP_HALF
    // Opt-in (-DPARO_EXP_HALF): the exponentials in half2 (ex2.approx.f16x2: two per MUFU
    // instruction) and the rounding to integers by adding 1.5 * 2^10 in half2 (the integer lands in
    // the low byte), then one byte permute per 4 values. Correct (same tests), but no faster on H100
    // (2.31 vs 2.29 ms at density 0.2, D 64): the MUFU pipe is not the limit.
    uint32_t h[8][2];  // [n-block][row g: keys 2t, 2t+1 | row g + 8: keys 2t, 2t+1], half2 bits
#pragma unroll
    for (int j = 0; j < 8; ++j) {
        const __half2 x01 = __floats2half2_rn(fmaf(__int_as_float(acc[j][0]), sc, -bias0),
                                              fmaf(__int_as_float(acc[j][1]), sc, -bias0));
        const __half2 x23 = __floats2half2_rn(fmaf(__int_as_float(acc[j][2]), sc, -bias1),
                                              fmaf(__int_as_float(acc[j][3]), sc, -bias1));
        h[j][0] = ex2_h2(*reinterpret_cast<const uint32_t*>(&x01));
        h[j][1] = ex2_h2(*reinterpret_cast<const uint32_t*>(&x23));
    }
    if (RAGGED) {
#pragma unroll
        for (int j = 0; j < 8; ++j) {  // low half: key 8j + 2t, high half: key 8j + 2t + 1
            if (8 * j + 2 * t >= valid) h[j][0] &= 0xFFFF0000u, h[j][1] &= 0xFFFF0000u;
            if (8 * j + 2 * t + 1 >= valid) h[j][0] &= 0x0000FFFFu, h[j][1] &= 0x0000FFFFu;
        }
    }
    const __half2 kRound = __floats2half2_rn(1536.f, 1536.f);
#pragma unroll
    for (int j = 0; j < 8; ++j)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
            const __half2 v = __hadd2(*reinterpret_cast<const __half2*>(&h[j][e]), kRound);
            h[j][e] = *reinterpret_cast<const uint32_t*>(&v);
        }
    // P' as INT8 A fragments (low byte of each half); keys within each 16 are in the order V^T was
    // shuffled into.
    uint32_t pa[2][4];
#pragma unroll
    for (int kc = 0; kc < 2; ++kc) {
        const int j = 4 * kc;
        pa[kc][0] = __byte_perm(h[j][0], h[j + 1][0], 0x6420);
        pa[kc][1] = __byte_perm(h[j][1], h[j + 1][1], 0x6420);
        pa[kc][2] = __byte_perm(h[j + 2][0], h[j + 3][0], 0x6420);
        pa[kc][3] = __byte_perm(h[j + 2][1], h[j + 3][1], 0x6420);
    }
#else
    float f[8][4];
#pragma unroll
    for (int j = 0; j < 8; ++j) {
        f[j][0] = ex2(fmaf(__int_as_float(acc[j][0]), sc, -bias0));
        f[j][1] = ex2(fmaf(__int_as_float(acc[j][1]), sc, -bias0));
        f[j][2] = ex2(fmaf(__int_as_float(acc[j][2]), sc, -bias1));
        f[j][3] = ex2(fmaf(__int_as_float(acc[j][3]), sc, -bias1));
    }
    if (RAGGED) {
#pragma unroll
        for (int j = 0; j < 8; ++j)
#pragma unroll
            for (int e = 0; e < 4; ++e)
                if (8 * j + 2 * t + (e & 1) >= valid) f[j][e] = 0.f;
    }
    // P' as INT8 A fragments; keys within each 16 are in the order V^T was shuffled into.
    uint32_t pa[2][4];
#pragma unroll
    for (int kc = 0; kc < 2; ++kc) {
        const int j = 4 * kc;
        pa[kc][0] = pack4(f[j][0], f[j][1], f[j + 1][0], f[j + 1][1]);
        pa[kc][1] = pack4(f[j][2], f[j][3], f[j + 1][2], f[j + 1][3]);
        pa[kc][2] = pack4(f[j + 2][0], f[j + 2][1], f[j + 3][0], f[j + 3][1]);
        pa[kc][3] = pack4(f[j + 2][2], f[j + 2][3], f[j + 3][2], f[j + 3][3]);
    }
#endif
    // Row sums of the quantized P' (the same values the PV product uses) on the tensor core.
    {
        int rs[4] = {kMagic, kMagic, kMagic, kMagic};
        mma_s8(rs, pa[0], kOnes, kOnes);
        mma_s8(rs, pa[1], kOnes, kOnes);
        l0 = fmaf(l0, beta0, __int_as_float(rs[0]) - kMagicF);
        l1 = fmaf(l1, beta1, __int_as_float(rs[2]) - kMagicF);
    }
#ifdef PARO_USE_WGMMA
    const uint32_t vbase = static_cast<uint32_t>(__cvta_generic_to_shared(sv));
#pragma unroll
    for (int hn = 0; hn < D / 64; ++hn) {  // 64 channels per warpgroup MMA
        int pv[8][4];
        wgmma_fence();
        wgmma_s8_n64<false>(pv, pa[0], wgmma_desc(vbase + hn * 8 * 512, 128, 512));
        wgmma_s8_n64<true>(pv, pa[1], wgmma_desc(vbase + hn * 8 * 512 + 256, 128, 512));
        wgmma_commit();
        wgmma_wait0();
#pragma unroll
        for (int j = 0; j < 8; ++j)
#pragma unroll
            for (int e = 0; e < 4; ++e) pv[j][e] += kMagic;
#pragma unroll
        for (int j = 0; j < 8; ++j) {
            const int nb8 = hn * 8 + j;
            const float2 vs = *reinterpret_cast<const float2*>(ss + 8 * nb8 + 2 * t);
            const float nx = -kMagicF * vs.x, ny = -kMagicF * vs.y;
            o[nb8][0] = fmaf(o[nb8][0], beta0, fmaf(__int_as_float(pv[j][0]), vs.x, nx));
            o[nb8][1] = fmaf(o[nb8][1], beta0, fmaf(__int_as_float(pv[j][1]), vs.y, ny));
            o[nb8][2] = fmaf(o[nb8][2], beta1, fmaf(__int_as_float(pv[j][2]), vs.x, nx));
            o[nb8][3] = fmaf(o[nb8][3], beta1, fmaf(__int_as_float(pv[j][3]), vs.y, ny));
        }
    }
#else
#pragma unroll
    for (int nb8 = 0; nb8 < D / 8; ++nb8) {
        uint32_t v0, v1, v2, v3;
        ldmatrix_x4(v0, v1, v2, v3, sv + (8 * nb8 + (lane & 7)) * L::SV + (lane >> 3) * 16);
        int pv[4] = {kMagic, kMagic, kMagic, kMagic};
        mma_s8(pv, pa[0], v0, v1);
        mma_s8(pv, pa[1], v2, v3);
        // (F - 1.5 * 2^23) * vs = F * vs + (-1.5 * 2^23 * vs): the int -> float conversion is one FFMA.
        const float2 vs = *reinterpret_cast<const float2*>(ss + 8 * nb8 + 2 * t);
        const float nx = -kMagicF * vs.x, ny = -kMagicF * vs.y;
        o[nb8][0] = fmaf(o[nb8][0], beta0, fmaf(__int_as_float(pv[0]), vs.x, nx));
        o[nb8][1] = fmaf(o[nb8][1], beta0, fmaf(__int_as_float(pv[1]), vs.y, ny));
        o[nb8][2] = fmaf(o[nb8][2], beta1, fmaf(__int_as_float(pv[2]), vs.x, nx));
        o[nb8][3] = fmaf(o[nb8][3], beta1, fmaf(__int_as_float(pv[3]), vs.y, ny));
    }
#endif
}

// One 64-key tile: S, then softmax_pv.
template <int D, bool RAGGED>
__device__ __forceinline__ void tile_step(const uint8_t* sk, const uint8_t* sv, const float* ss, float sc, int valid,
                                          int lane, const uint32_t (&qa)[D / 32][4], float (&o)[D / 8][4], float& m0,
                                          float& m1, float& rho0, float& rho1, float& l0, float& l1) {
    int acc[8][4];
    qk_product<D>(sk, lane, qa, acc);
#ifdef PARO_USE_WGMMA
    wgmma_wait0();
#endif
    softmax_pv<D, RAGGED>(acc, sv, ss, sc, valid, lane, o, m0, m1, rho0, rho1, l0, l1);
}

template <int D, typename TOut>
__global__ void __launch_bounds__(kAttnThreads, D == 64 ? PARO_D64_MIN_BLOCKS : PARO_D128_MIN_BLOCKS)
    attention_kernel(Shape s, PlanView plan, Quantized w, float sm_scale_log2, MutView out) {
    using L = AttnSmem<D>;
    extern __shared__ __align__(16) uint8_t smem[];
    const int r = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
    if (plan.pv16 && plan.pv16[h]) return;  // an fp16-PV head (attention_pv16_kernel does it)
    const size_t bh = size_t(b) * s.heads + h;
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, t = lane & 3;

    const uint32_t* rp = plan.row_ptr + size_t(h) * (s.nb + 1);
    const uint32_t beg = rp[r], n = rp[r + 1] - beg;
    const uint16_t* cols = plan.cols + beg;

    // Tile loads: every thread copies fixed 16-byte chunks, so its offsets are computed once here and
    // each tile costs a few cp.async with compile-time strides (no per-tile index math).
    constexpr int KCH = D / 16;                       // 16-byte chunks per K row
    constexpr int KIT = kTile * KCH / kAttnThreads;   // K chunks per thread (2 or 4)
    constexpr int KROWS = kAttnThreads / KCH;         // K rows covered per step
    constexpr int VIT = D * 4 / kAttnThreads;         // V^T chunks per thread (4 per 64-byte row)
    constexpr int VROWS = kAttnThreads / 4;
    const uint32_t smem_base = static_cast<uint32_t>(__cvta_generic_to_shared(smem));
#ifdef PARO_USE_WGMMA
    // Core-matrix layouts (see AttnSmem): K chunk (key, kc) at ((key / 8) * KCH + kc) * 128 + (key % 8) * 16,
    // V^T chunk (channel, part) at ((channel / 8) * 4 + part) * 128 + (channel % 8) * 16.
    constexpr int KSTEP = KROWS * D, VSTEP = VROWS * kTile;  // both advance whole 8-row groups
    const uint32_t k_so = (((tid / KCH) >> 3) * KCH + tid % KCH) * 128 + ((tid / KCH) & 7) * 16;
    const uint32_t v_so = L::kBytes + ((((tid >> 2) >> 3) * 4 + (tid & 3)) * 128 + ((tid >> 2) & 7) * 16);
#else
    constexpr int KSTEP = KROWS * L::SK, VSTEP = VROWS * L::SV;
    const uint32_t k_so = (tid / KCH) * L::SK + (tid % KCH) * 16;
    const uint32_t v_so = L::kBytes + (tid >> 2) * L::SV + (tid & 3) * 16;
#endif
    const uint32_t k_go = (tid / KCH) * D + (tid % KCH) * 16, v_go = (tid >> 2) * kTile + (tid & 3) * 16;
    const int8_t* k_head = w.k + bh * s.npad * D + k_go;
    const int8_t* v_head = w.vt + bh * vt_head_bytes(s.nb, D) + v_go;
    const float* vs_head = w.v_scale + bh * s.nb * D + tid * 4;
    auto load_tile = [&](int c, int stage) {
        const uint32_t s0 = smem_base + stage * L::stage;
        const int8_t* gk = k_head + c * (kTile * D);
        const int8_t* gv = v_head + c * (kTile * D);
#pragma unroll
        for (int it = 0; it < KIT; ++it) cp_async16(s0 + k_so + it * KSTEP, gk + it * KROWS * D);
#pragma unroll
        for (int it = 0; it < VIT; ++it) cp_async16(s0 + v_so + it * VSTEP, gv + it * VROWS * kTile);
        if (tid < D / 4) cp_async16(s0 + L::kBytes + L::vBytes + tid * 16, vs_head + c * D);
    };

    // Three-stage cp.async ring: tiles i + 1 and i + 2 are in flight while tile i is computed, and
    // one barrier per tile suffices (the stage refilled at iteration i was last read at i - 1).
    // Column indices run two tiles ahead of the loads and K scales one ahead of their use, so no
    // global load sits on the critical path.
    auto col = [&](uint32_t i) { return i < n ? int(cols[i]) : 0; };
    int c0 = col(0), c1 = col(1), c2 = col(2), c3 = col(3);  // tiles i, i+1, i+2, i+3
    float ks0 = 0.f, ks1 = 0.f;
    if (n > 0) {
        load_tile(c0, 0);
        ks0 = __ldg(w.k_scale + bh * s.nb + c0);
    }
    cp_async_commit();
    if (n > 1) {
        load_tile(c1, 1);
        ks1 = __ldg(w.k_scale + bh * s.nb + c1);
    }
    cp_async_commit();

    // Q fragments of this warp's 16 rows (A operand, row-major), straight from global memory.
    uint32_t qa[D / 32][4];
    {
        const int8_t* qw = w.q + (bh * s.npad + size_t(r) * kTile + warp * 16) * D;
#pragma unroll
        for (int kk = 0; kk < D / 32; ++kk) {
            qa[kk][0] = *reinterpret_cast<const uint32_t*>(qw + g * D + kk * 32 + t * 4);
            qa[kk][1] = *reinterpret_cast<const uint32_t*>(qw + (g + 8) * D + kk * 32 + t * 4);
            qa[kk][2] = *reinterpret_cast<const uint32_t*>(qw + g * D + kk * 32 + 16 + t * 4);
            qa[kk][3] = *reinterpret_cast<const uint32_t*>(qw + (g + 8) * D + kk * 32 + 16 + t * 4);
        }
    }
    const float qscale = w.q_scale[(bh * s.nb + r) * kQGroupsPerTile + warp] * sm_scale_log2;

    float o[D / 8][4];
#pragma unroll
    for (int j = 0; j < D / 8; ++j) o[j][0] = o[j][1] = o[j][2] = o[j][3] = 0.f;
    // Per row: running max m of the scores (log2 domain), and the reference rho of the last tile:
    // o and l are kept in units of 2^rho / 127 (see the loop), so no separate rescale by the
    // running max is needed and the final output is simply o / l.
    float m0 = -INFINITY, m1 = -INFINITY, rho0 = -INFINITY, rho1 = -INFINITY, l0 = 0.f, l1 = 0.f;

    for (uint32_t i = 0; i < n; ++i) {
        cp_async_wait<1>();  // tile i has landed (tile i + 1 may still be in flight)
#ifdef PARO_USE_WGMMA
        fence_proxy_async();  // make the cp.async writes visible to the tensor cores' async proxy
#endif
        __syncthreads();     // ...for every thread; and every thread is done with tile i - 1
        float ks2 = 0.f;
        if (i + 2 < n) {
            load_tile(c2, (i + 2) % kStages);
            ks2 = __ldg(w.k_scale + bh * s.nb + c2);
        }
        cp_async_commit();
        const int c4 = col(i + 4);
        const uint8_t* sk = smem + (i % kStages) * L::stage;
        const uint8_t* sv = sk + L::kBytes;
        const float* ss = reinterpret_cast<const float*>(sv + L::vBytes);
        const float sc = qscale * ks0;
        const int valid = s.tokens - c0 * kTile;  // keys of this tile inside the sequence
        // Two copies of the tile step: the ragged one (last key tile only) masks keys past the end.
        // A uniform branch instead of predicated selects on every element of every tile.
        if (valid < kTile)
            tile_step<D, true>(sk, sv, ss, sc, valid, lane, qa, o, m0, m1, rho0, rho1, l0, l1);
        else
            tile_step<D, false>(sk, sv, ss, sc, valid, lane, qa, o, m0, m1, rho0, rho1, l0, l1);
        c0 = c1;
        c1 = c2;
        c2 = c3;
        c3 = c4;
        ks0 = ks1;
        ks1 = ks2;
    }
    cp_async_wait<0>();

    // l already holds the full row sum in every thread of the row (the ones-mma sums all 64 keys).
    const float inv0 = l0 > 0.f ? 1.f / l0 : 0.f, inv1 = l1 > 0.f ? 1.f / l1 : 0.f;
    const int32_t* gather = plan.orders ? plan.gathers + size_t(plan.orders[h]) * s.tokens : nullptr;
    TOut* ob = static_cast<TOut*>(out.data) + b * out.sb + h * out.sh;
    const int p0 = r * kTile + warp * 16 + g, p1 = p0 + 8;
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

// ---- fp16-PV path: heads whose plan says pv_bits = 16 (paro_plan_set_pv_bits, the pattern file).
// S = Q_i8 K_i8^T exactly as above; then P = 2^(s - m) with m the running row max (fp32 FFMA + EX2),
// converted to fp16 two values per cvt.rn.f16x2.f32: the S accumulator fragments of n-blocks 2kc and
// 2kc + 1 are exactly the A fragment of mma.m16n8k16 for keys 16kc..16kc+15, so there is no
// shuffle, no integer packing and no per-tile P scale. V is fp16 as the prep kernel wrote it
// ([64][D] per tile, permuted, unquantized) and is read with ldmatrix.trans from an unpadded,
// XOR-swizzled shared tile; O = O * beta + P V with fp32 accumulation (mma.m16n8k16.f32.f16.f16.f32,
// accumulating straight into O), and the row sum l by the same MMA against a ones matrix, i.e. the
// sum of the rounded P the product used.
#ifndef PARO_D64_MIN_BLOCKS16
#define PARO_D64_MIN_BLOCKS16 4
#endif
#ifndef PARO_D128_MIN_BLOCKS16
#define PARO_D128_MIN_BLOCKS16 3
#endif
template <int D>
struct AttnSmem16 {
    static constexpr int SK = D + 16;  // bytes per K row (16 B pad, as AttnSmem)
    static constexpr int RV = D * 2;   // bytes per fp16 V row: no pad; 16-byte chunk c of key row r sits at c ^ (r & 7)
    static constexpr int kBytes = kTile * SK;
    static constexpr int vBytes = kTile * RV;
    static constexpr int stage = kBytes + vBytes;
    static constexpr int total = kStages * stage;  // D 64: 39936 B; D 128: 76800 B (3 CTAs per SM still fit)
};
constexpr uint32_t kOnesH2 = 0x3C003C00u;  // two fp16 ones

template <int D, bool RAGGED>
__device__ __forceinline__ void tile_step16(const uint8_t* sk, uint32_t sv, uint32_t v_xor, float sc, int valid,
                                            int lane, const uint32_t (&qa)[D / 32][4], float (&o)[D / 8][4],
                                            float& m0, float& m1, float& l0, float& l1) {
    using L = AttnSmem16<D>;
    const int t = lane & 3;
    int acc[8][4];
#pragma unroll
    for (int j = 0; j < 8; ++j) {
        acc[j][0] = acc[j][1] = acc[j][2] = acc[j][3] = kMagic;
#pragma unroll
        for (int half = 0; half < D / 64; ++half) {
            uint32_t b0, b1, b2, b3;
            ldmatrix_x4(b0, b1, b2, b3, sk + (8 * j + (lane & 7)) * L::SK + half * 64 + (lane >> 3) * 16);
            mma_s8(acc[j], qa[2 * half], b0, b1);
            mma_s8(acc[j], qa[2 * half + 1], b2, b3);
        }
    }
    if (RAGGED) {
#pragma unroll
        for (int j = 0; j < 8; ++j)
#pragma unroll
            for (int e = 0; e < 4; ++e)
                if (8 * j + 2 * t + (e & 1) >= valid) acc[j][e] = kMagic - (1 << 22);
    }
    int im0 = acc[0][0], im1 = acc[0][2];
#pragma unroll
    for (int j = 0; j < 8; ++j) {
        im0 = max(im0, max(acc[j][0], acc[j][1]));
        im1 = max(im1, max(acc[j][2], acc[j][3]));
    }
#pragma unroll
    for (int o2 = 1; o2 <= 2; o2 <<= 1) {
        im0 = max(im0, __shfl_xor_sync(0xffffffffu, im0, o2));
        im1 = max(im1, __shfl_xor_sync(0xffffffffu, im1, o2));
    }
    // Running max (log2 domain); O and l are kept in units of 2^m, beta = 2^(m_prev - m) <= 1
    // (0 on the first tile: m_prev = -inf).
    const float n0 = fmaxf(m0, (__int_as_float(im0) - kMagicF) * sc);
    const float n1 = fmaxf(m1, (__int_as_float(im1) - kMagicF) * sc);
    const float beta0 = ex2(m0 - n0), beta1 = ex2(m1 - n1);
    m0 = n0;
    m1 = n1;
    // p = 2^(F * sc - bias), F the biased score, bias = 1.5 * 2^23 * sc + m: p in [0, 1].
    const float bias0 = fmaf(kMagicF, sc, n0), bias1 = fmaf(kMagicF, sc, n1);
    float f[8][4];
#pragma unroll
    for (int j = 0; j < 8; ++j) {
        f[j][0] = ex2(fmaf(__int_as_float(acc[j][0]), sc, -bias0));
        f[j][1] = ex2(fmaf(__int_as_float(acc[j][1]), sc, -bias0));
        f[j][2] = ex2(fmaf(__int_as_float(acc[j][2]), sc, -bias1));
        f[j][3] = ex2(fmaf(__int_as_float(acc[j][3]), sc, -bias1));
    }
    if (RAGGED) {
#pragma unroll
        for (int j = 0; j < 8; ++j)
#pragma unroll
            for (int e = 0; e < 4; ++e)
                if (8 * j + 2 * t + (e & 1) >= valid) f[j][e] = 0.f;
    }
    uint32_t pa[4][4];  // A fragments of m16n8k16, keys 16kc .. 16kc + 15 in natural order
#pragma unroll
    for (int kc = 0; kc < 4; ++kc) {
        pa[kc][0] = f2h2(f[2 * kc][0], f[2 * kc][1]);
        pa[kc][1] = f2h2(f[2 * kc][2], f[2 * kc][3]);
        pa[kc][2] = f2h2(f[2 * kc + 1][0], f[2 * kc + 1][1]);
        pa[kc][3] = f2h2(f[2 * kc + 1][2], f[2 * kc + 1][3]);
    }
    {
        float rs[4] = {0.f, 0.f, 0.f, 0.f};
#pragma unroll
        for (int kc = 0; kc < 4; ++kc) mma_f16(rs, pa[kc], kOnesH2, kOnesH2);
        l0 = fmaf(l0, beta0, rs[0]);
        l1 = fmaf(l1, beta1, rs[2]);
    }
#pragma unroll
    for (int nb8 = 0; nb8 < D / 8; ++nb8) {
        o[nb8][0] *= beta0;
        o[nb8][1] *= beta0;
        o[nb8][2] *= beta1;
        o[nb8][3] *= beta1;
        // Lane l addresses key row l (+ 32) of channel chunk nb8; ldmatrix.trans hands each thread
        // keys (2t, 2t + 1) of channel g: the B fragment of m16n8k16.
        const uint32_t a = sv + ((uint32_t(nb8) * 16u) ^ v_xor);
        uint32_t v0, v1, v2, v3;
        ldmatrix_x4_trans(v0, v1, v2, v3, a);
        mma_f16(o[nb8], pa[0], v0, v1);
        mma_f16(o[nb8], pa[1], v2, v3);
        ldmatrix_x4_trans(v0, v1, v2, v3, a + 32 * L::RV);
        mma_f16(o[nb8], pa[2], v0, v1);
        mma_f16(o[nb8], pa[3], v2, v3);
    }
}

// LOW = true: one CTA per SM fewer (D 64: 3 CTAs at 168 registers instead of 4 at 128; D 128: 2 at
// 255 instead of 3 at 168), no register spills; picked at run time with PARO_PV16_LOW_OCCUPANCY=1 (for
// measurement only).
template <int D, typename TOut, bool LOW>
__global__ void __launch_bounds__(kAttnThreads, D == 64 ? PARO_D64_MIN_BLOCKS16 - (LOW ? 1 : 0)
                                                        : PARO_D128_MIN_BLOCKS16 - (LOW ? 1 : 0))
    attention_pv16_kernel(Shape s, PlanView plan, Quantized w, float sm_scale_log2, MutView out) {
    using L = AttnSmem16<D>;
    extern __shared__ __align__(16) uint8_t smem[];
    const int r = blockIdx.x, b = blockIdx.z;
    const int h = plan.head_map ? plan.head_map[blockIdx.y] : int(blockIdx.y);
    const size_t bh = size_t(b) * s.heads + h;
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, t = lane & 3;

    const uint32_t* rp = plan.row_ptr + size_t(h) * (s.nb + 1);
    const uint32_t beg = rp[r], n = rp[r + 1] - beg;
    const uint16_t* cols = plan.cols + beg;

    constexpr int KCH = D / 16;                       // 16-byte chunks per int8 K row
    constexpr int KIT = kTile * KCH / kAttnThreads;
    constexpr int KROWS = kAttnThreads / KCH;
    constexpr int VCH = D / 8;                        // 16-byte chunks per fp16 V row
    constexpr int VIT = kTile * VCH / kAttnThreads;   // 4 (D 64) or 8 (D 128)
    constexpr int VROWS = kAttnThreads / VCH;         // 16 or 8: a multiple of 8, so a thread's swizzle is fixed
    constexpr int KSTEP = KROWS * L::SK, VSTEP = VROWS * L::RV;
    const uint32_t smem_base = static_cast<uint32_t>(__cvta_generic_to_shared(smem));
    const uint32_t k_so = (tid / KCH) * L::SK + (tid % KCH) * 16;
    const int vrow = tid / VCH, vch = tid % VCH;
    const uint32_t v_so = L::kBytes + vrow * L::RV + ((vch ^ (vrow & 7)) * 16);
    const uint32_t k_go = (tid / KCH) * D + (tid % KCH) * 16;
    const int8_t* k_head = w.k + bh * s.npad * D + k_go;
    const uint8_t* v_head = reinterpret_cast<const uint8_t*>(w.vt + bh * vt_head_bytes(s.nb, D)) + tid * 16;
    auto load_tile = [&](int c, int stage) {
        const uint32_t s0 = smem_base + stage * L::stage;
        const int8_t* gk = k_head + c * (kTile * D);
        const uint8_t* gv = v_head + size_t(c) * (kTile * D * 2);
#pragma unroll
        for (int it = 0; it < KIT; ++it) cp_async16(s0 + k_so + it * KSTEP, gk + it * KROWS * D);
#pragma unroll
        for (int it = 0; it < VIT; ++it) cp_async16(s0 + v_so + it * VSTEP, gv + it * kAttnThreads * 16);
    };

    auto col = [&](uint32_t i) { return i < n ? int(cols[i]) : 0; };
    int c0 = col(0), c1 = col(1), c2 = col(2), c3 = col(3);
    float ks0 = 0.f, ks1 = 0.f;
    if (n > 0) {
        load_tile(c0, 0);
        ks0 = __ldg(w.k_scale + bh * s.nb + c0);
    }
    cp_async_commit();
    if (n > 1) {
        load_tile(c1, 1);
        ks1 = __ldg(w.k_scale + bh * s.nb + c1);
    }
    cp_async_commit();

    uint32_t qa[D / 32][4];
    {
        const int8_t* qw = w.q + (bh * s.npad + size_t(r) * kTile + warp * 16) * D;
#pragma unroll
        for (int kk = 0; kk < D / 32; ++kk) {
            qa[kk][0] = *reinterpret_cast<const uint32_t*>(qw + g * D + kk * 32 + t * 4);
            qa[kk][1] = *reinterpret_cast<const uint32_t*>(qw + (g + 8) * D + kk * 32 + t * 4);
            qa[kk][2] = *reinterpret_cast<const uint32_t*>(qw + g * D + kk * 32 + 16 + t * 4);
            qa[kk][3] = *reinterpret_cast<const uint32_t*>(qw + (g + 8) * D + kk * 32 + 16 + t * 4);
        }
    }
    const float qscale = w.q_scale[(bh * s.nb + r) * kQGroupsPerTile + warp] * sm_scale_log2;

    float o[D / 8][4];
#pragma unroll
    for (int j = 0; j < D / 8; ++j) o[j][0] = o[j][1] = o[j][2] = o[j][3] = 0.f;
    float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.f, l1 = 0.f;
    const uint32_t v_lane = L::kBytes + lane * L::RV, v_xor = uint32_t(lane & 7) * 16u;

    for (uint32_t i = 0; i < n; ++i) {
        cp_async_wait<1>();
        __syncthreads();
        float ks2 = 0.f;
        if (i + 2 < n) {
            load_tile(c2, (i + 2) % kStages);
            ks2 = __ldg(w.k_scale + bh * s.nb + c2);
        }
        cp_async_commit();
        const int c4 = col(i + 4);
        const uint32_t so = (i % kStages) * L::stage;
        const uint8_t* sk = smem + so;
        const uint32_t sv = smem_base + so + v_lane;
        const float sc = qscale * ks0;
        const int valid = s.tokens - c0 * kTile;
        if (valid < kTile)
            tile_step16<D, true>(sk, sv, v_xor, sc, valid, lane, qa, o, m0, m1, l0, l1);
        else
            tile_step16<D, false>(sk, sv, v_xor, sc, valid, lane, qa, o, m0, m1, l0, l1);
        c0 = c1;
        c1 = c2;
        c2 = c3;
        c3 = c4;
        ks0 = ks1;
        ks1 = ks2;
    }
    cp_async_wait<0>();

    const float inv0 = l0 > 0.f ? 1.f / l0 : 0.f, inv1 = l1 > 0.f ? 1.f / l1 : 0.f;
    const int32_t* gather = plan.orders ? plan.gathers + size_t(plan.orders[h]) * s.tokens : nullptr;
    TOut* ob = static_cast<TOut*>(out.data) + b * out.sb + h * out.sh;
    const int p0 = r * kTile + warp * 16 + g, p1 = p0 + 8;
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

template <int D, typename TOut, bool PV16>
cudaError_t attention_t(const Shape& s, const PlanView& plan, const Quantized& w, float sm_scale, MutView out,
                        int heads, cudaStream_t st) {
    constexpr int bytes = PV16 ? AttnSmem16<D>::total : AttnSmem<D>::total;
    static const bool low = [] {
        const char* e = std::getenv("PARO_PV16_LOW_OCCUPANCY");
        return e && e[0] == '1';
    }();
    auto kernel = !PV16 ? attention_kernel<D, TOut>
                  : low ? attention_pv16_kernel<D, TOut, true> : attention_pv16_kernel<D, TOut, false>;
    if (bytes > 48 * 1024) {  // per device; cheap enough to set on every call
        cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes);
        if (e != cudaSuccess) return e;
    }
    const dim3 grid(s.nb, heads, s.batch);
    kernel<<<grid, kAttnThreads, bytes, st>>>(s, plan, w, sm_scale * 1.4426950408889634f, out);
    return cudaGetLastError();
}

template <typename TOut, bool PV16>
cudaError_t attention_d(const Shape& s, const PlanView& plan, const Quantized& w, float sm_scale, MutView out,
                        int heads, cudaStream_t st) {
    return s.head_dim == 64 ? attention_t<64, TOut, PV16>(s, plan, w, sm_scale, out, heads, st)
                            : attention_t<128, TOut, PV16>(s, plan, w, sm_scale, out, heads, st);
}

template <typename TOut>
cudaError_t attention_heads(const Shape& s, const PlanView& plan, const Quantized& w, float sm_scale, MutView out,
                            cudaStream_t st) {
    // One launch per kind. The INT8-PV kernel runs over every head (its CTAs of fp16-PV heads return at
    // once; with no fp16-PV head it is launched exactly as before), the fp16-PV kernel only over the
    // fp16-PV heads (plan.head_map lists the INT8 ones first, then those).
    const int n16 = plan.head_map ? plan.n_pv16 : 0, n8 = s.heads - n16;
    if (n8 > 0) {
        const cudaError_t e = attention_d<TOut, false>(s, plan, w, sm_scale, out, s.heads, st);
        if (e != cudaSuccess) return e;
    }
    if (n16 > 0) {
        PlanView p16 = plan;
        p16.head_map += n8;
        return attention_d<TOut, true>(s, p16, w, sm_scale, out, n16, st);
    }
    return cudaSuccess;
}

}  // namespace

cudaError_t launch_attention(DType out_dt, const Shape& s, const PlanView& plan, const Quantized& w, float sm_scale,
                             MutView out, cudaStream_t st) {
    switch (out_dt) {
        case DType::f32: return attention_heads<float>(s, plan, w, sm_scale, out, st);
        case DType::f16: return attention_heads<__half>(s, plan, w, sm_scale, out, st);
        case DType::bf16: return attention_heads<__nv_bfloat16>(s, plan, w, sm_scale, out, st);
    }
    return cudaErrorInvalidValue;
}

}  // namespace paro::gpu
