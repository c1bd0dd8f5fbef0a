#pragma once
// Static block masks from tile statistics: keep the forced tiles, then the tiles with the most
// attention mass until the requested fraction of ALL tiles is reached.
#include "paro/block_mask.hpp"
#include "paro/tile_stats.hpp"

namespace paro {

struct MaskOptions {
    double density = 0.5;      // fraction of all nb x nb tiles the kernel computes (forced included)
    bool force_text = true;    // tile rows and columns holding text tokens are kept dense
    bool force_ragged = true;  // the ragged last tile row and column are kept dense
};

// The tiles kept regardless of mass. Text tokens keep their place in every order, so this
// depends only on the layout and tile size.
BlockMask forced_tiles(const TokenLayout& layout, const TileGrid& grid, const MaskOptions& opt);

// Throws ParameterError ("density") when the density is outside (0, 1] or below the share of
// forced tiles. Ties in mass break by tile index, so masks are deterministic.
BlockMask build_mask(const TileStats& stats, const BlockMask& forced, const MaskOptions& opt);

// Fraction of the attention mass that the mask keeps.
double mask_recall(const BlockMask& mask, const std::vector<double>& mass);

}  // namespace paro
