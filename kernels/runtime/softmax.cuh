#pragma once
// The online softmax of one 64-key tile, from the QK^T accumulators to the A fragments of P for the
// PV product, in each P format: INT8 P' (u8 per tile and row, with the exponent guard), FP8 P'
// (e4m3, the same per-tile reference) and fp16 P.
// Shared by the sm_80 main loop (pv_sm80.cuh) and the Hopper kernel (attention_sm90.cu). Both hold
// a warp's 16 query rows x 64 keys of S in the mma.m16n8 accumulator layout: thread (g = lane / 4,
// t = lane % 4) owns rows g and g + 8, keys 8j + 2t and 8j + 2t + 1 of n-block j (acc[j][0..1] and
// acc[j][2..3]).
//
// Integers become floats through the 1.5 * 2^23 magic number: as_float(kMagic + x) = 1.5 * 2^23 + x
// for |x| < 2^22, so a biased int32 accumulator (INT8 QK) reads as a float with one FFMA to scale
// and unbias; 16-bit QK's fp32 accumulators are read as they are (the same functions, by type).
#include <cfloat>
#include <type_traits>

#include "common.cuh"
#include "ptx.cuh"

namespace paro::gpu {

constexpr uint32_t kOnes = 0x01010101u;      // int8 ones: P' . 1 = row sums on the tensor core
constexpr uint32_t kOnesE4M3 = 0x38383838u;  // e4m3 ones

// Per query row (thread: rows g and g + 8): running max m of the scores (log2 domain), the
// reference rho of the last tile (INT8 PV: O and l are kept in units of 2^rho / 255) and the row sum l.
struct RowState {
    float m0 = -INFINITY, m1 = -INFINITY, rho0 = -INFINITY, rho1 = -INFINITY, l0 = 0.f, l1 = 0.f;
};

// The score step of a tile for the thread's two rows: the log2-domain score of one unit of the int32
// accumulator (the row's Q scale x the tile's K scale x softmax scale x log2 e; positive).
struct ScoreStep {
    float row0, row1;
};

// A score accumulator as the float the exponentials' FFMA reads, and that float's offset in
// accumulator units: INT8 QK's int32 sums biased through kMagic (BIAS: what to add to get the biased
// integers), 16-bit QK's fp32 sums as they are.
template <int BIAS>
__device__ __forceinline__ float score_float(int a) {
    return __int_as_float(a + BIAS);
}
template <int BIAS>
__device__ __forceinline__ float score_float(float a) {
    return a;
}
template <typename Acc>
constexpr float kScoreOffset = std::is_same_v<Acc, int> ? kMagicF : 0.f;

// The two halves of a tile's softmax that every P format shares (thread: rows g and g + 8).
// Row maxima of the scores (log2 domain), from the accumulators (plus BIAS: the biased integers)
// compared as integers: monotonic in the score since each row's step is positive. RAGGED: keys at
// or past `valid` get a value far below any real score (and p = 0 in tile_exp2).
template <bool RAGGED, int BIAS>
__device__ __forceinline__ void tile_row_max(const int (&acc)[8][4], ScoreStep sc, int valid, int t, float& mx0,
                                             float& mx1) {
    constexpr int kMasked = kMagic - (1 << 22) - BIAS;
    auto key_value = [&](int j, int e) {
        return RAGGED && 8 * j + 2 * t + (e & 1) >= valid ? kMasked : acc[j][e];
    };
    // Three-input maxima: one instruction per two keys on sm_90 (VIMNMX3), emulated elsewhere.
    int im0 = max(key_value(0, 0), key_value(0, 1)), im1 = max(key_value(0, 2), key_value(0, 3));
#pragma unroll
    for (int j = 1; j < 8; ++j) {
        im0 = __vimax3_s32(im0, key_value(j, 0), key_value(j, 1));
        im1 = __vimax3_s32(im1, key_value(j, 2), key_value(j, 3));
    }
#pragma unroll
    for (int o2 = 1; o2 <= 2; o2 <<= 1) {
        im0 = max(im0, __shfl_xor_sync(0xffffffffu, im0, o2));
        im1 = max(im1, __shfl_xor_sync(0xffffffffu, im1, o2));
    }
    mx0 = (__int_as_float(im0 + BIAS) - kMagicF) * sc.row0;
    mx1 = (__int_as_float(im1 + BIAS) - kMagicF) * sc.row1;
}
// The same from fp32 accumulators (16-bit QK).
template <bool RAGGED, int BIAS>
__device__ __forceinline__ void tile_row_max(const float (&acc)[8][4], ScoreStep sc, int valid, int t, float& mx0,
                                             float& mx1) {
    auto key_value = [&](int j, int e) { return RAGGED && 8 * j + 2 * t + (e & 1) >= valid ? -INFINITY : acc[j][e]; };
    float m0 = fmaxf(key_value(0, 0), key_value(0, 1)), m1 = fmaxf(key_value(0, 2), key_value(0, 3));
#pragma unroll
    for (int j = 1; j < 8; ++j) {
        m0 = fmaxf(m0, fmaxf(key_value(j, 0), key_value(j, 1)));
        m1 = fmaxf(m1, fmaxf(key_value(j, 2), key_value(j, 3)));
    }
#pragma unroll
    for (int o2 = 1; o2 <= 2; o2 <<= 1) {
        m0 = fmaxf(m0, __shfl_xor_sync(0xffffffffu, m0, o2));
        m1 = fmaxf(m1, __shfl_xor_sync(0xffffffffu, m1, o2));
    }
    mx0 = m0 * sc.row0;
    mx1 = m1 * sc.row1;
}

// f = 2^(F * sc - bias) per score, F the score as a float (score_float; one FFMA + EX2); masked keys give 0.
// (A share of the exponentials by polynomial on the FMA pipe, FlashAttention-4's trick, measured 2-15%
// slower at D 64 on H200: the issue slots it costs are what the kernel is short of.)
template <bool RAGGED, int BIAS, typename Acc>
__device__ __forceinline__ void tile_exp2(const Acc (&acc)[8][4], ScoreStep sc, float bias0, float bias1, int valid,
                                          int t, float (&f)[8][4]) {
#pragma unroll
    for (int j = 0; j < 8; ++j) {
        f[j][0] = ex2(fmaf(score_float<BIAS>(acc[j][0]), sc.row0, -bias0));
        f[j][1] = ex2(fmaf(score_float<BIAS>(acc[j][1]), sc.row0, -bias0));
        f[j][2] = ex2(fmaf(score_float<BIAS>(acc[j][2]), sc.row1, -bias1));
        f[j][3] = ex2(fmaf(score_float<BIAS>(acc[j][3]), sc.row1, -bias1));
    }
    if (RAGGED) {
#pragma unroll
        for (int j = 0; j < 8; ++j)
#pragma unroll
            for (int e = 0; e < 4; ++e)
                if (8 * j + 2 * t + (e & 1) >= valid) f[j][e] = 0.f;
    }
}

// The softmax of one tile, from S to the 8-bit A fragments of P' for the PV product (FP8: e4m3,
// else unsigned integers):
//   rho = the tile's row max rounded up to an integer (log2 domain; bounded below by the running
//   max - 64); INT8: p' = 255 * 2^(s - rho) in [0, 255], so the tile's largest P quantizes to
//   128..255; FP8: p' = 256 * 2^(s - rho) in [0, 256], e4m3 keeping 3 mantissa bits down to
//   2^-6 and subnormals to 2^-9 (relative to the tile max: 2^-14 and 2^-17);
//   l = l * beta + sum(P') (on the tensor core: the same rounded values the PV product uses),
// with beta = 2^(rho_prev - rho), an exact power of two, returned for the caller's O update. (Against
// 127 * 2^(s - tile max) in int8: 26-29% less error from P, bench/p_quant_error.py.) BIAS is what to
// add to the accumulators to get the biased integers (0 when they started at kMagic, kMagic when
// they are raw sums; unused for fp32 accumulators). RAGGED: keys at or past `valid` are masked (the
// last key tile of a ragged sequence). In two halves, so that a caller can wait in between:
// softmax_tile_8bit_exp up to the values of P' (f, fp32), then pack_p8; softmax_tile_8bit runs both.
template <bool RAGGED, int BIAS, bool FP8 = false, typename Acc>
__device__ __forceinline__ void softmax_tile_8bit_exp(const Acc (&acc)[8][4], ScoreStep sc, int valid, int t,
                                                      RowState& rs, float& beta0, float& beta1, float (&f)[8][4]) {
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
    // p' = 2^(F * sc - bias) with F the score as a float, bias = offset * sc + rho - log2(255) + guard
    // (offset: kScoreOffset, 1.5 * 2^23 for the biased integers).
    // The bias is rounded once, by up to 2^-24 of its magnitude, ~0.75 * sc: without the guard the
    // tile's largest P' could round past 255.4375 (see pack4) and wrap as a byte once sc (the score
    // step) exceeds ~0.003, i.e. for large Q and K. guard = 2 * sc + 1e-4 covers that and the row
    // max's own rounding (|rho| grows with sc, so the 2 * sc term covers it too); at ordinary scales
    // the largest P' still rounds to 255 (254.95 at sc 1e-4). The guard differs a little from tile to
    // tile (sc carries the tile's k scale), so a row's tiles' weights differ by up to
    // ln2 * 2 * |sc_a - sc_b|: ~0.03% at sc 2e-4, ~0.7% at sc 5e-3, where INT8 QK's own error is
    // several times larger.
    // (Exponentials in half2 were tried: ex2.approx.f16x2 is two MUFU operations on sm_90, so they
    // saved nothing.) FP8 needs no guard: its conversion saturates at 448, far above 256. fp32
    // accumulators (16-bit QK) have no biased term: their guard covers the rounding of rho and of the
    // row max only (2^-22 |rho|), so the tiles' weights are not skewed by their k scales.
    const float kLog2_255 = 7.994353436858858f;
    constexpr bool kBiased = std::is_same_v<Acc, int>;
    const float guard0 = FP8 ? -8.f : (kBiased ? fmaf(2.f, sc.row0, 1e-4f) : fmaf(0x1p-22f, fabsf(r0), 1e-4f)) - kLog2_255;
    const float guard1 = FP8 ? -8.f : (kBiased ? fmaf(2.f, sc.row1, 1e-4f) : fmaf(0x1p-22f, fabsf(r1), 1e-4f)) - kLog2_255;
    const float bias0 = fmaf(kScoreOffset<Acc>, sc.row0, r0 + guard0), bias1 = fmaf(kScoreOffset<Acc>, sc.row1, r1 + guard1);
    tile_exp2<RAGGED, BIAS>(acc, sc, bias0, bias1, valid, t, f);
}

// P' as 8-bit A fragments of m16n8k32 (the wgmma register-A layout is the same; keys within each 16
// are in the order V^T was shuffled into, prep.cu), and l = l * beta + sum(P'). ORDERED: each
// fragment written by a volatile instruction (pack4), so none moves above a preceding wgmma wait:
// the Hopper kernel writes them straight into the registers the previous tile's PV read.
template <bool FP8 = false, bool ORDERED = false>
__device__ __forceinline__ void pack_p8(const float (&f)[8][4], float beta0, float beta1, RowState& rs,
                                        uint32_t (&pa)[2][4]) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 890
    static_assert(!FP8, "FP8 P' needs e4m3 conversions and MMA: sm_89 or later");
#endif
    const auto pack = [](float a, float b, float c, float d) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 890
        if constexpr (FP8) return pack4_e4m3<ORDERED>(a, b, c, d);
#endif
        return pack4<ORDERED>(a, b, c, d);
    };
