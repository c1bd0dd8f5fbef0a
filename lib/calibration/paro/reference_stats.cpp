#include "paro/reference_stats.hpp"

#include <algorithm>
#include <cmath>

namespace paro {

std::vector<double> reference_attention_matrix(const HeadSlice& s) {
    const int64_t n = s.tokens;
    std::vector<double> p(static_cast<size_t>(n * n));
    if (s.is_attention()) {
        std::copy(s.attention.begin(), s.attention.end(), p.begin());
        return p;
    }
    for (int64_t i = 0; i < n; ++i) {
        double mx = -INFINITY;
        for (int64_t j = 0; j < n; ++j) {
            double dot = 0;
            for (int64_t d = 0; d < s.head_dim; ++d)
                dot += static_cast<double>(s.q[i * s.head_dim + d]) * s.k[j * s.head_dim + d];
            p[i * n + j] = dot * s.scale;
            mx = std::max(mx, p[i * n + j]);
        }
        double sum = 0;
        for (int64_t j = 0; j < n; ++j) sum += p[i * n + j] = std::exp(p[i * n + j] - mx);
        for (int64_t j = 0; j < n; ++j) p[i * n + j] /= sum;
    }
    return p;
}

SixOrderStats reference_tile_stats(const TokenLayout& layout, const HeadSlice& slice, TileStatsOptions options) {
    const std::vector<double> p = reference_attention_matrix(slice);
    const int64_t n = slice.tokens;
    const TileGrid grid{n, options.block};
    SixOrderStats out;
    for (AxisOrder order : kAllOrders) {
        const Permutation perm = make_permutation(layout, order);
        std::vector<double> permuted(static_cast<size_t>(n * n));
        for (int64_t a = 0; a < n; ++a)
            for (int64_t b = 0; b < n; ++b) permuted[a * n + b] = p[perm.gather[a] * n + perm.gather[b]];
        TileStats st(grid);
        for (int64_t a = 0; a < n; ++a)
            for (int64_t b = 0; b < n; ++b) {
                const int64_t t = (a / options.block) * grid.tiles_per_side() + b / options.block;
                const double v = permuted[a * n + b];
                st.mass[t] += v;
                st.max[t] = std::max(st.max[t], static_cast<float>(v));
                st.below_eps[t] += static_cast<float>(v) < options.eps ? 1 : 0;
            }
        out[index_of(order)] = std::move(st);
    }
    return out;
}

}  // namespace paro
