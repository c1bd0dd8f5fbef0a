#pragma once
// The output error of block-sparse attention for each order's mask: relative L1 of
// O_masked = (P * keep) V / rowsum(P * keep) against dense O = P V, fp32, summed over all rows and
// channels. keep(i, j) is the mask bit of tile (row tile of i, column tile of j) in that order.
#include <array>

#include "paro/block_mask.hpp"
#include "paro/dump.hpp"
#include "paro/tile_stats_backend.hpp"

namespace paro {

// slice must carry v; tiles gives each order's tile of every token. Computed on the CPU with all
// threads of the current OpenMP setting, whatever backend computed the statistics.
std::array<double, kNumOrders> masked_output_error(const HeadSlice& slice, const TileStatsBackend& tiles,
                                                   const std::array<BlockMask, kNumOrders>& masks);

}  // namespace paro
