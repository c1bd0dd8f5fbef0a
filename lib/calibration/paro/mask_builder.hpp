#pragma once
// Static block masks from tile statistics: keep the forced tiles, then the tiles with the most
// attention mass (ties by tile index) until the requested fraction of ALL tiles is reached or,
// with a recall target, until the kept mass reaches that share of the total (between a floor
// and a cap on the fraction of tiles).
#include <optional>

#include "paro/block_mask.hpp"
#include "paro/tile_stats.hpp"

namespace paro {

struct MaskOptions {
    double density = 0.5;      // fraction of all nb x nb tiles the kernel computes (forced included);
                               // with a recall target, the most it may compute (the cap)
    bool force_text = true;    // tile rows and columns holding text tokens are kept dense
    bool force_ragged = true;  // the ragged last tile row and column are kept dense
    // Per-mask adaptive density: the fewest tiles whose mass reaches this share of the total.
    std::optional<double> recall;
    double min_density = 0;    // with a recall target: the fewest tiles kept (the floor)
    // Tile rows whose key tiles are chosen together (1 to kMaxMaskRows; 1: tile by tile): rows
    // g * G .. g * G + G - 1 keep the same columns outside the forced tiles (build_grouped_mask). 3: the
    // Hopper kernel at head dim 128 computes such rows as triples on shared K/V stages (docs/method.md,
    // "Masks chosen rows at a time").
    int rows_per_group = 1;
};
constexpr int kMaxMaskRows = 16;

// Of `tiles` tiles: how many the density keeps (the target, or with recall the cap; rounded, at
// least one), and how many min_density keeps (the floor; rounded).
int64_t cap_tiles(const MaskOptions& opt, int64_t tiles);
int64_t floor_tiles(const MaskOptions& opt, int64_t tiles);

// The tiles kept regardless of mass. Text tokens keep their place in every order, so this
// depends only on the layout and tile size.
BlockMask forced_tiles(const TokenLayout& layout, const TileGrid& grid, const MaskOptions& opt);

// The tiles outside the forced ones ranked by mass, heaviest first (ties: lower tile index first,
// so masks are deterministic). One ranking serves an order's mask and its recall metrics
// (objective.hpp), and it is only as sorted as they need: a top-k partition (linear time) for
// fixed densities, a sorted prefix as long as the recall target needs.
class TileRanking {
public:
    struct Tile {
        double mass;
        int64_t index;  // r * nb + c
    };
    // storage: a vector to reuse (its capacity), e.g. what release() returned.
    TileRanking(const TileStats& stats, const BlockMask& forced, std::vector<Tile> storage = {});
    std::vector<Tile> release() && { return std::move(tiles_); }

    int64_t free_count() const { return static_cast<int64_t>(tiles_.size()); }
    int64_t forced_count() const { return forced_count_; }
    // Sums in tile index order (forced tiles, non-forced tiles, all tiles).
    double forced_mass() const { return forced_mass_; }
    double free_mass() const { return free_mass_; }
    double total_mass() const { return total_mass_; }

    // Brings the k heaviest free tiles to the front (in any order past the sorted head); returns them.
    const Tile* heaviest(int64_t k);
    // The fewest free tiles which, taken heaviest first after the forced ones, keep at least
    // recall * total_mass() (all of them when even that is not enough). Sorts the ranking as far
    // as that prefix.
    int64_t tiles_for_recall(double recall);

private:
    std::vector<Tile> tiles_;
    int64_t forced_count_ = 0;
    double forced_mass_ = 0, free_mass_ = 0, total_mass_ = 0;
    // tiles_[0, sorted_) are the sorted_ heaviest in rank order; tiles_[0, front_) the front_
    // heaviest in any order (front_ >= sorted_, or -1 before any partition).
    int64_t sorted_ = 0, front_ = -1;
};

// Throws ParameterError naming the option at fault: density outside (0, 1] or below the share of
// forced tiles, recall outside (0, 1], min_density outside [0, density] or given without recall,
// rows_per_group outside [1, kMaxMaskRows]. rows_per_group > 1: build_grouped_mask, else build_tile_mask.
BlockMask build_mask(const TileStats& stats, const BlockMask& forced, const MaskOptions& opt);
// Tile by tile from a ranking of those statistics (which it partitions or sorts), whatever
// rows_per_group says: the calibrator ranks orders by these masks, and groups only the masks it writes.
BlockMask build_tile_mask(TileRanking& ranking, const BlockMask& forced, const MaskOptions& opt);

// Masks chosen rows_per_group tile rows at a time. A unit is one column of a group of rows (the last
// group may be shorter): its non-forced tiles, kept or dropped together. Units are ranked by their mass
// per tile (ties: lower group, then lower column) and taken in that order, each that still fits under
// the cap, until the count of tiles to reach: a fixed density's target (so a mask lands up to a unit
// short of it), or with a recall target the shortest ranked prefix reaching it, forced mass first, or
// the floor if that is more (passed by less than a unit). With rows_per_group = 1 this is
// build_tile_mask's rule.
BlockMask build_grouped_mask(const TileStats& stats, const BlockMask& forced, const MaskOptions& opt);

// Fraction of the attention mass that the mask keeps (masses of its tiles, row-major; summed in
// that order, in double).
double mask_recall(const BlockMask& mask, const double* mass);
double mask_recall(const BlockMask& mask, const float* mass);
inline double mask_recall(const BlockMask& mask, const std::vector<double>& mass) { return mask_recall(mask, mass.data()); }

}  // namespace paro
