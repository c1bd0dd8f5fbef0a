#include "paro/tile_stats.hpp"

#include <fmt/format.h>
#include <omp.h>

// Our threads split the rows; Eigen's own threading would block the product by thread count and
// change the rounding (results must be the same bits for any --threads).
#define EIGEN_DONT_PARALLELIZE
#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <cstring>

#include "paro/error.hpp"

namespace paro {

namespace {
using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
// Query rows per work item: large enough for an efficient GEMM, small enough to balance threads.
constexpr int64_t kRowsPerBlock = 32;
// Partial sums a head's rows are split over: a constant, so that the sums' rounding is the same
// for any thread count (TileStatsEngine::compute).
constexpr int64_t kLanes = 32;
}  // namespace

AttentionRows::AttentionRows(const HeadSlice& slice) : s_(slice), n_(slice.tokens) {}

bool AttentionRows::rows(int64_t row0, int64_t count, float* out) const {
    PARO_ASSERT(row0 >= 0 && row0 + count <= n_);
    if (s_.is_attention()) {
        std::memcpy(out, s_.attention.data() + row0 * n_, sizeof(float) * static_cast<size_t>(count * n_));
        return true;
    }
    const int64_t d = s_.head_dim;
    Eigen::Map<const RowMatrix> q(s_.q.data() + row0 * d, count, d);
    Eigen::Map<const RowMatrix> k(s_.k.data(), n_, d);
    Eigen::Map<RowMatrix> p(out, count, n_);
    p.noalias() = q * k.transpose();
    const float scale = static_cast<float>(s_.scale);
    for (int64_t i = 0; i < count; ++i) {
        auto row = p.row(i).array();
        const float m = row.maxCoeff();
        if (!std::isfinite(m)) return false;
        row = ((row - m) * scale).exp();
        const double sum = row.template cast<double>().sum();
        if (!std::isfinite(sum)) return false;
        row *= static_cast<float>(1.0 / sum);
    }
    return true;
}

void throw_overflow(const HeadSlice& s) {
    throw InputError(s.file, fmt::format("/layers/{}/q", s.layer),
                     fmt::format("attention scores overflow float32 in sample {}, head {} (q/k values too large)",
                                 s.sample, s.head));
}

std::vector<SixOrderStats> TileStatsEngine::compute_batch(const std::vector<HeadSlice>& heads) {
    std::vector<SixOrderStats> out;
    out.reserve(heads.size());
    for (const HeadSlice& h : heads) out.push_back(compute(h));
    return out;
}

SixOrderStats TileStatsEngine::compute(const HeadSlice& slice) const {
    const TileGrid& grid = this->grid();
    PARO_ASSERT(slice.tokens == grid.tokens);
    const int64_t n = grid.tokens, nb = grid.tiles_per_side(), b = grid.block;
    const float eps = options().eps;
    const AttentionRows source(slice);
    const auto& perms = permutations();
    std::array<bool, kNumOrders> identity{};
    std::array<const int32_t*, kNumOrders> tile_of_row{};
    for (int o = 0; o < kNumOrders; ++o) {
        identity[o] = perms[o].is_identity();
        tile_of_row[o] = tile_of(kAllOrders[o]).data();
    }

    // Blocks go to a fixed number of partial sums (lanes) round robin; each lane adds its blocks
    // in order and the lanes are merged in lane order. So the sums, and all that follows, are the
    // same bits for any number of threads: a run resumed, sharded or spread over MPI ranks with
    // other thread counts gives the pattern of one run. The lanes run in waves of one per thread,
    // each wave merged into the result before the next reuses its buffers: memory for one set of
    // six-order statistics per thread (working_bytes), not one per lane.
    const Lanes lanes = lanes_of(n, omp_get_max_threads());
    std::vector<SixOrderStats> partial(static_cast<size_t>(lanes.wave));
    for (auto& p : partial) p.fill(TileStats(grid));
    SixOrderStats out;
    out.fill(TileStats(grid));
    bool overflow = false;

#pragma omp parallel reduction(|| : overflow)
    {
        std::vector<float> p(static_cast<size_t>(kRowsPerBlock * n)), permuted(static_cast<size_t>(n));
        for (int64_t first = 0; first < lanes.count; first += lanes.wave) {
            const int64_t in_wave = std::min(lanes.wave, lanes.count - first);
#pragma omp for schedule(dynamic, 1)
            for (int64_t w = 0; w < in_wave; ++w) {
                SixOrderStats& acc = partial[static_cast<size_t>(w)];
                for (TileStats& st : acc) st.clear();
                for (int64_t blk = first + w; blk < lanes.blocks; blk += lanes.count) {
                    const int64_t row0 = blk * kRowsPerBlock, count = std::min(kRowsPerBlock, n - row0);
                    if (!source.rows(row0, count, p.data())) {
                        overflow = true;
                        break;
                    }
                    for (int64_t i = 0; i < count; ++i) {
                        const float* row = p.data() + i * n;
                        for (int o = 0; o < kNumOrders; ++o) {
                            const float* src = row;
                            if (!identity[o]) {
                                const int32_t* g = perms[o].gather.data();
                                for (int64_t j = 0; j < n; ++j) permuted[j] = row[g[j]];
                                src = permuted.data();
                            }
                            TileStats& st = acc[o];
                            const int64_t base = static_cast<int64_t>(tile_of_row[o][row0 + i]) * nb;
                            for (int64_t c = 0; c < nb; ++c) {
                                const float* t = src + c * b;
                                const int64_t len = std::min(b, n - c * b);
                                float sum = 0.0f, mx = 0.0f;
                                int32_t below = 0;
#pragma omp simd reduction(+ : sum, below) reduction(max : mx)
                                for (int64_t j = 0; j < len; ++j) {
                                    const float x = t[j];
                                    sum += x;
                                    mx = mx > x ? mx : x;
                                    below += x < eps;
                                }
                                st.mass[base + c] += sum;
                                st.max[base + c] = std::max(st.max[base + c], mx);
                                st.below_eps[base + c] += below;
                            }
                        }
                    }
                }
            }
            // The wave's lanes into out, in lane order for every tile (0.0 + lane 0 is lane 0).
#pragma omp for schedule(static, 1)
            for (int o = 0; o < kNumOrders; ++o)
                for (int64_t w = 0; w < in_wave; ++w) out[o].accumulate(partial[static_cast<size_t>(w)][o]);
        }
    }
    if (overflow) throw_overflow(slice);
    return out;
}

TileStatsEngine::Lanes TileStatsEngine::lanes_of(int64_t tokens, int threads) {
    Lanes l;
    l.blocks = (tokens + kRowsPerBlock - 1) / kRowsPerBlock;
    l.count = std::min(kLanes, l.blocks);
    l.wave = std::max<int64_t>(1, std::min<int64_t>(l.count, threads));
    return l;
}

double TileStatsEngine::working_bytes() const {
    const int threads = omp_get_max_threads();
    const double n = static_cast<double>(grid().tokens), tiles = static_cast<double>(grid().tiles());
    const double six_orders = kNumOrders * tiles * TileStats::kBytesPerTile;
    const double wave = static_cast<double>(lanes_of(grid().tokens, threads).wave);
    return wave * six_orders + std::max(1, threads) * (kRowsPerBlock + 1) * n * sizeof(float);
}

}  // namespace paro
