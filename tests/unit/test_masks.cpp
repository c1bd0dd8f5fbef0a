// Block masks: the density target is hit, forced tiles are kept, the kept tiles are the heaviest,
// and impossible targets are refused; with a recall target, the mask is the smallest that reaches
// it within the floor and cap. Slot plans split steps as documented.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <utility>

#include "catch.hpp"
#include "paro/error.hpp"
#include "paro/mask_builder.hpp"
#include "paro/objective.hpp"
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

// The recall rule by brute force: rank every tile (forced first, then by descending mass, ties by
// index), take prefix sums, and keep the shortest prefix whose mass reaches recall * total,
// clamped to [floor, cap] (and never below the forced tiles).
BlockMask reference_recall_mask(const TileStats& st, const BlockMask& forced, double recall, int64_t floor,
                                int64_t cap) {
    const int64_t nb = forced.tiles_per_side(), tiles = nb * nb;
    std::vector<int64_t> ranking, free;
    for (int64_t t = 0; t < tiles; ++t) (forced.get(t / nb, t % nb) ? ranking : free).push_back(t);
    std::sort(free.begin(), free.end(), [&](int64_t a, int64_t b) {
        return std::make_pair(-st.mass[a], a) < std::make_pair(-st.mass[b], b);
    });
    const int64_t n_forced = static_cast<int64_t>(ranking.size());
    ranking.insert(ranking.end(), free.begin(), free.end());
    const double total = std::accumulate(st.mass.begin(), st.mass.end(), 0.0);
    std::vector<double> prefix(static_cast<size_t>(tiles) + 1, 0.0);
    for (int64_t i = 0; i < tiles; ++i) prefix[i + 1] = prefix[i] + st.mass[ranking[i]];
    int64_t k = n_forced;
    while (k < tiles && prefix[k] < recall * total) ++k;
    k = std::min(cap, std::max({k, floor, n_forced}));
    BlockMask m(nb);
    for (int64_t i = 0; i < k; ++i) m.set(ranking[i] / nb, ranking[i] % nb);
    return m;
}

MaskOptions recall_options(double recall, double cap = 1.0, double floor = 0.0) {
    MaskOptions opt{cap, false, false};
    opt.recall = recall;
    opt.min_density = floor;
    return opt;
}

// 4 x 4 tiles, nothing forced.
const TileGrid kSmallGrid{256, 64};
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

TEST_CASE("recall masks match the brute-force prefix rule", "[mask][recall]") {
    const TokenLayout layout{{5, 7, 9}, 20, TextPosition::prefix};  // N = 335, ragged at 32
    const TileGrid grid{layout.tokens(), 32};
    const int64_t tiles = grid.tiles_per_side() * grid.tiles_per_side();
    for (bool force : {false, true}) {
        const BlockMask forced = forced_tiles(layout, grid, MaskOptions{0.5, force, force});
        for (uint64_t seed : {1, 2, 3})
            for (double recall : {0.3, 0.8, 0.95, 1.0})
                for (auto [cap, floor] : {std::pair{1.0, 0.0}, {0.6, 0.0}, {1.0, 0.7}, {0.75, 0.7}}) {
                    INFO("force " << force << " seed " << seed << " recall " << recall << " cap " << cap
                                  << " floor " << floor);
                    const TileStats st = random_stats(grid, seed);
                    const MaskOptions opt = recall_options(recall, cap, floor);
                    const BlockMask m = build_mask(st, forced, opt);
                    CHECK(m == reference_recall_mask(st, forced, recall, floor_tiles(opt, tiles), cap_tiles(opt, tiles)));
                    if (m.count() < cap_tiles(opt, tiles)) CHECK(mask_recall(m, st.mass) >= recall - 1e-12);
                }
    }
}

