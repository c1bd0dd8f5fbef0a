#pragma once
// IEEE 754 binary16 from float, round to nearest even (inf and NaN kept, overflow to inf,
// subnormals rounded exactly). Writers convert themselves: HDF5 1.10's float -> half conversion
// runs at ~15 M values/s (a CogVideoX-size synthetic dump took minutes) and is wrong where the
// mantissa rounds up into the next exponent (2047.9 -> 1024) and in the subnormal range.
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

// The float a half bit pattern stands for (exact: every half is a float).
inline float half_to_float(uint16_t h) {
    const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
    const uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
    uint32_t f;
    if (exp == 0x1f) {
        f = sign | 0x7f800000u | (mant << 13);
    } else if (exp != 0) {
        f = sign | ((exp + 112) << 23) | (mant << 13);
    } else if (mant == 0) {
        f = sign;
    } else {  // subnormal: normalize
        int e = -1;
        uint32_t m = mant;
        do {
            ++e;
            m <<= 1;
        } while ((m & 0x400u) == 0);
        f = sign | (static_cast<uint32_t>(112 - e) << 23) | ((m & 0x3ffu) << 13);
    }
    float out;
    std::memcpy(&out, &f, sizeof out);
    return out;
}

}  // namespace paro
