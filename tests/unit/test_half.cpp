// float_to_half against an exact search over all halves and hand-checked values at the edges of
// the format. (HDF5 1.10's own float -> half conversion is no reference: it drops the carry when
// the mantissa rounds up, 2047.9 -> 1024, and misrounds subnormals.)

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "catch.hpp"
#include "paro/half.hpp"
#include "paro/hdf5_io.hpp"
#include "test_helpers.hpp"

namespace {
double half_value(uint16_t h) {  // finite, positive patterns only
    const int exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
    return exp == 0 ? std::ldexp(mant, -24) : std::ldexp(1024 + mant, exp - 25);
}

// Exact reference: the nearest half by search over every positive finite half, ties to the even
// pattern; past the largest half, rounding as if 0x7c00 were the next value (2^16) gives inf.
uint16_t nearest_half(float x) {
    if (std::isnan(x)) return 0x7e00;
    const uint16_t sign = std::signbit(x) ? 0x8000 : 0;
    const double a = std::fabs(static_cast<double>(x));
    uint16_t lo = 0, hi = 0x7c00;  // value(lo) <= a < value(hi), value(0x7c00) taken as 65536
    while (hi - lo > 1) {
        const uint16_t mid = static_cast<uint16_t>((lo + hi) / 2);
        (half_value(mid) <= a ? lo : hi) = mid;
    }
    const double below = a - half_value(lo), above = (hi == 0x7c00 ? 65536.0 : half_value(hi)) - a;
    const uint16_t h = below < above ? lo : above < below ? hi : (lo % 2 == 0 ? lo : hi);
    return static_cast<uint16_t>(sign | h);
}
}  // namespace

TEST_CASE("float_to_half: edge values", "[half]") {
    using paro::float_to_half;
    CHECK(float_to_half(0.0f) == 0x0000);
    CHECK(float_to_half(-0.0f) == 0x8000);
    CHECK(float_to_half(1.0f) == 0x3c00);
    CHECK(float_to_half(-2.0f) == 0xc000);
    CHECK(float_to_half(65504.0f) == 0x7bff);                        // largest half
    CHECK(float_to_half(65519.0f) == 0x7bff);                        // rounds down
    CHECK(float_to_half(65520.0f) == 0x7c00);                        // half way: to even = inf
    CHECK(float_to_half(std::numeric_limits<float>::infinity()) == 0x7c00);
    CHECK((float_to_half(std::numeric_limits<float>::quiet_NaN()) & 0x7c00) == 0x7c00);
    CHECK((float_to_half(std::numeric_limits<float>::quiet_NaN()) & 0x03ff) != 0);
    CHECK(float_to_half(std::ldexp(1.0f, -14)) == 0x0400);           // smallest normal
    CHECK(float_to_half(std::ldexp(1.0f, -24)) == 0x0001);           // smallest subnormal
    CHECK(float_to_half(std::ldexp(1.0f, -25)) == 0x0000);           // half way to it: to even = 0
    CHECK(float_to_half(std::ldexp(1.5f, -25)) == 0x0001);
    CHECK(float_to_half(1.0f + std::ldexp(1.0f, -11)) == 0x3c00);    // half way between 1 and next: even
    CHECK(float_to_half(1.0f + std::ldexp(3.0f, -11)) == 0x3c02);    // half way, odd below: up
}