#pragma unroll
    for (int kc = 0; kc < 2; ++kc) {
        const int j = 4 * kc;
        pa[kc][0] = pack(f[j][0], f[j][1], f[j + 1][0], f[j + 1][1]);
        pa[kc][1] = pack(f[j][2], f[j][3], f[j + 1][2], f[j + 1][3]);
        pa[kc][2] = pack(f[j + 2][0], f[j + 2][1], f[j + 3][0], f[j + 3][1]);
        pa[kc][3] = pack(f[j + 2][2], f[j + 2][3], f[j + 3][2], f[j + 3][3]);
    }
    if constexpr (FP8) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 890
        float sums[4] = {0.f, 0.f, 0.f, 0.f};
        mma_e4m3(sums, pa[0], kOnesE4M3, kOnesE4M3);
        mma_e4m3(sums, pa[1], kOnesE4M3, kOnesE4M3);
        rs.l0 = fmaf(rs.l0, beta0, sums[0]);
        rs.l1 = fmaf(rs.l1, beta1, sums[2]);
#endif
    } else {
        int sums[4] = {0, 0, 0, 0};  // from zero (no constants to load); two conversions per tile are cheap
        mma_i8<true>(sums, pa[0], kOnes, kOnes);
        mma_i8<true>(sums, pa[1], kOnes, kOnes);
        rs.l0 = fmaf(rs.l0, beta0, __int2float_rn(sums[0]));
        rs.l1 = fmaf(rs.l1, beta1, __int2float_rn(sums[2]));
    }
}

