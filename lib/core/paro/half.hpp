#pragma once
// IEEE 754 binary16 from float, round to nearest even (inf and NaN kept, overflow to inf,
// subnormals rounded exactly). Writers convert themselves: HDF5 1.10's float -> half conversion
// runs at ~15 M values/s (a CogVideoX-size synthetic dump took minutes) and is wrong where the
// mantissa rounds up into the next exponent (2047.9 -> 1024) and in the subnormal range.
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace paro {

inline uint16_t float_to_half(float value) {
    uint32_t f;
    std::memcpy(&f, &value, sizeof f);
    const uint32_t sign = (f >> 16) & 0x8000u;
    const uint32_t abs = f & 0x7fffffffu;
    if (abs >= 0x7f800000u) return static_cast<uint16_t>(sign | 0x7c00u | (abs > 0x7f800000u ? 0x200u : 0u));
    if (abs >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // rounds past 65504
    if (abs < 0x38800000u) {  // below the smallest normal half: a subnormal or zero
        if (abs < 0x33000000u) return static_cast<uint16_t>(sign);  // rounds to zero
        const uint32_t exp = abs >> 23, mant = (abs & 0x7fffffu) | 0x800000u;
        const uint32_t shift = 126 - exp;  // 14..24
        uint32_t h = mant >> shift;
        const uint32_t rest = mant & ((1u << shift) - 1), half_way = 1u << (shift - 1);
        if (rest > half_way || (rest == half_way && (h & 1u))) ++h;
        return static_cast<uint16_t>(sign | h);
    }
    uint32_t h = ((abs - 0x38000000u) >> 13);  // rebias exponent 127 -> 15, keep 10 mantissa bits
    const uint32_t rest = abs & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;  // may carry into the exponent: fine
    return static_cast<uint16_t>(sign | h);
}

// The float a half bit pattern stands for (exact: every half is a float). Branch-free so that
// loops over whole tensors vectorize: exponent and mantissa are shifted into place and rebiased;
// Inf/NaN get the rest of float's exponent; subnormals (and zero) come out of one exact float
// subtraction of 2^-14, because m * 2^-24 == (2^-14 + m * 2^-24) - 2^-14.
inline float half_to_float(uint16_t h) {
    const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
    const uint32_t shifted = static_cast<uint32_t>(h & 0x7fffu) << 13;
    const uint32_t exp = shifted & 0x0f800000u;
    const uint32_t normal = shifted + 0x38000000u;  // rebias exponent 15 -> 127
    const uint32_t special = normal + 0x38000000u;  // exponent 31 -> 255 (Inf/NaN)
    const uint32_t tiny_bits = shifted + 0x38800000u;  // 2^-14 * (1 + m / 1024) with the mantissa of h
    float tiny;
    std::memcpy(&tiny, &tiny_bits, sizeof tiny);
    tiny -= 6.103515625e-05f;  // 2^-14
    uint32_t tiny_u;
    std::memcpy(&tiny_u, &tiny, sizeof tiny_u);
    const uint32_t bits = exp == 0x0f800000u ? special : exp == 0 ? tiny_u : normal;
    float out;
    const uint32_t f = sign | bits;
    std::memcpy(&out, &f, sizeof out);
    return out;
}

// Widens n halves to floats (exactly, as half_to_float for every finite half) and returns whether
// all of them are finite (out is written either way). With F16C conversions where the CPU has them (half.cpp).
bool widen_halves(const uint16_t* in, float* out, size_t n);

// Narrows n floats to halves when every one of them is exactly a half (returns true); returns
// false (out partly written) when one is not, NaN and Inf included. With F16C conversions where the
// CPU has them (half.cpp), else narrow_exact_portable.
bool narrow_exact(const float* in, uint16_t* out, size_t n);

// The same without F16C. Branch-free per value: normal halves by rebiasing, subnormals as their
// integer multiple of 2^-24, then decoded back and compared bit for bit.
inline bool narrow_exact_portable(const float* in, uint16_t* out, size_t n) {
    constexpr size_t kBlock = 1024;  // check per block, so a float tensor fails fast
    for (size_t b = 0; b < n; b += kBlock) {
        const size_t e = b + kBlock < n ? b + kBlock : n;
        uint32_t bad = 0;
        for (size_t i = b; i < e; ++i) {
            uint32_t f;
            std::memcpy(&f, &in[i], sizeof f);
            const uint32_t abs = f & 0x7fffffffu;
            const bool normal = abs >= 0x38800000u;
            float mag;
            std::memcpy(&mag, &abs, sizeof mag);
            const uint32_t sub = static_cast<uint32_t>((normal ? 0.0f : mag) * 16777216.0f);  // 2^24, exact
            const uint32_t h = ((f >> 16) & 0x8000u) | (normal ? ((abs - 0x38000000u) >> 13) & 0x7fffu : sub & 0x3ffu);
            out[i] = static_cast<uint16_t>(h);
            const float back = half_to_float(static_cast<uint16_t>(h));
            uint32_t bb;
            std::memcpy(&bb, &back, sizeof bb);
            bad |= bb ^ f;
        }
        if (bad) return false;
    }
    return true;
}

}  // namespace paro
