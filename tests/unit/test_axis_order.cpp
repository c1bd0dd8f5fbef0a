// Orders and permutations: round trips, text tokens in place, and the rule that the innermost
// named axis varies fastest, on odd grids and sizes of 1.
#include <set>

#include "catch.hpp"
#include "paro/axis_order.hpp"
#include "paro/error.hpp"

using namespace paro;

namespace {
std::vector<TokenLayout> layouts() {
    return {
        {{3, 5, 7}, 0, TextPosition::prefix},   {{3, 5, 7}, 11, TextPosition::prefix},
        {{3, 5, 7}, 11, TextPosition::suffix},  {{1, 1, 1}, 0, TextPosition::prefix},
        {{1, 9, 1}, 3, TextPosition::suffix},   {{13, 30, 45}, 226, TextPosition::prefix},
        {{2, 1, 65}, 1, TextPosition::prefix},
    };
}
}  // namespace

TEST_CASE("order names round trip and reject strangers", "[order]") {
    for (AxisOrder o : kAllOrders) CHECK(parse_axis_order(to_string(o)) == o);
    CHECK_THROWS_AS(parse_axis_order("fhw"), InputError);
    CHECK_THROWS_AS(parse_axis_order("FFW"), InputError);
    std::set<std::string> names;
    for (AxisOrder o : kAllOrders) names.insert(to_string(o));
    CHECK(names.size() == 6);
}

TEST_CASE("permutation and inverse are inverse bijections, text fixed", "[order]") {
    for (const TokenLayout& L : layouts())
        for (AxisOrder o : kAllOrders) {
            const Permutation p = make_permutation(L, o);
            REQUIRE(static_cast<int64_t>(p.gather.size()) == L.tokens());
            for (int64_t i = 0; i < L.tokens(); ++i) {
                CHECK(p.position[p.gather[i]] == i);
                CHECK(p.gather[p.position[i]] == i);
                if (L.is_text(i)) CHECK(p.gather[i] == i);
            }
            if (o == AxisOrder::FHW) CHECK(p.is_identity());
        }
}

TEST_CASE("only raster order is the identity on a grid without unit axes", "[order]") {
    const TokenLayout L{{3, 5, 7}, 4, TextPosition::suffix};
    for (AxisOrder o : kAllOrders) CHECK(make_permutation(L, o).is_identity() == (o == AxisOrder::FHW));
}

TEST_CASE("permuted sequence enumerates coordinates with the innermost axis fastest", "[order]") {
    const TokenLayout L{{3, 4, 5}, 6, TextPosition::prefix};
    for (AxisOrder o : kAllOrders) {
        const auto axes = axes_of(o);
        const Permutation p = make_permutation(L, o);
        // Independent reference: compute the permuted position from coordinates directly.
        for (int64_t t = 0; t < L.tokens(); ++t) {
            if (L.is_text(t)) continue;
            const VideoCoord c = L.coord(t);
            const int64_t xyz[3] = {c.f, c.h, c.w};
            const int64_t a = xyz[axes[0]], b = xyz[axes[1]], d = xyz[axes[2]];
            const int64_t expect = L.video_begin() + (a * L.grid[axes[1]] + b) * L.grid[axes[2]] + d;
            CHECK(p.position[t] == expect);
        }
    }
}

TEST_CASE("layout coordinates round trip and validation", "[layout]") {
    for (const TokenLayout& L : layouts())
        for (int64_t t = 0; t < L.tokens(); ++t)
            if (!L.is_text(t)) CHECK(L.token(L.coord(t)) == t);
    TokenLayout bad{{0, 3, 3}, 0, TextPosition::prefix};
    CHECK_THROWS_AS(bad.validate(), InputError);
    CHECK_THROWS_AS(parse_text_position("middle"), InputError);
}
