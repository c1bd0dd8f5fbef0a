#pragma once
// Tile statistics of one head's post-softmax attention P under all six axis orders at once.
// For each order, the permuted N x N matrix P[perm][:, perm] is cut into b x b tiles (the last
// row/column of tiles is ragged when b does not divide N) and each tile gets its attention mass
// (sum of P), maximum, and count of entries below eps.
//
// TileStatsEngine computes these by streaming softmax rows: for each block of query rows it
// forms scores = scale * q k^T, takes the row max and log-sum-exp, and scatters the normalized
// row into the tiles of every order. Memory is O(N*D + tiles) per thread; no N x N matrix exists.
// reference_tile_stats (reference.hpp) is the brute-force materialize-and-permute version.
#include <array>
#include <cstdint>
#include <vector>

#include "paro/axis_order.hpp"
#include "paro/dump.hpp"
#include "paro/token_layout.hpp"

namespace paro {

struct TileGrid {
    int64_t tokens = 0;
    int64_t block = 64;

    int64_t tiles_per_side() const { return (tokens + block - 1) / block; }
    int64_t tiles() const { return tiles_per_side() * tiles_per_side(); }
    // Tokens covered by tile index t along one side (the last one may be ragged).
    int64_t extent(int64_t t) const { return std::min(block, tokens - t * block); }
    int64_t entries(int64_t r, int64_t c) const { return extent(r) * extent(c); }
};

// Statistics of one order; tiles are row-major (r * nb + c) over the permuted sequence.
struct TileStats {
    TileGrid grid;
    std::vector<double> mass;
    std::vector<float> max;
    std::vector<int64_t> below_eps;

    explicit TileStats(TileGrid g = {})
        : grid(g), mass(g.tiles(), 0.0), max(g.tiles(), 0.0f), below_eps(g.tiles(), 0) {}
    double total_mass() const;
    // Adds another sample's statistics (mass and counts add, max takes the max).
    void accumulate(const TileStats& o);
};

using SixOrderStats = std::array<TileStats, kNumOrders>;

struct TileStatsOptions {
    int64_t block = 64;
    float eps = 1e-3f;
};

// Produces rows of P for one head, either from q/k (scores, then softmax) or from a stored
// attention map. Thread-safe: rows(...) may be called concurrently with distinct buffers.
class AttentionRows {
public:
    explicit AttentionRows(const HeadSlice& slice);
    int64_t tokens() const { return n_; }
    // Writes rows [row0, row0 + count) of P, row-major with stride N, into out. Returns false
    // when a row's scores overflow float32 (finite but huge q/k); the caller reports it with
    // throw_overflow outside any parallel region.
    [[nodiscard]] bool rows(int64_t row0, int64_t count, float* out) const;

private:
    const HeadSlice& s_;
    int64_t n_;
};

// Throws the InputError for a slice whose scores overflow (AttentionRows::rows returned false).
[[noreturn]] void throw_overflow(const HeadSlice& slice);

class TileStatsEngine {
public:
    TileStatsEngine(const TokenLayout& layout, TileStatsOptions options);

    const TileGrid& grid() const { return grid_; }
    const std::array<Permutation, kNumOrders>& permutations() const { return perms_; }
    // Tile index, along one side, of each original token under an order (position / block).
    const std::vector<int32_t>& tile_of(AxisOrder o) const { return tile_of_[index_of(o)]; }
    // Uses all threads of the current OpenMP setting.
    SixOrderStats compute(const HeadSlice& slice) const;

private:
    TokenLayout layout_;
    TileStatsOptions opt_;
    TileGrid grid_;
    std::array<Permutation, kNumOrders> perms_;
    // Per order: tile index of each original token (position / block).
    std::array<std::vector<int32_t>, kNumOrders> tile_of_;
};

}  // namespace paro