template <bool RAGGED, int BIAS, bool FP8 = false>
__device__ __forceinline__ void softmax_tile_8bit(const int (&acc)[8][4], ScoreStep sc, int valid, int t, RowState& rs,
                                                  float& beta0, float& beta1, uint32_t (&pa)[2][4]) {
    float f[8][4];
    softmax_tile_8bit_exp<RAGGED, BIAS, FP8>(acc, sc, valid, t, rs, beta0, beta1, f);
    pack_p8<FP8>(f, beta0, beta1, rs, pa);
}

constexpr uint32_t kOnesH2 = 0x3C003C00u;  // two fp16 ones
// The fp16-PV softmax keeps O and l in units of 2^m with m a lazily updated row maximum: m moves
// only when a tile's maximum exceeds it by more than kLazyMax (log2 units), so p <= 2^kLazyMax
// (fine in fp16) and most tiles need no rescale of O (FlashAttention-4's trick).
constexpr float kLazyMax = 8.f;

// x *= the scale of its row, for a thread's values in the mma C layout: row g (elements 0 and 1 of each
// n-block of 8) by b0, row g + 8 (elements 2 and 3) by b1. P and O on a moved row max.
template <int N>
__device__ __forceinline__ void scale_rows(float (&x)[N][4], float b0, float b1) {
#pragma unroll
    for (int j = 0; j < N; ++j) {
        x[j][0] *= b0;
        x[j][1] *= b0;
        x[j][2] *= b1;
        x[j][3] *= b1;
    }
}

