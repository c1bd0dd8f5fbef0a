#include "paro/half.hpp"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define PARO_HALF_F16C 1
#endif

namespace paro {

namespace {

bool widen_portable(const uint16_t* in, float* out, size_t n) {
    uint16_t special = 0;  // exponent all ones: Inf or NaN
    for (size_t i = 0; i < n; ++i) {
        special |= static_cast<uint16_t>((in[i] & 0x7c00u) == 0x7c00u);
        out[i] = half_to_float(in[i]);
    }
    return !special;
}

#ifdef PARO_HALF_F16C
// Eight at a time with vcvtph2ps, which is exact for every half (subnormals included), so the
// floats are bit for bit those of half_to_float, and so are the checksums over them.
__attribute__((target("avx,f16c"))) bool widen_f16c(const uint16_t* in, float* out, size_t n) {
    const __m128i exponent = _mm_set1_epi16(0x7c00);
    __m128i special = _mm_setzero_si128();
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + i));
        special = _mm_or_si128(special, _mm_cmpeq_epi16(_mm_and_si128(h, exponent), exponent));
        _mm256_storeu_ps(out + i, _mm256_cvtph_ps(h));
    }
    const bool finite_tail = widen_portable(in + i, out + i, n - i);
    return _mm_movemask_epi8(special) == 0 && finite_tail;
}
#endif

}  // namespace

bool widen_halves(const uint16_t* in, float* out, size_t n) {
#ifdef PARO_HALF_F16C
    static const bool f16c = __builtin_cpu_supports("avx") && __builtin_cpu_supports("f16c");
    if (f16c) return widen_f16c(in, out, n);
#endif
    return widen_portable(in, out, n);
}

}  // namespace paro
