#pragma once
// exp2_poly: 2^x on the FMA pipe, shared by the fast tile-statistics kernels and a CPU accuracy
// test (so it compiles for the host too).
#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define PARO_TS_HD __host__ __device__ __forceinline__
#else
#define PARO_TS_HD inline
#endif

namespace paro::gpu::tilestats {

PARO_TS_HD int32_t float_bits(float x) {
#if defined(__CUDA_ARCH__)
    return __float_as_int(x);
#else
    int32_t i;
    std::memcpy(&i, &x, 4);
    return i;
#endif
}
PARO_TS_HD float bits_float(int32_t i) {
#if defined(__CUDA_ARCH__)
    return __int_as_float(i);
#else
    float x;
    std::memcpy(&x, &i, 4);
    return x;
#endif
}

// 2^x as a degree-5 polynomial on the FMA pipe (FlashAttention-3's trick: part of the
// exponentials leave the MUFU, which bounds these kernels). x = n + f, n = rint(x) by the
// 1.5 * 2^23 rounding trick, f in [-0.5, 0.5]; 2^f by a weighted least-squares fit (max relative
// error 2.0e-7 in fp32, like ex2.approx's 2^-22), then n added to the exponent field. Inputs are
// clamped at -125 (results below 2^-125 ~ 2.4e-38 come out as 2^-125 instead of 0, far below any
// tolerance; -inf and NaN give 2^-125: only overflowing rows have NaN, and pass 1 flags them);
// +inf gives NaN.
PARO_TS_HD float exp2_poly(float x) {
    x = fmaxf(x, -125.f);
    const float r = x + 12582912.f;  // 1.5 * 2^23: the low mantissa bits hold rint(x)
    const float n = r - 12582912.f;
    const float f = x - n;
    float p = 1.326697064e-03f;
    p = fmaf(p, f, 9.675459936e-03f);
    p = fmaf(p, f, 5.550742522e-02f);
    p = fmaf(p, f, 2.402212173e-01f);
    p = fmaf(p, f, 6.931469440e-01f);
    p = fmaf(p, f, 1.000000119e+00f);
    // (0x4B400000 + n) << 23 == n << 23 (mod 2^32): n added to p's exponent field.
    return bits_float(int32_t(uint32_t(float_bits(p)) + (uint32_t(float_bits(r)) << 23)));
}

}  // namespace paro::gpu::tilestats