TEST_CASE("one ranking serves masks and metrics in any call order, ties included", "[mask][recall]") {
    // 94 x 94 tiles (past the ranking's first sorted chunk), masses from a few values (many ties)
    // or heavy-tailed, text rows/columns forced.
    const TokenLayout layout{{4, 20, 37}, 40, TextPosition::suffix};  // N = 3000
    const TileGrid grid{layout.tokens(), 32};
    const int64_t nb = grid.tiles_per_side(), tiles = nb * nb;
    const BlockMask forced = forced_tiles(layout, grid, MaskOptions{0.5, true, true});
    for (uint64_t seed : {1, 2}) {
        TileStats st = random_stats(grid, seed);
        if (seed == 2)
            for (auto& m : st.mass) m = std::floor(m * 2);  // 0, 1, 2, ... : ties everywhere
        std::vector<int64_t> by_rank;  // brute force: free tiles by (mass desc, index asc)
        for (int64_t t = 0; t < tiles; ++t)
            if (!forced.get(t / nb, t % nb)) by_rank.push_back(t);
        std::stable_sort(by_rank.begin(), by_rank.end(), [&](int64_t a, int64_t b) { return st.mass[a] > st.mass[b]; });
        for (double recall : {0.5, 0.99}) {
            INFO("seed " << seed << " recall " << recall);
            const MaskOptions fixed{0.4, true, true}, adaptive = [&] {
                MaskOptions o{0.9, true, true};
                o.recall = recall;
                return o;
            }();
            TileRanking r(st, forced);
            // Partition for a small k first, then the recall prefix, then the fixed mask.
            const TileRanking::Tile* top = r.heaviest(100);
            std::vector<int64_t> got(100);
            for (int i = 0; i < 100; ++i) got[i] = top[i].index;
            std::sort(got.begin(), got.end());
            std::vector<int64_t> want(by_rank.begin(), by_rank.begin() + 100);
            std::sort(want.begin(), want.end());
            CHECK(got == want);
            const BlockMask a = build_tile_mask(r, forced, adaptive);
            CHECK(a == reference_recall_mask(st, forced, recall, 0, cap_tiles(adaptive, tiles)));
            const BlockMask f = build_tile_mask(r, forced, fixed);
            BlockMask f_want = forced;
            for (int64_t i = 0; i < cap_tiles(fixed, tiles) - forced.count(); ++i)
                f_want.set(by_rank[i] / nb, by_rank[i] % nb);
            CHECK(f == f_want);
            // Metrics from the used ranking equal those from a fresh one.
            const ObjectiveOptions obj;
            const OrderMetrics shared = order_metrics(st, a, r, adaptive, obj);
            const OrderMetrics fresh = order_metrics(st, a, forced, adaptive, obj);
            CHECK(shared.objective == fresh.objective);
            CHECK(shared.free_recall == Approx(fresh.free_recall).epsilon(1e-12));
            CHECK(shared.recall == fresh.recall);
        }
    }
}

TEST_CASE("the cap stops a recall mask short, the floor pads it", "[mask][recall]") {
    const TileStats st = random_stats(kSmallGrid, 5);
    const BlockMask none(4);
    const BlockMask capped = build_mask(st, none, recall_options(1.0, 0.25));
    CHECK(capped.count() == 4);
    CHECK(mask_recall(capped, st.mass) < 1.0);
    const BlockMask floored = build_mask(st, none, recall_options(0.01, 1.0, 0.5));
    CHECK(floored.count() == 8);
    CHECK(build_mask(st, none, recall_options(0.01)).count() == 1);
}

TEST_CASE("a recall mask stops as soon as the target is reached exactly", "[mask][recall]") {
    TileStats st(kSmallGrid);
    st.mass[5] = 0.5, st.mass[9] = 0.25, st.mass[2] = 0.125, st.mass[12] = 0.125;  // exact in binary
    const BlockMask none(4);
    const BlockMask exact = build_mask(st, none, recall_options(0.75));
    CHECK(exact.count() == 2);
    CHECK(exact.get(1, 1));
    CHECK(exact.get(2, 1));
    CHECK(build_mask(st, none, recall_options(0.75 + 1e-9)).count() == 3);
    CHECK(build_mask(st, none, recall_options(1.0)).count() == 4);  // zero-mass tiles are not needed
}

TEST_CASE("a head with all its mass in one tile keeps one tile", "[mask][recall]") {
    TileStats st(kSmallGrid);
    st.mass[14] = 3.0;
    const BlockMask m = build_mask(st, BlockMask(4), recall_options(0.999));
    CHECK(m.count() == 1);
    CHECK(m.get(3, 2));
}

TEST_CASE("uniform mass needs the recall share of the tiles", "[mask][recall]") {
    TileStats st(kSmallGrid);
    std::fill(st.mass.begin(), st.mass.end(), 1.0);
    for (auto [recall, want] : {std::pair{0.5, 8}, {0.3, 5}, {1.0, 16}, {0.01, 1}}) {
        INFO("recall " << recall);
        const BlockMask m = build_mask(st, BlockMask(4), recall_options(recall));
        CHECK(m.count() == want);
        for (int64_t t = 0; t < want; ++t) CHECK(m.get(t / 4, t % 4));  // ties by tile index
    }
}

