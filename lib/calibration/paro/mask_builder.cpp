#include "paro/mask_builder.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
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

namespace {
bool heavier(const TileRanking::Tile& a, const TileRanking::Tile& b) {
    return a.mass != b.mass ? a.mass > b.mass : a.index < b.index;
}

// A mass as an integer of the same order: a non-negative double's bits compare as the double
// (-0.0 is made +0.0 first; masses are never negative).
uint64_t mass_key(double m) {
    uint64_t k;
    m += 0.0;
    std::memcpy(&k, &m, sizeof k);
    return k;
}

// Moves the k heaviest of [first, last) (by `heavier`) to its front, in the order they had: the set
// std::nth_element would, found by a most-significant-digit radix select on the masses' bits
// (each pass counting only the keys that agree with the digits found so far), then one partition
// that keeps the chosen in their order, so the front (and sums over it) is the same on every
// platform.
// nth_element's comparisons branch unpredictably on masses: this made the scoring of a head 20%
// faster at 77k tiles (six orders, two selections each). Digits are 16 bits, or 8 below
// kWideDigitsMin tiles, where clearing a 256 KiB histogram each pass would cost more than the keys.
constexpr int64_t kWideDigitsMin = 4096;
void select_heaviest(TileRanking::Tile* first, int64_t k, TileRanking::Tile* last) {
    const int64_t n = last - first;
    if (k <= 0 || k >= n) return;
    const int bits = n < kWideDigitsMin ? 8 : 16;
    const uint64_t digit_mask = (uint64_t(1) << bits) - 1;
    thread_local std::vector<uint32_t> count;
    count.resize(size_t(1) << bits);
    thread_local std::vector<uint64_t> keys;
    keys.resize(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) keys[static_cast<size_t>(i)] = mass_key(first[i].mass);
    // The boundary: every key above `prefix` (on the digits found so far) is taken, and `need`
    // more from the `equal` keys that agree with it there.
    uint64_t prefix = 0;
    int shift = 64;
    int64_t need = k, equal = n;
    while (shift > 0 && need < equal) {
        const int high = shift;  // digits above this bit are fixed
        shift -= bits;
        std::fill(count.begin(), count.end(), 0u);
        for (const uint64_t key : keys)
            if (high == 64 || key >> high == prefix >> high) ++count[(key >> shift) & digit_mask];
        int64_t digit = static_cast<int64_t>(digit_mask), above = 0;
        while (above + count[static_cast<size_t>(digit)] < need) above += count[static_cast<size_t>(digit--)];
        need -= above;
        equal = count[static_cast<size_t>(digit)];
        prefix |= static_cast<uint64_t>(digit) << shift;
    }
    const uint64_t top = prefix >> shift;
    // Masses equal to the boundary on every bit are taken lowest index first.
    int64_t last_index = std::numeric_limits<int64_t>::max();
    if (need < equal) {
        std::vector<int64_t> tied;
        for (int64_t i = 0; i < n; ++i)
            if (keys[static_cast<size_t>(i)] == prefix) tied.push_back(first[i].index);
        std::nth_element(tied.begin(), tied.begin() + (need - 1), tied.end());
        last_index = tied[static_cast<size_t>(need - 1)];
    }
    int64_t front = 0;  // Lomuto: keys past i are still those of first[i]
    for (int64_t i = 0; i < n; ++i) {
        const uint64_t key = keys[static_cast<size_t>(i)] >> shift;
        if (key > top || (key == top && first[i].index <= last_index)) std::swap(first[front++], first[i]);
    }
    PARO_ASSERT(front == k);
}
}  // namespace

TileRanking::TileRanking(const TileStats& stats, const BlockMask& forced, std::vector<Tile> storage)
    : tiles_(std::move(storage)) {
    const int64_t nb = stats.grid.tiles_per_side(), n = nb * nb;
    PARO_ASSERT(forced.tiles_per_side() == nb);
    // Sums in locals, tiles through a pointer into storage already sized (a resize to the size it
    // had writes nothing): a tile stored through push_back may alias the double members, which the
    // compiler then stored and reloaded on every tile (a quarter of the scoring's time).
    tiles_.resize(static_cast<size_t>(n));
    Tile* out = tiles_.data();
    double total = 0, forced_mass = 0, free_mass = 0;
    int64_t free = 0;
    const double* mass = stats.mass.data();
    for (int64_t t = 0; t < n; ++t) {
        const double m = mass[t];
        total += m;
        if (forced.get_tile(t)) {
            forced_mass += m;
        } else {
            free_mass += m;
            out[free++] = {m, t};
        }
    }
    tiles_.resize(static_cast<size_t>(free));
    total_mass_ = total;
    forced_mass_ = forced_mass;
    free_mass_ = free_mass;
    forced_count_ = n - free;
}

const TileRanking::Tile* TileRanking::heaviest(int64_t k) {
    PARO_ASSERT(k >= 0 && k <= free_count());
    if (k > sorted_ && k != front_) {
        // The sorted head stays; a smaller k only reorders the front already partitioned, a larger
        // one takes the rest from past it.
        Tile* tiles = tiles_.data();
        if (front_ > sorted_ && k > front_)
            select_heaviest(tiles + front_, k - front_, tiles + free_count());
        else
            select_heaviest(tiles + sorted_, k - sorted_, tiles + (front_ >= k ? front_ : free_count()));
        front_ = k;
    }
    return tiles_.data();
}

