// Block masks: the density target is hit, forced tiles are kept, the kept tiles are the heaviest,
// and impossible targets are refused. Slot plans split steps as documented.
#include <random>

#include "catch.hpp"
#include "paro/error.hpp"
#include "paro/mask_builder.hpp"
#include "paro/timestep_slots.hpp"

using namespace paro;

namespace {
TileStats random_stats(const TileGrid& g, uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::exponential_distribution<double> e(1.0);
    TileStats st(g);
    for (auto& m : st.mass) m = e(rng);
    st.mass[3] = st.mass[4];  // a tie, broken by tile index
    return st;
}
}  // namespace

TEST_CASE("masks hit the density target and keep the heaviest free tiles", "[mask]") {
    const TokenLayout layout{{5, 7, 9}, 20, TextPosition::prefix};  // N = 335, ragged at 32
    const TileGrid grid{layout.tokens(), 32};
    const int64_t nb = grid.tiles_per_side();
    for (double density : {0.5, 0.6, 0.8, 1.0}) {
        const MaskOptions opt{density, true, true};
        const BlockMask forced = forced_tiles(layout, grid, opt);
        const TileStats st = random_stats(grid, 7);
        const BlockMask m = build_mask(st, forced, opt);
        CHECK(std::fabs(m.density() - density) <= 0.5 / (nb * nb) + 1e-12);
        double min_kept = 1e300, max_dropped = -1;
        for (int64_t r = 0; r < nb; ++r)
            for (int64_t c = 0; c < nb; ++c) {
                if (forced.get(r, c)) {
                    CHECK(m.get(r, c));
                    continue;
                }
                const double mass = st.mass[r * nb + c];
                if (m.get(r, c)) min_kept = std::min(min_kept, mass);
                else max_dropped = std::max(max_dropped, mass);
            }
        CHECK(min_kept >= max_dropped);
    }
}

TEST_CASE("forced tiles cover text rows/columns and the ragged edge", "[mask]") {
    const TokenLayout prefix{{2, 8, 8}, 70, TextPosition::prefix};  // text spans tiles 0-1; N = 198
    const TileGrid grid{prefix.tokens(), 64};
    const BlockMask f = forced_tiles(prefix, grid, {0.5, true, true});
    const int64_t nb = grid.tiles_per_side();
    REQUIRE(nb == 4);
    for (int64_t t = 0; t < nb; ++t) {
        CHECK(f.get(0, t));
        CHECK(f.get(t, 1));
        CHECK(f.get(3, t));  // ragged last tile (198 % 64 != 0)
    }
    CHECK_FALSE(f.get(2, 2));
    CHECK(forced_tiles(prefix, grid, {0.5, false, false}).count() == 0);
    const TokenLayout suffix{{2, 8, 8}, 10, TextPosition::suffix};  // text at 128..137: tile 2
    const BlockMask s = forced_tiles(suffix, TileGrid{suffix.tokens(), 64}, {0.5, true, false});
    CHECK(s.get(2, 0));
    CHECK(s.get(0, 2));
    CHECK_FALSE(s.get(0, 0));
}

TEST_CASE("a density below the forced share is bad input", "[mask]") {
    const TokenLayout layout{{1, 4, 16}, 64, TextPosition::prefix};  // 2 tiles, one of text
    const TileGrid grid{layout.tokens(), 64};
    const MaskOptions opt{0.5, true, true};
    CHECK_THROWS_AS(build_mask(TileStats(grid), forced_tiles(layout, grid, opt), opt), InputError);
    CHECK_THROWS_AS(build_mask(TileStats(grid), BlockMask(2), MaskOptions{1.5, true, true}), InputError);
}

TEST_CASE("mask bytes round trip and padding bits do not count", "[mask]") {
    BlockMask m(5);
    m.set(0, 0);
    m.set(4, 4);
    m.set(2, 3);
    std::vector<uint8_t> bytes = m.bytes();
    bytes.back() |= 0xF0;  // garbage past tile 25
    BlockMask back;
    REQUIRE(BlockMask::from_bytes(5, bytes, back));
    CHECK(back == m);
    CHECK(back.count() == 3);
    CHECK(back.kept_columns(2) == std::vector<int32_t>{3});
    CHECK_FALSE(BlockMask::from_bytes(6, bytes, back));
}

TEST_CASE("slot plans", "[slots]") {
    const SlotPlan one = SlotPlan::make(1, true);
    CHECK(one.count() == 1);
    CHECK(one.slot_of(0.99) == 0);
    const SlotPlan paper = SlotPlan::make(5, true);  // 4 slots over the first half, 1 for the rest
    REQUIRE(paper.count() == 5);
    CHECK(paper.boundaries[4] == Approx(0.5));
    CHECK(paper.slot_of(0.0) == 0);
    CHECK(paper.slot_of(0.13) == 1);
    CHECK(paper.slot_of(0.49) == 3);
    CHECK(paper.slot_of(0.5) == 4);
    CHECK(paper.slot_of(1.0) == 4);
    const SlotPlan even = SlotPlan::make(4, false);
    CHECK(even.slot_of(0.5) == 2);
    CHECK(even.slot_of(0.999) == 3);
    CHECK_THROWS_AS(SlotPlan::make(0, true), InputError);
}
