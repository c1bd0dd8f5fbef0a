// The streaming tile statistics engine against the brute-force materialize-and-permute reference,
// on random and adversarial inputs of odd sizes, q/k and attention maps, both text positions.
#include <omp.h>

#include <cmath>

#include "catch.hpp"
#include "paro/reference_stats.hpp"
#include "paro/tile_stats.hpp"
#include "test_helpers.hpp"

using namespace paro;

namespace {

void compare(const SixOrderStats& fast, const SixOrderStats& ref) {
    for (int o = 0; o < kNumOrders; ++o) {
        INFO("order " << to_string(kAllOrders[o]));
        const TileStats& a = fast[o];
        const TileStats& b = ref[o];
        REQUIRE(a.mass.size() == b.mass.size());
        double diff = 0, norm = 0, max_rel = 0;
        int64_t count_diff = 0, entries = 0;
        for (size_t t = 0; t < a.mass.size(); ++t) {
            diff += (a.mass[t] - b.mass[t]) * (a.mass[t] - b.mass[t]);
            norm += b.mass[t] * b.mass[t];
            if (b.max[t] > 1e-6f) max_rel = std::max(max_rel, std::fabs(double(a.max[t]) - b.max[t]) / b.max[t]);
            count_diff += std::llabs(a.below_eps[t] - b.below_eps[t]);
            entries += a.grid.entries(static_cast<int64_t>(t) / a.grid.tiles_per_side(),
                                      static_cast<int64_t>(t) % a.grid.tiles_per_side());
        }
        CHECK(std::sqrt(diff / norm) < 1e-5);
        CHECK(max_rel < 1e-5);
        // Entries within rounding of eps may land on either side; allow a few in a million.
        CHECK(static_cast<double>(count_diff) / static_cast<double>(entries) < 1e-5);
        CHECK(std::fabs(a.total_mass() - static_cast<double>(a.grid.tokens)) < 1e-3 * a.grid.tokens);
    }
}

}  // namespace

TEST_CASE("streaming tile stats equal brute force on q/k", "[tiles]") {
    struct Case {
        TokenLayout layout;
        int64_t d, block;
        double spread;
    };
    const Case cases[] = {
        {{{3, 5, 7}, 11, TextPosition::prefix}, 64, 16, 1.0},
        {{{2, 9, 13}, 5, TextPosition::suffix}, 64, 64, 1.0},
        {{{4, 6, 5}, 0, TextPosition::prefix}, 128, 32, 3.0},
        {{{1, 17, 1}, 3, TextPosition::prefix}, 64, 16, 8.0},  // sizes of 1, very peaked rows
        {{{5, 3, 11}, 7, TextPosition::suffix}, 64, 48, 0.0},  // uniform attention: all entries equal
    };
    uint64_t seed = 1;
    for (const Case& c : cases) {
        INFO("layout " << c.layout.describe() << " block " << c.block);
        const HeadSlice s = test::random_slice(c.layout.tokens(), c.d, seed++, c.spread);
        const TileStatsOptions opt{c.block, 1e-3f};
        const TileStatsEngine engine(c.layout, opt);
        compare(engine.compute(s), reference_tile_stats(c.layout, s, opt));
    }
}

TEST_CASE("streaming tile stats equal brute force on attention maps", "[tiles]") {
    const TokenLayout layout{{3, 4, 9}, 6, TextPosition::prefix};
    HeadSlice s = test::random_slice(layout.tokens(), 64, 99, 2.0);
    const auto p = reference_attention_matrix(s);
    s.attention.assign(p.begin(), p.end());
    s.q.clear();
    s.k.clear();
    const TileStatsOptions opt{16, 1e-3f};
    compare(TileStatsEngine(layout, opt).compute(s), reference_tile_stats(layout, s, opt));
}

TEST_CASE("tile stats are the same bits for any thread count", "[tiles]") {
    const TokenLayout layout{{5, 12, 17}, 10, TextPosition::prefix};  // many row blocks
    const HeadSlice s = test::random_slice(layout.tokens(), 64, 5, 2.0);
    const TileStatsEngine engine(layout, {16, 1e-3f});
    const int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    const auto one = engine.compute(s);
    omp_set_num_threads(3);
    const auto three = engine.compute(s);
    omp_set_num_threads(7);
    const auto seven = engine.compute(s);
    omp_set_num_threads(saved);
    // Sharded, resumed and MPI runs with other thread counts must give the pattern of one run.
    for (int o = 0; o < kNumOrders; ++o) {
        CHECK(one[o].mass == three[o].mass);
        CHECK(one[o].max == three[o].max);
        CHECK(one[o].below_eps == three[o].below_eps);
        CHECK(one[o].mass == seven[o].mass);
    }
}
