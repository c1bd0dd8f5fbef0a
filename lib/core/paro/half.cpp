#include "paro/half.hpp"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
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
// Eight at a time with vcvtph2ps, which is exact for every finite half (subnormals included, and
// MXCSR.DAZ does not apply to halves), so the floats are bit for bit those of half_to_float, and so
// are the checksums over them (NaN may come back quieted: the callers refuse it anyway).
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

// Eight at a time: vcvtps2ph (round to nearest) and back; a value is a half exactly when it comes
// back with the same bits and is finite (Inf comes back). Bits are compared as integers: a float
// comparison would take a subnormal float flushed to zero under MXCSR.DAZ (which PyTorch's
// set_flush_denormal sets in the processes that load paro) as equal to that zero.
__attribute__((target("avx,f16c"))) bool narrow_f16c(const float* in, uint16_t* out, size_t n) {
    const __m128i exponent = _mm_set1_epi32(0x7f800000);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 x = _mm256_loadu_ps(in + i);
        const __m128i h = _mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        const __m256i xi = _mm256_castps_si256(x), bi = _mm256_castps_si256(_mm256_cvtph_ps(h));
        const __m128i lo = _mm256_castsi256_si128(xi), hi = _mm256_extractf128_si256(xi, 1);
        const __m128i same = _mm_and_si128(_mm_cmpeq_epi32(lo, _mm256_castsi256_si128(bi)),
                                           _mm_cmpeq_epi32(hi, _mm256_extractf128_si256(bi, 1)));
        const __m128i special = _mm_or_si128(_mm_cmpeq_epi32(_mm_and_si128(lo, exponent), exponent),
                                             _mm_cmpeq_epi32(_mm_and_si128(hi, exponent), exponent));
        if (_mm_movemask_epi8(same) != 0xffff || _mm_movemask_epi8(special) != 0) return false;
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), h);
    }
    return narrow_exact_portable(in + i, out + i, n - i);
}
#endif

#ifdef PARO_HALF_F16C
// AVX with the OS's support for its registers, and CPUID's F16C bit (clang 14 has no "f16c" for
// __builtin_cpu_supports).
bool has_f16c() {
    static const bool f16c = [] {
        unsigned a = 0, b = 0, c = 0, d = 0;
        return __builtin_cpu_supports("avx") && __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C) != 0;
    }();
    return f16c;
}
#endif

}  // namespace

bool narrow_exact(const float* in, uint16_t* out, size_t n) {
#ifdef PARO_HALF_F16C
    if (has_f16c()) return narrow_f16c(in, out, n);
#endif
    return narrow_exact_portable(in, out, n);
}

bool widen_halves(const uint16_t* in, float* out, size_t n) {
#ifdef PARO_HALF_F16C
    if (has_f16c()) return widen_f16c(in, out, n);
#endif
    return widen_portable(in, out, n);
}

}  // namespace paro
