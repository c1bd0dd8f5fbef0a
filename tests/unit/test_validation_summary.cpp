// worst_over_samples: the per-(layer, head) worst case of `paro validate`'s tables.
#include <cmath>

#include "catch.hpp"
#include "paro/validation.hpp"

using namespace paro;

namespace {
HeadValidation result(int sample, int layer, int head, double cosine, double rel_l1, double density) {
    HeadValidation r;
    r.sample = sample;
    r.layer = layer;
    r.head = head;
    r.order = AxisOrder::HWF;
    r.density = density;
    r.mask.cosine = cosine;
    r.mask.rel_l1 = rel_l1;
    r.mask.psnr = 40 - sample;
    r.total = r.quant = r.mask;
    return r;
}
}  // namespace

TEST_CASE("worst over samples takes each statistic's worst and the mean density", "[validation]") {
    // Sample-major, as validate_pattern returns them.
    const std::vector<HeadValidation> results = {result(0, 1, 0, 0.99, 0.05, 0.2), result(0, 0, 1, 0.90, 0.01, 0.5),
                                                 result(1, 1, 0, 0.95, 0.02, 0.4), result(1, 0, 1, 0.97, 0.30, 0.5)};
    const auto w = worst_over_samples(results);
    REQUIRE(w.size() == 2);
    CHECK((w[0].layer == 0 && w[0].head == 1));  // ordered by layer, then head
    CHECK((w[1].layer == 1 && w[1].head == 0));
    CHECK(w[1].samples == 2);
    CHECK(w[1].order == AxisOrder::HWF);
    CHECK(w[1].mean_density == Approx(0.3));
    CHECK(w[1].mask.cosine == 0.95);  // lowest
    CHECK(w[1].mask.rel_l1 == 0.05);  // highest
    CHECK(w[1].mask.psnr == 39);      // lowest
    CHECK(w[0].total.cosine == 0.90);
    CHECK(w[0].total.rel_l1 == 0.30);  // from the other sample: field by field
}

TEST_CASE("NaN and non-finite outputs are the worst", "[validation]") {
    std::vector<HeadValidation> results = {result(0, 0, 0, 0.99, 0.01, 0.5), result(1, 0, 0, NAN, 0.01, 0.5)};
    results[0].total.finite = false;
    const auto w = worst_over_samples(results);
    REQUIRE(w.size() == 1);
    CHECK(std::isnan(w[0].mask.cosine));
    CHECK_FALSE(w[0].total.finite);
    CHECK(w[0].mask.finite);
}