// The fp16-PV softmax of one tile: p = 2^(s - m) as the fp16 A fragments of mma.m16n8k16 (the S
// fragments of n-blocks 2kc and 2kc + 1 are exactly the A fragment of keys 16kc .. 16kc + 15: no
// shuffle, no per-tile scale), l = l * beta + sum(p) (on the tensor core, of the rounded values), and
// beta = 2^(m_prev - m) returned for the caller's O rescale (1 when m did not move, 0 on the first
// tile). BIAS and RAGGED as in softmax_tile_8bit, and so are the halves: softmax_tile_fp16_exp, then
// pack_p16.
template <bool RAGGED, int BIAS, typename Acc>
__device__ __forceinline__ void softmax_tile_fp16_exp(const Acc (&acc)[8][4], ScoreStep sc, int valid, int t,
                                                      RowState& rs, float& beta0, float& beta1, float (&f)[8][4]) {
    float mx0, mx1;
    tile_row_max<RAGGED, BIAS>(acc, sc, valid, t, mx0, mx1);
    const float n0 = mx0 > rs.m0 + kLazyMax ? mx0 : rs.m0, n1 = mx1 > rs.m1 + kLazyMax ? mx1 : rs.m1;
    beta0 = n0 == rs.m0 ? 1.f : ex2(rs.m0 - n0);
    beta1 = n1 == rs.m1 ? 1.f : ex2(rs.m1 - n1);
    rs.m0 = n0;
    rs.m1 = n1;
    // p = 2^(F * sc - bias), F the score as a float, bias = offset * sc + m.
    const float bias0 = fmaf(kScoreOffset<Acc>, sc.row0, n0), bias1 = fmaf(kScoreOffset<Acc>, sc.row1, n1);
    tile_exp2<RAGGED, BIAS>(acc, sc, bias0, bias1, valid, t, f);
}

