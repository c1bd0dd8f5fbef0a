#pragma once
// 2^x from FMA-pipe instructions alone (FlashAttention-4's trick): the softmax's exponentials are the
// multi-function unit's, 16 a clock per SM on sm_90 against 128 FMAs a clock, and that unit is the
// attention kernel's busiest pipe at D 64; moving a share of the exponentials over shortens the
// softmax. Plain C++ for the host too, so that a CPU test checks it against std::exp2.
#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define PARO_HOST_DEVICE __host__ __device__
#else
#define PARO_HOST_DEVICE
#endif

namespace paro::gpu {

// x = j + r with j = round(x), read from the low mantissa bits of x + 1.5 * 2^23, and |r| <= 1/2;
// 2^r by a degree-3 minimax polynomial (relative error 7.5e-5, under fp16's rounding of P: 2^-11),
// 2^j added into its exponent field. x is clamped to -125 below (2^-125 rounds to 0 in every P
// format, as ex2.approx.ftz's flushed results do); valid for x < 128.
PARO_HOST_DEVICE inline float ex2_fma(float x) {
    constexpr float kRound = 12582912.f;  // 1.5 * 2^23
    x = fmaxf(x, -125.f);
    const float t = x + kRound, r = x - (t - kRound);
    const float p = fmaf(fmaf(fmaf(0x1.c3f724p-5f, r, 0x1.f0ddf8p-3f), r, 0x1.62f31ap-1f), r, 0x1.fff694p-1f);
    uint32_t pb, tb;
    std::memcpy(&pb, &p, 4);
    std::memcpy(&tb, &t, 4);
    pb += tb << 23;  // tb's low bits are j (two's complement); its other bits shift out
    float y;
    std::memcpy(&y, &pb, 4);
    return y;
}

}  // namespace paro::gpu
