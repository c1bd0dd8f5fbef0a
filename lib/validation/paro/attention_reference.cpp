#include "paro/attention_reference.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "paro/error.hpp"

namespace paro {

namespace {

// One query row over the listed keys (original indices). Writes zeros when the list is empty.
void attend_row(const float* qi, const float* k, const float* v, int64_t d, int64_t dv, double scale,
                const std::vector<int64_t>& keys, std::vector<double>& s, float* out) {
    if (keys.empty()) {
        std::fill(out, out + dv, 0.0f);
        return;
    }
    s.resize(keys.size());
    double m = -std::numeric_limits<double>::infinity();
    for (size_t t = 0; t < keys.size(); ++t) {
        const float* kj = k + keys[t] * d;
        double dot = 0;
        for (int64_t c = 0; c < d; ++c) dot += static_cast<double>(qi[c]) * static_cast<double>(kj[c]);
        s[t] = dot * scale;
        m = std::max(m, s[t]);
    }
    double l = 0;
    for (double& x : s) {
        x = std::exp(x - m);
        l += x;
    }
    std::vector<double> acc(static_cast<size_t>(dv), 0.0);
    for (size_t t = 0; t < keys.size(); ++t) {
        const float* vj = v + keys[t] * dv;
        for (int64_t c = 0; c < dv; ++c) acc[c] += s[t] * static_cast<double>(vj[c]);
    }
    for (int64_t c = 0; c < dv; ++c) out[c] = static_cast<float>(acc[c] / l);
}

}  // namespace

void attention_dense(const float* q, const float* k, const float* v, int64_t n, int64_t d, int64_t dv,
                     double scale, float* out) {
    std::vector<int64_t> keys(static_cast<size_t>(n));
    for (int64_t j = 0; j < n; ++j) keys[j] = j;
#pragma omp parallel
    {
        std::vector<double> s;
#pragma omp for schedule(dynamic, 16)
        for (int64_t i = 0; i < n; ++i) attend_row(q + i * d, k, v, d, dv, scale, keys, s, out + i * dv);
    }
}

void attention_masked(const float* q, const float* k, const float* v, int64_t n, int64_t d, int64_t dv,
                      double scale, const Permutation& perm, const BlockMask& mask, int block, float* out) {
    if (block <= 0) throw InputError("", "block", "tile size must be positive");
    const int64_t nb = (n + block - 1) / block;
    if (mask.tiles_per_side() != nb)
        throw InputError("", "mask", fmt::format("mask has {} tiles per side, {} tokens in tiles of {} need {}",
                                                 mask.tiles_per_side(), n, block, nb));
    if (static_cast<int64_t>(perm.gather.size()) != n || static_cast<int64_t>(perm.position.size()) != n)
        throw InputError("", "permutation", fmt::format("permutation has {} entries, expected {}",
                                                        perm.gather.size(), n));
    // Per tile row: the kept keys, in original indices.
#pragma omp parallel
    {
        std::vector<double> s;
        std::vector<int64_t> keys;
#pragma omp for schedule(dynamic, 1)
        for (int64_t r = 0; r < nb; ++r) {
            keys.clear();
            for (int64_t c = 0; c < nb; ++c) {
                if (!mask.get(r, c)) continue;
                for (int64_t p = c * block; p < std::min(n, (c + 1) * block); ++p) keys.push_back(perm.gather[p]);
            }
            for (int64_t p = r * block; p < std::min(n, (r + 1) * block); ++p) {
                const int64_t i = perm.gather[p];
                attend_row(q + i * d, k, v, d, dv, scale, keys, s, out + i * dv);
            }
        }
    }
}

ErrorStats compare_outputs(const float* out, const float* ref, size_t n) {
    ErrorStats e;
    double dot = 0, no = 0, nr = 0, l1 = 0, l1r = 0, l2 = 0, peak = 0;
    for (size_t i = 0; i < n; ++i) {
        const double a = out[i], b = ref[i];
        if (!std::isfinite(a)) {
            e.finite = false;
            continue;
        }
        const double diff = a - b;
        dot += a * b;
        no += a * a;
        nr += b * b;
        l1 += std::fabs(diff);
        l1r += std::fabs(b);
        l2 += diff * diff;
        peak = std::max(peak, std::fabs(b));
        e.max_abs = std::max(e.max_abs, std::fabs(diff));
    }
    if (!e.finite) {
        const double nan = std::numeric_limits<double>::quiet_NaN();
        e.cosine = e.rel_l1 = e.rel_l2 = e.max_abs = e.psnr = nan;
        return e;
    }
    if (no == 0 && nr == 0) {
        e.cosine = 1;
    } else if (no == 0 || nr == 0) {
        e.cosine = 0;
    } else {
        e.cosine = dot / std::sqrt(no * nr);
    }
    e.rel_l1 = l1r > 0 ? l1 / l1r : (l1 > 0 ? std::numeric_limits<double>::infinity() : 0.0);
    e.rel_l2 = nr > 0 ? std::sqrt(l2 / nr) : (l2 > 0 ? std::numeric_limits<double>::infinity() : 0.0);
    const double mse = n ? l2 / static_cast<double>(n) : 0.0;
    e.psnr = mse > 0 ? 20.0 * std::log10(peak / std::sqrt(mse)) : std::numeric_limits<double>::infinity();
    return e;
}

}  // namespace paro