TEST_CASE("float_to_half: the nearest half, ties to even, on random and boundary floats", "[half]") {
    std::mt19937 rng(7);
    std::vector<float> x;
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::uniform_int_distribution<int> exponent(-30, 17);
    for (int i = 0; i < 100000; ++i) x.push_back(std::ldexp(normal(rng), exponent(rng)));
    // Every float whose low 13 bits sit at or next to a rounding boundary, over the normal range.
    for (uint32_t e = 103; e <= 142; ++e)
        for (uint32_t m : {0x0u, 0xfffu, 0x1000u, 0x1001u, 0x2fffu, 0x3000u, 0x7fffffu})
            for (uint32_t sign : {0u, 0x80000000u}) {
                const uint32_t bits = sign | (e << 23) | m;
                float f;
                std::memcpy(&f, &bits, sizeof f);
                x.push_back(f);
            }
    int mismatches = 0;
    for (float v : x) {
        const uint16_t want = nearest_half(v);
        if (paro::float_to_half(v) != want && ++mismatches <= 5)
            FAIL_CHECK("x = " << v << ": paro " << paro::float_to_half(v) << ", expected " << want);
    }
    CHECK(mismatches == 0);
}

TEST_CASE("half_to_float: every half pattern decodes to its value and encodes back", "[half]") {
    int bad = 0;
    for (uint32_t h = 0; h < 0x10000; ++h) {
        const uint16_t bits = static_cast<uint16_t>(h);
        const float f = paro::half_to_float(bits);
        const bool nan = (bits & 0x7c00) == 0x7c00 && (bits & 0x3ff);
        if (nan) {
            bad += !std::isnan(f);
            continue;
        }
        const bool inf = (bits & 0x7fff) == 0x7c00;
        const double want = inf ? HUGE_VAL : half_value(static_cast<uint16_t>(bits & 0x7fff));
        bad += std::fabs(static_cast<double>(f)) != want || std::signbit(f) != ((bits & 0x8000) != 0);
        bad += paro::float_to_half(f) != bits;
    }
    CHECK(bad == 0);
}

TEST_CASE("narrow_exact: every finite half round-trips; values off the half grid are refused", "[half]") {
    std::vector<float> exact;
    for (uint32_t h = 0; h < 0x10000; ++h)
        if ((h & 0x7c00) != 0x7c00) exact.push_back(static_cast<float>(half_value(h & 0x7fff)) * ((h & 0x8000) ? -1.f : 1.f));
    std::vector<uint16_t> out(exact.size());
    REQUIRE(paro::narrow_exact(exact.data(), out.data(), exact.size()));
    int bad = 0;
    for (size_t i = 0; i < exact.size(); ++i) bad += out[i] != paro::float_to_half(exact[i]);
    CHECK(bad == 0);
    // One value off the grid anywhere (normal, subnormal, above 65504, below the smallest
    // subnormal, NaN, Inf) makes the whole tensor refuse.
    std::mt19937 rng(5);
    const float off[] = {1.0f + 1.0f / 4096, 3e-8f, 7e-6f, 65536.0f, 1e30f, -2049.0f, 1e-9f,
                         std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()};
    for (float x : off) {
        // At random, first and last (the F16C path's vectors and its scalar tail), and alone.
        for (const size_t at : {std::uniform_int_distribution<size_t>(0, exact.size() - 1)(rng), size_t(0),
                                exact.size() - 1}) {
            std::vector<float> t = exact;
            t[at] = x;
            CHECK_FALSE(paro::narrow_exact(t.data(), out.data(), t.size()));
            CHECK_FALSE(paro::narrow_exact_portable(t.data(), out.data(), t.size()));
        }
        CHECK_FALSE(paro::narrow_exact(&x, out.data(), 1));
    }
    // Both paths write the same halves.
    std::vector<uint16_t> portable(exact.size());
    REQUIRE(paro::narrow_exact(exact.data(), out.data(), exact.size()));
    REQUIRE(paro::narrow_exact_portable(exact.data(), portable.data(), exact.size()));
    CHECK(portable == out);
}