int64_t TileRanking::tiles_for_recall(double recall) {
    const double needed = recall * total_mass_;
    double kept = forced_mass_;
    int64_t count = 0;
    for (;;) {
        while (count < sorted_ && kept < needed) kept += tiles_[count++].mass;
        if (kept >= needed || count == free_count()) return count;
        // Sort only as far as the prefix goes: a partition, then a sort of the new part, doubling.
        const int64_t k = std::min(free_count(), std::max<int64_t>(2 * sorted_, 1024));
        heaviest(k);
        std::sort(tiles_.begin() + sorted_, tiles_.begin() + k, heavier);
        sorted_ = front_ = k;
    }
}

namespace {
void check_options(const MaskOptions& opt) {
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
    if (opt.rows_per_group < 1 || opt.rows_per_group > kMaxMaskRows)
        throw ParameterError("mask_rows", fmt::format("must be 1 to {}, got {}", kMaxMaskRows, opt.rows_per_group));
}

// The density target in tiles; throws when the forced tiles alone pass it.
int64_t checked_target(const MaskOptions& opt, int64_t tiles, int64_t n_forced) {
    check_options(opt);
    const int64_t target = cap_tiles(opt, tiles);
    if (n_forced > target)
        throw ParameterError("density",
                             fmt::format("{} keeps {} of {} tiles, but {} are forced dense (text rows/columns, "
                                         "ragged edge): use a density of at least {:.3f}, or turn off force_text / "
                                         "force_ragged",
                                     opt.density, target, tiles, n_forced,
                                     static_cast<double>(n_forced) / static_cast<double>(tiles)));
    return target;
}
}  // namespace

BlockMask build_mask(const TileStats& stats, const BlockMask& forced, const MaskOptions& opt) {
    if (opt.rows_per_group > 1) return build_grouped_mask(stats, forced, opt);
    TileRanking ranking(stats, forced);
    return build_tile_mask(ranking, forced, opt);
}

BlockMask build_tile_mask(TileRanking& ranking, const BlockMask& forced, const MaskOptions& opt) {
    const int64_t nb = forced.tiles_per_side(), tiles = nb * nb;
    const int64_t n_forced = ranking.forced_count();
    const int64_t target = checked_target(opt, tiles, n_forced);
    // Fixed density: the heaviest tiles up to the target. Recall rule: forced mass first, then
    // tiles by descending mass until the kept mass reaches recall * total; never fewer tiles
    // than the floor, never more than the cap.
    const int64_t keep =
        opt.recall ? std::min(target, std::max(floor_tiles(opt, tiles), n_forced + ranking.tiles_for_recall(*opt.recall)))
                   : target;
    BlockMask m = forced;
    const TileRanking::Tile* best = ranking.heaviest(keep - n_forced);
    for (int64_t i = 0; i < keep - n_forced; ++i) m.set_tile(best[i].index);
    return m;
}

BlockMask build_grouped_mask(const TileStats& stats, const BlockMask& forced, const MaskOptions& opt) {
    check_options(opt);
    const int64_t nb = forced.tiles_per_side(), G = opt.rows_per_group;
    PARO_ASSERT(stats.grid.tiles_per_side() == nb);
    struct Unit {
        double per_tile, mass;  // ranked by per_tile: one division each, so the order is total
        int64_t size, group, column;
    };
    std::vector<Unit> units;
    int64_t n_forced = 0;
    double forced_mass = 0, total = 0;
    for (int64_t g = 0; g * G < nb; ++g)
        for (int64_t c = 0; c < nb; ++c) {
            Unit u{0.0, 0.0, 0, g, c};
            for (int64_t r = g * G; r < std::min(nb, g * G + G); ++r) {
                const double m = stats.mass[static_cast<size_t>(r * nb + c)];
                total += m;
                if (forced.get(r, c)) {
                    forced_mass += m;
                    ++n_forced;
                } else {
                    u.mass += m;
                    ++u.size;
                }
            }
            if (u.size == 0) continue;
            u.per_tile = u.mass / static_cast<double>(u.size);
            units.push_back(u);
        }
    const int64_t cap = checked_target(opt, nb * nb, n_forced);
    std::sort(units.begin(), units.end(), [](const Unit& a, const Unit& b) {
        if (a.per_tile != b.per_tile) return a.per_tile > b.per_tile;
        return a.group != b.group ? a.group < b.group : a.column < b.column;
    });
    // Tiles to reach: the target; with a recall target the ranked prefix that reaches it, or the floor.
    int64_t want = cap;
    if (opt.recall) {
        int64_t prefix = n_forced;
        double kept = forced_mass;
        for (size_t i = 0; i < units.size() && kept < *opt.recall * total; ++i) kept += units[i].mass, prefix += units[i].size;
        want = std::max(floor_tiles(opt, nb * nb), prefix);
    }
    BlockMask m = forced;
    int64_t count = n_forced;
    for (const Unit& u : units) {
        if (count >= want) break;
        if (count + u.size > cap) continue;  // a smaller unit further down may still fit
        count += u.size;
        for (int64_t r = u.group * G; r < std::min(nb, u.group * G + G); ++r) m.set(r, u.column);
    }
    return m;
}

namespace {
template <typename T>
double kept_share(const BlockMask& mask, const T* mass) {
    const int64_t tiles = mask.tiles_per_side() * mask.tiles_per_side();
    const uint8_t* bits = mask.bytes().data();
    double kept = 0, total = 0;
    for (int64_t t = 0; t < tiles; ++t) {
        const double m = mass[t];
        total += m;
        // Without a branch (kept tiles fall at random): adding +0 leaves a sum of masses as it is.
        kept += ((bits[t >> 3] >> (t & 7)) & 1u) ? m : 0.0;
    }
    return total > 0 ? kept / total : 1.0;
}
}  // namespace

double mask_recall(const BlockMask& mask, const double* mass) { return kept_share(mask, mass); }
double mask_recall(const BlockMask& mask, const float* mass) { return kept_share(mask, mass); }

}  // namespace paro