TEST_CASE("bad recall options name the parameter", "[mask][recall]") {
    const TileStats st(kSmallGrid);
    const BlockMask none(4);
    const auto parameter_of = [&](const MaskOptions& opt) {
        try {
            build_mask(st, none, opt);
        } catch (const ParameterError& e) {
            return e.parameter();
        }
        return std::string("(accepted)");
    };
    CHECK(parameter_of(recall_options(0.0)) == "recall");
    CHECK(parameter_of(recall_options(1.5)) == "recall");
    CHECK(parameter_of(recall_options(0.9, 1.0, -0.1)) == "min_density");
    CHECK(parameter_of(recall_options(0.9, 0.5, 0.6)) == "min_density");
    MaskOptions floor_alone{0.5, false, false};
    floor_alone.min_density = 0.1;
    CHECK(parameter_of(floor_alone) == "min_density");
    CHECK(parameter_of(recall_options(0.9, 0.5, 0.5)) == "(accepted)");
    // The forced-share check applies to the cap.
    const TokenLayout layout{{1, 4, 16}, 64, TextPosition::prefix};  // 2 tiles, one of text
    const TileGrid grid{layout.tokens(), 64};
    MaskOptions opt = recall_options(0.5, 0.5);
    opt.force_text = true;
    CHECK_THROWS_AS(build_mask(TileStats(grid), forced_tiles(layout, grid, opt), opt), ParameterError);
}

namespace {
// Masks chosen G tile rows at a time, written out plainly: every (group, column) unit's non-forced
// tiles, ranked by their mean mass (ties: lower unit), taken while they fit under the cap until the
// count to reach: the cap, or with a recall target the larger of the floor and the tiles of the
// shortest ranked prefix reaching it.
BlockMask reference_grouped_mask(const TileStats& st, const BlockMask& forced, const MaskOptions& opt) {
    const int64_t nb = forced.tiles_per_side(), G = opt.rows_per_group;
    struct Unit {
        double mean, mass;
        int64_t size, g, c;
    };
    std::vector<Unit> units;
    double total = 0, forced_mass = 0;
    int64_t n_forced = 0;
    for (int64_t t = 0; t < nb * nb; ++t) {
        total += st.mass[t];
        if (forced.get(t / nb, t % nb)) forced_mass += st.mass[t], ++n_forced;
    }
    for (int64_t g = 0; g * G < nb; ++g)
        for (int64_t c = 0; c < nb; ++c) {
            Unit u{0, 0, 0, g, c};
            for (int64_t r = g * G; r < nb && r < g * G + G; ++r)
                if (!forced.get(r, c)) u.mass += st.mass[r * nb + c], ++u.size;
            if (u.size == 0) continue;
            u.mean = u.mass / double(u.size);
            units.push_back(u);
        }
    std::stable_sort(units.begin(), units.end(), [](const Unit& a, const Unit& b) { return a.mean > b.mean; });
    const int64_t cap = cap_tiles(opt, nb * nb);
    int64_t want = cap;
    if (opt.recall) {
        int64_t prefix = n_forced;
        double kept = forced_mass;
        for (const Unit& u : units) {
            if (kept >= *opt.recall * total) break;
            kept += u.mass, prefix += u.size;
        }
        want = std::max(prefix, floor_tiles(opt, nb * nb));
    }
    BlockMask m = forced;
    int64_t count = n_forced;
    for (const Unit& u : units)
        if (count < want && count + u.size <= cap) {
            count += u.size;
            for (int64_t r = u.g * G; r < nb && r < u.g * G + G; ++r) m.set(r, u.c);
        }
    return m;
}

// Whether, outside the forced tiles, the rows of each group of G keep the same columns.
bool groups_agree(const BlockMask& m, const BlockMask& forced, int64_t G) {
    const int64_t nb = m.tiles_per_side();
    for (int64_t r = 0; r < nb; ++r)
        for (int64_t c = 0; c < nb; ++c)
            for (int64_t q = r - r % G; q < std::min(nb, r - r % G + G); ++q)
                if (!forced.get(r, c) && !forced.get(q, c) && m.get(q, c) != m.get(r, c)) return false;
    return true;
}
}  // namespace

