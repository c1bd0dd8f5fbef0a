#pragma once
// The output side of the attention kernels: folding a tile's 8-bit PV product into O, and the
// epilogue that divides by the row sum and scatters each row to its original token.
#include "common.cuh"

namespace paro::gpu {

// O = O * beta + (P'_u8 V_i8) * v_scale for one 8-channel block (pv: its accumulator fragment,
// plus BIAS as in softmax_tile_8bit; vs: the v scales of channels 2t, 2t + 1 and their products with
// -1.5 * 2^23, as the prep kernel stores them: Quantized::v_scale).
// (F - 1.5 * 2^23) * vs = F * vs + (-1.5 * 2^23 * vs): the int -> float conversion is one FFMA.
template <int BIAS>
__device__ __forceinline__ void o_update(float (&o)[4], const int (&pv)[4], float4 vs, float beta0, float beta1) {
    o[0] = fmaf(o[0], beta0, fmaf(__int_as_float(pv[0] + BIAS), vs.x, vs.z));
    o[1] = fmaf(o[1], beta0, fmaf(__int_as_float(pv[1] + BIAS), vs.y, vs.w));
    o[2] = fmaf(o[2], beta1, fmaf(__int_as_float(pv[2] + BIAS), vs.x, vs.z));
    o[3] = fmaf(o[3], beta1, fmaf(__int_as_float(pv[3] + BIAS), vs.y, vs.w));
}

// The same for FP8 PV, whose accumulators are the tile's fp32 P'V (BIAS unused).
template <int BIAS>
__device__ __forceinline__ void o_update(float (&o)[4], const float (&pv)[4], float4 vs, float beta0, float beta1) {
    o[0] = fmaf(o[0], beta0, pv[0] * vs.x);
    o[1] = fmaf(o[1], beta0, pv[1] * vs.y);
    o[2] = fmaf(o[2], beta1, pv[2] * vs.x);
    o[3] = fmaf(o[3], beta1, pv[3] * vs.y);
}

// Epilogue: O / l for the thread's rows (permuted positions p0 = first row of the thread, p0 + 8),
// each written to its original token (the inverse permutation, fused). o's n-blocks past D / 8 (the
// Hopper kernel's row sums) are not output.
template <int D, typename TOut, int NB>
__device__ __forceinline__ void store_rows(const Shape& s, const PlanView& plan, const MutView& out, int b, int h,
                                           int p0, int t, const float (&o)[NB][4], float l0, float l1) {
    static_assert(NB >= D / 8);
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

}  // namespace paro::gpu