TEST_CASE("fp16 datasets read through paro's own widening, bit for bit", "[half]") {
    // Every finite half pattern once, in a [1, 1, n, 64] fp16 dataset written with paro's writer.
    std::vector<uint16_t> bits;
    for (uint32_t h = 0; h < 0x10000; ++h)
        if ((h & 0x7c00) != 0x7c00) bits.push_back(static_cast<uint16_t>(h));
    bits.resize(bits.size() / 64 * 64);
    const int64_t rows = static_cast<int64_t>(bits.size() / 64);
    paro::test::TempDir dir;
    const std::string path = dir.path() + "/h.h5";
    {
        paro::h5::File f = paro::h5::File::create(path);
        paro::h5::Handle d = paro::h5::create_dataset(f.id(), "x", {1, 1, rows, 64}, paro::h5::StoreType::f16,
                                                      {{1, 1, rows, 64}, 0});
        paro::h5::write_box(d.get(), {0, 0, 0, 0}, {1, 1, rows, 64}, bits.data());
    }
    paro::h5::File f = paro::h5::File::open_read(path);
    paro::h5::Handle d = paro::h5::open_dataset(f, "/x");
    std::vector<float> got(bits.size());
    paro::h5::read_box(f, d.get(), "/x", {0, 0, 0, 0}, {1, 1, rows, 64}, got.data());
    int bad = 0;
    for (size_t i = 0; i < bits.size(); ++i) {
        const float want = paro::half_to_float(bits[i]);
        bad += std::memcmp(&got[i], &want, sizeof want) != 0;
    }
    CHECK(bad == 0);
}

TEST_CASE("widen_halves: every half pattern as half_to_float gives it, bit for bit; Inf and NaN found", "[half]") {
    // All 65,536 patterns, at every offset from an 8-value boundary (the F16C loop and its tail).
    std::vector<uint16_t> all(65536);
    for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<uint16_t>(i);
    std::vector<float> out(all.size());
    CHECK_FALSE(paro::widen_halves(all.data(), out.data(), all.size()));  // Inf and NaN are in there
    for (size_t i = 0; i < all.size(); ++i) {
        const float want = paro::half_to_float(all[i]);
        if ((all[i] & 0x7c00u) == 0x7c00u) continue;  // their float bits are not needed: the caller refuses them
        REQUIRE(std::memcmp(&out[i], &want, sizeof want) == 0);
    }
    std::vector<uint16_t> finite;
    for (uint16_t h : all)
        if ((h & 0x7c00u) != 0x7c00u) finite.push_back(h);
    for (size_t offset = 0; offset < 9; ++offset) {
        const size_t n = finite.size() - offset;
        CHECK(paro::widen_halves(finite.data() + offset, out.data(), n));
        for (const size_t at : {size_t(0), n / 2, n - 1}) {  // an Inf at the start, the middle, the tail
            std::vector<uint16_t> bad(finite.begin() + static_cast<std::ptrdiff_t>(offset), finite.end());
            bad[at] = 0x7c00u;
            CHECK_FALSE(paro::widen_halves(bad.data(), out.data(), n));
        }
    }
}

#if defined(__x86_64__)
#include <xmmintrin.h>
// PyTorch's set_flush_denormal turns on MXCSR.DAZ in the process that loads paro: a subnormal float
// is then zero to float arithmetic, and must still not pass as a half (nor widen differently).
TEST_CASE("narrow_exact and widen_halves under MXCSR.DAZ and FTZ", "[half]") {
    const unsigned saved = _mm_getcsr();
    _mm_setcsr(saved | 0x8040u);  // DAZ (bit 6) and FTZ (bit 15)
    std::vector<float> x(16, 1.0f);
    x[3] = 1e-40f;  // a subnormal float, far below the smallest half
    std::vector<uint16_t> out(x.size());
    const bool narrowed = paro::narrow_exact(x.data(), out.data(), x.size());
    std::vector<uint16_t> h(16, 0x0001);  // the smallest subnormal half, 2^-24
    std::vector<float> w(h.size());
    paro::widen_halves(h.data(), w.data(), h.size());
    _mm_setcsr(saved);
    CHECK_FALSE(narrowed);
    for (float v : w) CHECK(v == 5.9604644775390625e-08f);
}
#endif
