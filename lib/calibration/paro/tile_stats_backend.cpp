#include "paro/tile_stats_backend.hpp"

#include <algorithm>

#include "paro/error.hpp"
#include "paro/output_error.hpp"

namespace paro {

double TileStats::total_mass() const {
    double s = 0;
    for (double m : mass) s += m;
    return s;
}

void TileStats::clear() {
    std::fill(mass.begin(), mass.end(), 0.0);
    std::fill(max.begin(), max.end(), 0.0f);
    std::fill(below_eps.begin(), below_eps.end(), int64_t{0});
}

void TileStats::accumulate(const TileStats& o) {
    PARO_ASSERT(o.mass.size() == mass.size());
    for (size_t t = 0; t < mass.size(); ++t) {
        mass[t] += o.mass[t];
        max[t] = std::max(max[t], o.max[t]);
        below_eps[t] += o.below_eps[t];
    }
}

TileStatsBackend::TileStatsBackend(const TokenLayout& layout, TileStatsOptions options)
    : opt_(options), grid_{layout.tokens(), options.block}, perms_(make_all_permutations(layout)) {
    if (options.block <= 0) throw ParameterError("block", "the tile size must be positive");
    for (int o = 0; o < kNumOrders; ++o) {
        tile_of_[o].resize(grid_.tokens);
        for (int64_t i = 0; i < grid_.tokens; ++i)
            tile_of_[o][i] = static_cast<int32_t>(perms_[o].position[i] / options.block);
    }
}

std::array<double, kNumOrders> TileStatsBackend::output_error(const HeadSlice& slice,
                                                              const std::array<BlockMask, kNumOrders>& masks) const {
    return masked_output_error(slice, *this, masks);
}

}  // namespace paro