// The same for a tile after the row's first, with the exponentials not waiting for the tile's row
// max: p = 2^(s - m) against the running m, the row max computed beside them, and only when a warp
// vote says a row's max moved past m + kLazyMax (rare after a row's first tiles) are m moved and p
// scaled by beta = 2^(m - max). That takes the max's dependent chain (VIMNMX3, quad shuffles,
// compare) off the path to the first exponential (5% of the consumer step, bench/gpu/pipe_overlap.cu).
// A move of 128 log2 units or more overflows p to infinity before the scale (and past 126, beta
// flushes to zero), and S is gone by then (reading it in the rare branch would make ptxas serialize
// every wgmma, C7520): so a move of kAheadRange or more sets beta to NaN, which reaches the row's sum
// l and O and stays to the row's end, where the caller computes such rows again with
// softmax_tile_fp16_exp.
constexpr float kAheadRange = 120.f;
template <bool RAGGED, int BIAS, typename Acc>
__device__ __forceinline__ void softmax_tile_fp16_exp_ahead(const Acc (&acc)[8][4], ScoreStep sc, int valid, int t,
                                                            RowState& rs, float& beta0, float& beta1, float (&f)[8][4]) {
    float mx0, mx1;
    tile_row_max<RAGGED, BIAS>(acc, sc, valid, t, mx0, mx1);
    tile_exp2<RAGGED, BIAS>(acc, sc, fmaf(kScoreOffset<Acc>, sc.row0, rs.m0), fmaf(kScoreOffset<Acc>, sc.row1, rs.m1),
                            valid, t, f);
    beta0 = beta1 = 1.f;
    const bool move0 = mx0 > rs.m0 + kLazyMax, move1 = mx1 > rs.m1 + kLazyMax;
    if (__any_sync(0xffffffffu, move0 || move1)) {
        const auto beta = [](float m, float mx) { return mx - m < kAheadRange ? ex2(m - mx) : __int_as_float(0x7fffffff); };
        if (move0) {
            beta0 = beta(rs.m0, mx0);
            rs.m0 = mx0;
        }
        if (move1) {
            beta1 = beta(rs.m1, mx1);
            rs.m1 = mx1;
        }
        scale_rows(f, beta0, beta1);
    }
}

// p as fp16 A fragments, and (SUMS) l = l * beta + sum(p); ORDERED as in pack_p8. Without SUMS the
// caller gets the sums from its PV product (the Hopper kernel's ones rows beside V^T).
template <bool ORDERED = false, bool SUMS = true>
__device__ __forceinline__ void pack_p16(const float (&f)[8][4], float beta0, float beta1, RowState& rs,
                                         uint32_t (&pa)[4][4]) {
#pragma unroll
    for (int kc = 0; kc < 4; ++kc) {
        pa[kc][0] = f2h2<ORDERED>(f[2 * kc][0], f[2 * kc][1]);
        pa[kc][1] = f2h2<ORDERED>(f[2 * kc][2], f[2 * kc][3]);
        pa[kc][2] = f2h2<ORDERED>(f[2 * kc + 1][0], f[2 * kc + 1][1]);
        pa[kc][3] = f2h2<ORDERED>(f[2 * kc + 1][2], f[2 * kc + 1][3]);
    }
    if constexpr (SUMS) {
        float sums[4] = {0.f, 0.f, 0.f, 0.f};
#pragma unroll
        for (int kc = 0; kc < 4; ++kc) mma_f16(sums, pa[kc], kOnesH2, kOnesH2);
        rs.l0 = fmaf(rs.l0, beta0, sums[0]);
        rs.l1 = fmaf(rs.l1, beta1, sums[2]);
    }
}

template <bool RAGGED, int BIAS>
__device__ __forceinline__ void softmax_tile_fp16(const int (&acc)[8][4], ScoreStep sc, int valid, int t, RowState& rs,
                                                  float& beta0, float& beta1, uint32_t (&pa)[4][4]) {
    float f[8][4];
    softmax_tile_fp16_exp<RAGGED, BIAS>(acc, sc, valid, t, rs, beta0, beta1, f);
    pack_p16(f, beta0, beta1, rs, pa);
}

}  // namespace paro::gpu