TEST_CASE("masks chosen rows at a time keep one set of columns per group of rows", "[mask][rows]") {
    const TokenLayout layout{{5, 7, 9}, 40, TextPosition::prefix};  // N = 355: text rows 0-2, ragged at 16
    for (bool force : {true, false}) {  // without forced rows the last group (23 = 3 x 7 + 2) is a short one
        const TileGrid grid{layout.tokens(), 16};
        const int64_t nb = grid.tiles_per_side();  // 23: with forcing, 32% of the tiles forced
        for (int rows : {2, 3, 5, 16}) {
            for (double density : {0.45, 0.6, 0.85}) {
                for (bool recall : {false, true}) {
                    INFO("forced " << force << ", rows " << rows << ", density " << density << ", recall " << recall);
                    MaskOptions opt{density, force, force};
                    if (recall) opt.recall = 0.6, opt.min_density = 0.4;
                    opt.rows_per_group = rows;
                    const BlockMask forced = forced_tiles(layout, grid, opt);
                    const TileStats st = random_stats(grid, 11 + uint64_t(rows));
                    const BlockMask m = build_mask(st, forced, opt);
                    CHECK(m.bytes() == reference_grouped_mask(st, forced, opt).bytes());
                    CHECK(groups_agree(m, forced, rows));
                    for (int64_t t = 0; t < nb * nb; ++t)
                        if (forced.get(t / nb, t % nb)) CHECK(m.get(t / nb, t % nb));
                    const int64_t cap = cap_tiles(opt, nb * nb), unit = std::min<int64_t>(rows, nb);
                    CHECK(m.count() <= cap);
                    if (!recall) CHECK(m.count() > cap - unit);  // short of the target by less than a unit
                    if (recall) {
                        CHECK(m.count() >= std::min(cap - unit + 1, floor_tiles(opt, nb * nb)));  // the floor holds
                        if (m.count() <= cap - unit) CHECK(mask_recall(m, st.mass) >= 0.6);  // not capped: reached
                    }
                }
            }
        }
    }
}

TEST_CASE("masks rows at a time: the floor is reached, past by less than a unit", "[mask][rows]") {
    TileStats st(TileGrid{6 * 64, 64});  // 6 x 6 tiles, nothing forced, all the mass in one tile
    st.mass[0] = 1.0;
    MaskOptions opt = recall_options(0.5, 1.0, 5.0 / 36);  // the floor: 5 tiles
    opt.rows_per_group = 3;
    const BlockMask m = build_mask(st, BlockMask(6), opt);
    CHECK(m.count() == 6);  // two units of three: the floor needs the second
    CHECK(m.get(0, 0));
    CHECK(m.get(2, 0));
    CHECK(m.get(0, 1));
    opt.min_density = 0;
    CHECK(build_mask(st, BlockMask(6), opt).count() == 3);  // the recall alone: the heaviest unit
}

TEST_CASE("masks rows at a time: units of equal mass per tile go by group, then column", "[mask][rows]") {
    TileStats st(TileGrid{4 * 64, 64});  // 4 x 4 tiles, uniform mass, groups of rows 0-2 and 3
    std::fill(st.mass.begin(), st.mass.end(), 1.0);
    MaskOptions opt{0.5, false, false};
    opt.rows_per_group = 3;
    const BlockMask m = build_mask(st, BlockMask(4), opt);  // 8 tiles: columns 0 and 1 of rows 0-2, then row 3's
    CHECK(m.count() == 8);
    for (int64_t r = 0; r < 3; ++r) CHECK((m.get(r, 0) && m.get(r, 1) && !m.get(r, 2)));
    CHECK((m.get(3, 0) && m.get(3, 1) && !m.get(3, 2)));
    opt.rows_per_group = kMaxMaskRows;  // more rows than the grid has: one group, whole columns
    const BlockMask whole = build_mask(st, BlockMask(4), opt);
    CHECK(whole.count() == 8);
    for (int64_t r = 0; r < 4; ++r) CHECK((whole.get(r, 0) && whole.get(r, 1) && !whole.get(r, 2)));
}

TEST_CASE("one row at a time, the grouped rule is the tile rule", "[mask][rows]") {
    const TokenLayout layout{{3, 9, 11}, 30, TextPosition::suffix};
    const TileGrid grid{layout.tokens(), 32};
    for (uint64_t seed = 1; seed <= 4; ++seed) {
        const TileStats st = random_stats(grid, seed);
        for (MaskOptions opt : {MaskOptions{0.4, true, true}, recall_options(0.7, 0.9, 0.35), recall_options(0.95)}) {
            opt.force_text = opt.force_ragged = true;
            const BlockMask forced = forced_tiles(layout, grid, opt);
            CHECK(build_grouped_mask(st, forced, opt).bytes() == build_mask(st, forced, opt).bytes());
        }
    }
}

