// The attention kernel's FMA-pipe exponential (kernels/runtime/ex2_fma.hpp) against std::exp2 in
// double: over every float of a dense sweep of the softmax's range, at the integers and half-integers
// where the rounding of x picks j, and at the clamp.

#include <cmath>
#include <limits>
#include <random>

#include "../kernels/runtime/ex2_fma.hpp"
#include "catch.hpp"

using paro::gpu::ex2_fma;

namespace {
double rel_error(float x) {
    const double ref = std::exp2(double(x));
    return std::abs(double(ex2_fma(x)) - ref) / ref;
}
}  // namespace

TEST_CASE("ex2_fma is within 8e-5 of 2^x over the softmax's range", "[ex2_fma]") {
    double worst = 0.0;
    for (float x = -125.f; x <= 16.f; x = std::nextafter(x, 1e9f) + 1e-4f * std::abs(x) + 1e-6f) worst = std::max(worst, rel_error(x));
    std::mt19937 rng(7);
    std::uniform_real_distribution<float> u(-120.f, 12.f);
    for (int i = 0; i < 200000; ++i) worst = std::max(worst, rel_error(u(rng)));
    for (int j = -124; j <= 12; ++j)
        for (const float d : {-0.5f, -0x1p-20f, 0.f, 0x1p-20f, 0.5f}) worst = std::max(worst, rel_error(float(j) + d));
    CHECK(worst < 8e-5);
    CHECK(worst > 1e-6);  // the polynomial's own error shows: not an exact exp2 by accident
}

TEST_CASE("ex2_fma is exact in the exponent: 2^j for integers j, and tiny below the clamp", "[ex2_fma]") {
    for (int j = -125; j <= 20; ++j) {
        const float y = ex2_fma(float(j));
        CHECK(std::abs(y / std::ldexp(1.0, j) - 1.0) < 8e-5);
    }
    for (const float x : {-126.f, -1000.f, -3.0e38f, -std::numeric_limits<float>::infinity()}) {
        const float y = ex2_fma(x);
        CHECK(y > 0.f);
        CHECK(y < 0x1p-124f);  // what fp16 / FP8 / u8 P rounds to 0
    }
}
