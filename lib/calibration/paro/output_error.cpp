#include "paro/output_error.hpp"

#include <omp.h>

// Our threads split the rows; Eigen's own threading would block the product by thread count and
// change the rounding (results must be the same bits for any --threads).
#define EIGEN_DONT_PARALLELIZE
#include <Eigen/Dense>
#include <algorithm>

#include "paro/error.hpp"
#include "paro/tile_stats.hpp"  // AttentionRows

namespace paro {

namespace {
using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
constexpr int64_t kRowsPerBlock = 32;
}  // namespace

std::array<double, kNumOrders> masked_output_error(const HeadSlice& s, const TileStatsBackend& tiles,
                                                   const std::array<BlockMask, kNumOrders>& masks) {
    PARO_ASSERT(!s.v.empty());
    const int64_t n = s.tokens, dv = s.value_dim;
    const AttentionRows source(s);
    Eigen::Map<const RowMatrix> v(s.v.data(), n, dv);
    const int64_t blocks = (n + kRowsPerBlock - 1) / kRowsPerBlock;
    double dense_l1 = 0;
    std::array<double, kNumOrders> diff_l1{};
    bool overflow = false;

#pragma omp parallel reduction(|| : overflow)
    {
        RowMatrix p(kRowsPerBlock, n), pm(kRowsPerBlock, n), dense(kRowsPerBlock, dv), masked(kRowsPerBlock, dv);
        std::vector<uint8_t> keep_tile;
        double my_dense = 0;
        std::array<double, kNumOrders> my_diff{};
#pragma omp for schedule(dynamic)
        for (int64_t blk = 0; blk < blocks; ++blk) {
            const int64_t row0 = blk * kRowsPerBlock, count = std::min(kRowsPerBlock, n - row0);
            if (!source.rows(row0, count, p.data())) {
                overflow = true;
                continue;
            }
            auto pb = p.topRows(count);
            dense.topRows(count).noalias() = pb * v;
            my_dense += dense.topRows(count).cwiseAbs().template cast<double>().sum();
            for (AxisOrder order : kAllOrders) {
                const int o = index_of(order);
                const auto& tile_of = tiles.tile_of(order);
                const BlockMask& mask = masks[o];
                const int64_t nb = mask.tiles_per_side();
                keep_tile.resize(static_cast<size_t>(nb));
                for (int64_t i = 0; i < count; ++i) {
                    const int64_t r = tile_of[row0 + i];
                    for (int64_t c = 0; c < nb; ++c) keep_tile[c] = mask.get(r, c);
                    const float* src = p.data() + i * n;
                    float* dst = pm.data() + i * n;
                    double kept = 0;
                    for (int64_t j = 0; j < n; ++j) {
                        dst[j] = keep_tile[tile_of[j]] ? src[j] : 0.0f;
                        kept += dst[j];
                    }
                    // A row whose kept tiles hold no mass outputs zeros (the kernel's convention).
                    const float inv = kept > 0 ? static_cast<float>(1.0 / kept) : 0.0f;
                    for (int64_t j = 0; j < n; ++j) dst[j] *= inv;
                }
                masked.topRows(count).noalias() = pm.topRows(count) * v;
                my_diff[o] += (masked.topRows(count) - dense.topRows(count)).cwiseAbs().template cast<double>().sum();
            }
        }
#pragma omp critical
        {
            dense_l1 += my_dense;
            for (int o = 0; o < kNumOrders; ++o) diff_l1[o] += my_diff[o];
        }
    }
    if (overflow) throw_overflow(s);
    std::array<double, kNumOrders> out{};
    for (int o = 0; o < kNumOrders; ++o) out[o] = dense_l1 > 0 ? diff_l1[o] / dense_l1 : 0.0;
    return out;
}

}  // namespace paro
