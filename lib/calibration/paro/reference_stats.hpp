#pragma once
// Brute-force references, plain and obviously correct, for tests of the fast paths:
// materialize P (double), permute it explicitly, and loop over every tile.
#include <vector>

#include "paro/dump.hpp"
#include "paro/tile_stats.hpp"

namespace paro {

// P = softmax(scale * q k^T) row by row (or the stored attention map), in double, [N x N].
std::vector<double> reference_attention_matrix(const HeadSlice& slice);

// Tile statistics of every order from the materialized, explicitly permuted matrix.
SixOrderStats reference_tile_stats(const TokenLayout& layout, const HeadSlice& slice, TileStatsOptions options);

}  // namespace paro
