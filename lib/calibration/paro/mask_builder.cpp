#include "paro/mask_builder.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "paro/error.hpp"

namespace paro {

BlockMask forced_tiles(const TokenLayout& layout, const TileGrid& grid, const MaskOptions& opt) {
    const int64_t nb = grid.tiles_per_side();
    BlockMask m(nb);
    std::vector<bool> dense(static_cast<size_t>(nb), false);
    if (opt.force_text && layout.text_tokens > 0) {
        const int64_t first = layout.text_begin() / grid.block;
        const int64_t last = (layout.text_begin() + layout.text_tokens - 1) / grid.block;
        for (int64_t t = first; t <= last; ++t) dense[t] = true;
    }
    if (opt.force_ragged && grid.tokens % grid.block != 0) dense[nb - 1] = true;
    for (int64_t t = 0; t < nb; ++t)
        if (dense[t])
            for (int64_t u = 0; u < nb; ++u) m.set(t, u), m.set(u, t);
    return m;
}

int64_t cap_tiles(const MaskOptions& opt, int64_t tiles) {
    return std::max<int64_t>(1, std::llround(opt.density * static_cast<double>(tiles)));
}

int64_t floor_tiles(const MaskOptions& opt, int64_t tiles) {
    return std::llround(opt.min_density * static_cast<double>(tiles));
}

BlockMask build_mask(const TileStats& stats, const BlockMask& forced, const MaskOptions& opt) {
    if (!(opt.density > 0.0 && opt.density <= 1.0))
        throw ParameterError("density", fmt::format("must be in (0, 1], got {}", opt.density));
    if (opt.recall && !(*opt.recall > 0.0 && *opt.recall <= 1.0))
        throw ParameterError("recall", fmt::format("must be in (0, 1], got {}", *opt.recall));
    if (!(opt.min_density >= 0.0 && opt.min_density <= 1.0))
        throw ParameterError("min_density", fmt::format("must be in [0, 1], got {}", opt.min_density));
    if (opt.min_density > 0 && !opt.recall)
        throw ParameterError("min_density", "is a floor under the recall rule; it needs a recall target");
    if (opt.min_density > opt.density)
        throw ParameterError("min_density", fmt::format("{} is above the density cap {}", opt.min_density, opt.density));
    const int64_t nb = stats.grid.tiles_per_side(), tiles = nb * nb;
    PARO_ASSERT(forced.tiles_per_side() == nb);
    const int64_t target = cap_tiles(opt, tiles);
    const int64_t n_forced = forced.count();
    if (n_forced > target)
        throw ParameterError("density",
                             fmt::format("{} keeps {} of {} tiles, but {} are forced dense (text rows/columns, "
                                         "ragged edge): use a density of at least {:.3f}, or turn off force_text / "
                                         "force_ragged",
                                     opt.density, target, tiles, n_forced,
                                     static_cast<double>(n_forced) / static_cast<double>(tiles)));
    BlockMask m = forced;
    std::vector<int64_t> candidates;
    candidates.reserve(static_cast<size_t>(tiles - n_forced));
    for (int64_t t = 0; t < tiles; ++t)
        if (!forced.get(t / nb, t % nb)) candidates.push_back(t);
    auto by_mass = [&](int64_t a, int64_t b) {
        return stats.mass[a] != stats.mass[b] ? stats.mass[a] > stats.mass[b] : a < b;
    };
    if (!opt.recall) {
        const int64_t want = target - n_forced;
        std::partial_sort(candidates.begin(), candidates.begin() + want, candidates.end(), by_mass);
        for (int64_t i = 0; i < want; ++i) m.set(candidates[i] / nb, candidates[i] % nb);
        return m;
    }
    // Recall rule: forced mass first, then tiles by descending mass until the kept mass reaches
    // recall * total; never fewer tiles than the floor, never more than the cap.
    std::sort(candidates.begin(), candidates.end(), by_mass);
    double total = 0, kept = 0;
    for (int64_t t = 0; t < tiles; ++t) {
        total += stats.mass[t];
        if (forced.get(t / nb, t % nb)) kept += stats.mass[t];
    }
    const double needed = *opt.recall * total;
    const int64_t floor = floor_tiles(opt, tiles);
    for (int64_t count = n_forced, i = 0; count < target && (count < floor || kept < needed); ++count, ++i) {
        m.set(candidates[i] / nb, candidates[i] % nb);
        kept += stats.mass[candidates[i]];
    }
    return m;
}

double mask_recall(const BlockMask& mask, const std::vector<double>& mass) {
    const int64_t nb = mask.tiles_per_side();
    double kept = 0, total = 0;
    for (int64_t t = 0; t < nb * nb; ++t) {
        total += mass[t];
        if (mask.get(t / nb, t % nb)) kept += mass[t];
    }
    return total > 0 ? kept / total : 1.0;
}

}  // namespace paro
