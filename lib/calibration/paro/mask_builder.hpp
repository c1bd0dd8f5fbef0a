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
};

// Of `tiles` tiles: how many the density keeps (the target, or with recall the cap; rounded, at
// least one), and how many min_density keeps (the floor; rounded).
int64_t cap_tiles(const MaskOptions& opt, int64_t tiles);
int64_t floor_tiles(const MaskOptions& opt, int64_t tiles);

// The tiles kept regardless of mass. Text tokens keep their place in every order, so this
// depends only on the layout and tile size.
BlockMask forced_tiles(const TokenLayout& layout, const TileGrid& grid, const MaskOptions& opt);

// Throws ParameterError naming the option at fault: density outside (0, 1] or below the share of
// forced tiles, recall outside (0, 1], min_density outside [0, density] or given without recall.
// Ties in mass break by tile index, so masks are deterministic.
BlockMask build_mask(const TileStats& stats, const BlockMask& forced, const MaskOptions& opt);

// Fraction of the attention mass that the mask keeps.
double mask_recall(const BlockMask& mask, const std::vector<double>& mass);

}  // namespace paro
