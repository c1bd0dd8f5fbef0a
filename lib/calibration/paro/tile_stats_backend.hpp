#pragma once
// Tile statistics of one head's post-softmax attention P under all six axis orders at once, and
// TileStatsBackend, the interface of whatever computes them (the CPU engine in tile_stats.hpp; a
// CUDA engine in kernels/tools). For each order, the permuted N x N matrix P[perm][:, perm] is cut
// into b x b tiles (the last row/column of tiles is ragged when b does not divide N) and each tile
// gets its attention mass (sum of P), maximum, and count of entries below eps.
//
// Batching: a backend says how many heads it wants per call (batch_heads); the calibrator then
// reads that many heads of one (layer, sample) and hands them over together, so a GPU engine can
// compute all heads of a layer in one launch while the CPU engine (batch_heads() == 1) keeps
// memory at one slice and parallelizes inside the head.
#include <algorithm>
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "paro/axis_order.hpp"
#include "paro/block_mask.hpp"
#include "paro/dump.hpp"
#include "paro/runtime_limits.hpp"
#include "paro/token_layout.hpp"

namespace paro {

struct TileGrid {
    int64_t tokens = 0;
    int64_t block = kRuntimeTile;

    int64_t tiles_per_side() const { return paro::tiles_per_side(tokens, block); }
    int64_t tiles() const { return tiles_per_side() * tiles_per_side(); }
    // Tokens covered by tile index t along one side (the last one may be ragged).
    int64_t extent(int64_t t) const { return std::min(block, tokens - t * block); }
    int64_t entries(int64_t r, int64_t c) const { return extent(r) * extent(c); }
};

// Statistics of one order; tiles are row-major (r * nb + c) over the permuted sequence.
struct TileStats {
    static constexpr size_t kBytesPerTile = sizeof(double) + sizeof(float) + sizeof(int64_t);  // the three below
    TileGrid grid;
    std::vector<double> mass;
    std::vector<float> max;
    std::vector<int64_t> below_eps;

    explicit TileStats(TileGrid g = {})
        : grid(g), mass(g.tiles(), 0.0), max(g.tiles(), 0.0f), below_eps(g.tiles(), 0) {}
    double total_mass() const;
    void clear();  // zero mass, max and counts, as constructed
    // Adds another sample's statistics (mass and counts add, max takes the max).
    void accumulate(const TileStats& o);
};

using SixOrderStats = std::array<TileStats, kNumOrders>;

struct TileStatsOptions {
    int64_t block = kRuntimeTile;
    float eps = 1e-3f;
};

class TileStatsBackend {
public:
    // Builds the tile geometry of the six orders. Throws ParameterError ("block") unless block > 0.
    TileStatsBackend(const TokenLayout& layout, TileStatsOptions options);
    virtual ~TileStatsBackend() = default;

    const TileStatsOptions& options() const { return opt_; }
    const TileGrid& grid() const { return grid_; }
    const std::array<Permutation, kNumOrders>& permutations() const { return perms_; }
    // Tile index, along one side, of each original token under an order (position / block).
    const std::vector<int32_t>& tile_of(AxisOrder o) const { return tile_of_[index_of(o)]; }

    virtual std::string describe() const = 0;  // "CPU streaming (OpenMP)"
    // Heads per compute_batch call that keep the backend busy (at least 1).
    virtual int64_t batch_heads() const = 0;
    // The statistics of each slice, in order. Every slice has grid().tokens tokens; callers pass
    // at most batch_heads() of them, with q and k as floats, or as halves where takes_halves().
    // Throws InputError for scores that overflow float32.
    virtual std::vector<SixOrderStats> compute_batch(const std::vector<HeadSlice>& heads) = 0;
    // Whether compute_batch takes slices that kept q and k as the dump's halves (HalfQK::keep).
    virtual bool takes_halves() const { return false; }
    // Host bytes compute_batch holds beside its slices and results when run with this thread's
    // OpenMP thread count, for the callers' memory estimates.
    virtual double working_bytes() const = 0;
    // Relative L1 error of each order's masked output against dense (output_error.hpp); the slice
    // carries v. The CPU scorer masked_output_error unless a backend has a faster one.
    virtual std::array<double, kNumOrders> output_error(const HeadSlice& slice,
                                                        const std::array<BlockMask, kNumOrders>& masks) const;

private:
    TileStatsOptions opt_;
    TileGrid grid_;
    std::array<Permutation, kNumOrders> perms_;
    std::array<std::vector<int32_t>, kNumOrders> tile_of_;
};

}  // namespace paro