TEST_CASE("masks rows at a time: a bad count names the option", "[mask][rows]") {
    MaskOptions opt{0.5, false, false};
    for (int rows : {0, -1, kMaxMaskRows + 1}) {
        INFO("rows " << rows);
        opt.rows_per_group = rows;
        for (bool grouped : {false, true}) {
            try {
                (void)(grouped ? build_grouped_mask(TileStats(kSmallGrid), BlockMask(4), opt)
                               : build_mask(TileStats(kSmallGrid), BlockMask(4), opt));
                FAIL("accepted");
            } catch (const ParameterError& e) {
                CHECK(e.parameter() == "mask_rows");
            }
        }
    }
}

TEST_CASE("with a recall target the objective prefers orders needing fewer tiles", "[objective][recall]") {
    TileStats focused(kSmallGrid), diffuse(kSmallGrid);
    focused.mass[0] = 9.0, focused.mass[1] = 1.0;
    std::fill(diffuse.mass.begin(), diffuse.mass.end(), 1.0);
    const BlockMask none(4);
    const MaskOptions opt = recall_options(0.9, 0.5);  // the cap does not limit the score
    const ObjectiveOptions oo;
    const OrderMetrics f = order_metrics(focused, build_mask(focused, none, opt), none, opt, oo);
    const OrderMetrics d = order_metrics(diffuse, build_mask(diffuse, none, opt), none, opt, oo);
    CHECK(f.objective == Approx(1.0 - 1.0 / 16));  // one tile holds 90%
    CHECK(d.objective == Approx(1.0 - 15.0 / 16));  // 15 of 16 uniform tiles reach 90%
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

// The selection behind heaviest(k) (a radix select on the masses' bits) against a sort, for k
// growing and shrinking as an order's mask and metrics ask, on masses made to trip it: exact ties,
// zeros of both signs, neighbours one ulp apart, a range of 2^600, one mass everywhere.
TEST_CASE("heaviest(k) is the k heaviest free tiles for any sequence of k", "[mask]") {
    // A small grid (below 4096 free tiles: 8-bit digits) and a large one (16-bit digits).
    const auto [grid, layout] = GENERATE(table<TileGrid, TokenLayout>(
        {{TileGrid{1000, 16}, TokenLayout{{2, 20, 20}, 200, TextPosition::prefix}},
         {TileGrid{4000, 16}, TokenLayout{{4, 30, 30}, 400, TextPosition::prefix}}}));
    const int64_t nb = grid.tiles_per_side(), tiles = nb * nb;
    INFO("tiles " << tiles);
    const BlockMask forced = forced_tiles(layout, grid, MaskOptions{0.9, true, true});
    std::mt19937_64 rng(11);
    for (int kind = 0; kind < 5; ++kind) {
        TileStats st(grid);
        for (int64_t t = 0; t < tiles; ++t) {
            const double u = std::uniform_real_distribution<double>(0, 1)(rng);
            switch (kind) {
                case 0: st.mass[t] = u; break;
                case 1: st.mass[t] = std::floor(u * 4); break;                    // ties everywhere
                case 2: st.mass[t] = u < 0.5 ? (u < 0.25 ? -0.0 : 0.0) : 1.0; break;  // signed zeros
                case 3: st.mass[t] = std::nextafter(1.0, 2.0 * (rng() % 3)); break;  // ulps apart
                default: st.mass[t] = std::ldexp(u, int(rng() % 600) - 300); break;
            }
        }
        std::vector<int64_t> by_rank;
        for (int64_t t = 0; t < tiles; ++t)
            if (!forced.get_tile(t)) by_rank.push_back(t);
        std::stable_sort(by_rank.begin(), by_rank.end(), [&](int64_t a, int64_t b) { return st.mass[a] > st.mass[b]; });
        TileRanking r(st, forced);
        const int64_t free = r.free_count();
        bool first = true;
        for (const int64_t k : {free / 3, free / 2, free / 5, free - 1, int64_t(1), free / 2 + 7, free}) {
            INFO("kind " << kind << " k " << k);
            const TileRanking::Tile* top = r.heaviest(k);
            std::vector<int64_t> got(static_cast<size_t>(k)), want(by_rank.begin(), by_rank.begin() + k);
            for (int64_t i = 0; i < k; ++i) got[static_cast<size_t>(i)] = top[i].index;
            // The chosen keep their order: on a fresh ranking (tiles in index order) the front ascends,
            // whatever the platform's sort algorithms.
            if (std::exchange(first, false)) REQUIRE(std::is_sorted(got.begin(), got.end()));
            std::sort(got.begin(), got.end());
            std::sort(want.begin(), want.end());
            REQUIRE(got == want);
        }
    }
}
