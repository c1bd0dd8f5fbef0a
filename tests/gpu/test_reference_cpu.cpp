// The plain CPU reference attention (lib/validation/paro/attention_reference): runs everywhere, no GPU.
#include <cmath>
#include <random>
#include <vector>

#include "catch.hpp"
#include "test_helpers.hpp"
#include "paro/attention_reference.hpp"
#include "paro/axis_order.hpp"
#include "paro/block_mask.hpp"
#include "paro/token_layout.hpp"

using namespace paro;

TEST_CASE("reference: a hand-computed two-token case", "[reference]") {
    // q0 . k = (1, 0) -> scores 1 and 0 at scale 1: p = (e/(e+1), 1/(e+1)).
    const float q[2] = {1.f, 0.f}, k[4] = {1.f, 0.f, 0.f, 1.f}, v[2] = {2.f, -1.f};
    float out[1];
    attention_dense(q, k, v, 1, 2, 1, 1.0, out);  // n = 1 would use only key 0; use n = 2 below
    float q2[4] = {1.f, 0.f, 1.f, 0.f}, out2[2];
    attention_dense(q2, k, v, 2, 2, 1, 1.0, out2);
    const double e = std::exp(1.0), expect = (2.0 * e - 1.0) / (e + 1.0);
    CHECK(out[0] == Approx(2.0));
    CHECK(out2[0] == Approx(expect).epsilon(1e-6));
    CHECK(out2[1] == Approx(expect).epsilon(1e-6));
}

TEST_CASE("reference: full mask equals dense under every order, empty mask gives zeros", "[reference]") {
    TokenLayout layout;
    layout.grid = {3, 5, 7};
    layout.text_tokens = 13;
    const int64_t n = layout.tokens(), d = 16, nb = (n + 63) / 64;
    const auto q = test::random_normal(size_t(n * d), 1), k = test::random_normal(size_t(n * d), 2), v = test::random_normal(size_t(n * d), 3);
    std::vector<float> dense(size_t(n * d)), masked(size_t(n * d));
    attention_dense(q.data(), k.data(), v.data(), n, d, d, 0.25, dense.data());
    BlockMask full(nb), empty(nb);
    for (int64_t r = 0; r < nb; ++r)
        for (int64_t c = 0; c < nb; ++c) full.set(r, c);
    for (auto pos : {TextPosition::prefix, TextPosition::suffix}) {
        layout.text_position = pos;
        for (auto o : kAllOrders) {
            const auto perm = make_permutation(layout, o);
            attention_masked(q.data(), k.data(), v.data(), n, d, d, 0.25, perm, full, 64, masked.data());
            const auto e = compare_outputs(masked.data(), dense.data(), masked.size());
            CHECK(e.rel_l2 < 1e-6);
            attention_masked(q.data(), k.data(), v.data(), n, d, d, 0.25, perm, empty, 64, masked.data());
            for (float x : masked) REQUIRE(x == 0.f);
        }
    }
}

TEST_CASE("reference: a mask keeps exactly the tiles it names", "[reference]") {
    TokenLayout layout;
    layout.grid = {2, 4, 20};  // 160 video tokens + 8 text = 168, 3 tiles per side (last ragged)
    layout.text_tokens = 8;
    const int64_t n = layout.tokens(), d = 8, nb = 3;
    const auto q = test::random_normal(size_t(n * d), 4), k = test::random_normal(size_t(n * d), 5), v = test::random_normal(size_t(n * d), 6);
    const auto perm = make_permutation(layout, AxisOrder::WHF);
    BlockMask m(nb);
    m.set(0, 2);
    m.set(1, 1);
    m.set(2, 0);
    m.set(2, 2);
    std::vector<float> out(size_t(n * d));
    attention_masked(q.data(), k.data(), v.data(), n, d, d, 0.3, perm, m, 64, out.data());
    // Brute force: for a query at permuted position p, keys at permuted positions in kept tiles.
    for (int64_t i = 0; i < n; i += 7) {
        const int64_t r = perm.position[i] / 64;
        std::vector<int64_t> keys;
        for (int64_t j = 0; j < n; ++j)
            if (m.get(r, perm.position[j] / 64)) keys.push_back(j);
        std::vector<double> s;
        double mx = -1e300;
        for (int64_t j : keys) {
            double dot = 0;
            for (int64_t c = 0; c < d; ++c) dot += double(q[i * d + c]) * k[j * d + c];
            s.push_back(dot * 0.3);
            mx = std::max(mx, s.back());
        }
        double l = 0;
        for (double& x : s) l += (x = std::exp(x - mx));
        for (int64_t c = 0; c < d; ++c) {
            double acc = 0;
            for (size_t t = 0; t < keys.size(); ++t) acc += s[t] * v[keys[t] * d + c];
            CHECK(out[i * d + c] == Approx(acc / l).margin(1e-6));
        }
    }
}

TEST_CASE("reference: compare_outputs", "[reference]") {
    const std::vector<float> a = {1, 2, 3, 4}, b = {1, 2, 3, 5};
    auto e = compare_outputs(a.data(), a.data(), a.size());
    CHECK(e.cosine == Approx(1.0));
    CHECK(e.rel_l1 == 0.0);
    CHECK(std::isinf(e.psnr));
    e = compare_outputs(a.data(), b.data(), a.size());
    CHECK(e.rel_l1 == Approx(1.0 / 11.0));
    CHECK(e.max_abs == Approx(1.0));
    CHECK(e.psnr == Approx(20 * std::log10(5.0 / std::sqrt(0.25))));
    std::vector<float> bad = {1, NAN, 3, 4};
    CHECK_FALSE(compare_outputs(bad.data(), b.data(), 4).finite);
}
