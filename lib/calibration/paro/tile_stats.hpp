#pragma once
// TileStatsEngine, the CPU TileStatsBackend (tile_stats_backend.hpp), computes the six orders'
// tile statistics by streaming softmax rows: for each block of query rows it forms
// scores = scale * q k^T, takes the row max and log-sum-exp, and scatters the normalized row into
// the tiles of every order. No N x N matrix exists: working_bytes() says what it holds.
// reference_tile_stats (reference_stats.hpp) is the brute-force materialize-and-permute version.
#include <string>
#include <vector>

#include "paro/dump.hpp"
#include "paro/tile_stats_backend.hpp"

namespace paro {

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

// One head at a time, parallel inside the head (all threads of the current OpenMP setting).
class TileStatsEngine : public TileStatsBackend {
public:
    TileStatsEngine(const TokenLayout& layout, TileStatsOptions options) : TileStatsBackend(layout, options) {}

    std::string describe() const override { return "CPU streaming (OpenMP)"; }
    int64_t batch_heads() const override { return 1; }
    std::vector<SixOrderStats> compute_batch(const std::vector<HeadSlice>& heads) override;
    SixOrderStats compute(const HeadSlice& slice) const;
    // Partial sums and row buffers (the result not counted).
    double working_bytes() const override;

private:
    struct Lanes {
        int64_t blocks = 0, count = 0, wave = 0;  // row blocks, partial sums, partial sums at once
    };
    static Lanes lanes_of(int64_t tokens, int threads);
};

}  // namespace paro
