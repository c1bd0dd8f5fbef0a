#include "paro/objective.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <vector>

#include "paro/error.hpp"

namespace paro {

std::string to_string(ObjectiveKind k) {
    switch (k) {
        case ObjectiveKind::recall: return "recall";
        case ObjectiveKind::paper: return "paper";
        case ObjectiveKind::output_error: return "output-error";
    }
    return "?";
}

ObjectiveKind parse_objective(const std::string& name) {
    if (name == "recall") return ObjectiveKind::recall;
    if (name == "paper") return ObjectiveKind::paper;
    if (name == "output-error") return ObjectiveKind::output_error;
    throw ParameterError("objective",
                         fmt::format("unknown objective '{}' (expected recall, paper or output-error)", name));
}

bool higher_is_better(ObjectiveKind k) { return k == ObjectiveKind::recall; }

OrderMetrics order_metrics(const TileStats& st, const BlockMask& kept, const BlockMask& forced,
                           const MaskOptions& mask, const ObjectiveOptions& opt) {
    TileRanking ranking(st, forced);
    return order_metrics(st, kept, ranking, mask, opt);
}

OrderMetrics order_metrics(const TileStats& st, const BlockMask& kept, TileRanking& ranking, const MaskOptions& mask,
                           const ObjectiveOptions& opt) {
    const TileGrid& g = st.grid;
    const int64_t nb = g.tiles_per_side();
    int64_t sparse = 0;
    double incoherence = 0;
    for (int64_t r = 0; r < nb; ++r)
        for (int64_t c = 0; c < nb; ++c) {
            const int64_t t = r * nb + c;
            const double entries = static_cast<double>(g.entries(r, c));
            if (static_cast<double>(st.below_eps[t]) >= opt.sigma * entries) ++sparse;
            const double mean = st.mass[t] / entries;
            incoherence += mean > 0 ? st.max[t] / mean : 1.0;
        }
    OrderMetrics m;
    m.sparsity = static_cast<double>(sparse) / static_cast<double>(nb * nb);
    m.incoherence = incoherence / static_cast<double>(nb * nb);
    m.recall = mask_recall(kept, st.mass);

    // Forced tiles sit at the same places in every order and say nothing about it; rank by the
    // rest: the share of non-forced mass held by the best `density` share of non-forced tiles.
    const int64_t free = ranking.free_count();
    if (free == 0 || ranking.free_mass() <= 0) {
        m.free_recall = 1.0;
    } else {
        const int64_t k = std::clamp<int64_t>(std::llround(mask.density * static_cast<double>(free)), 1, free);
        const TileRanking::Tile* best = ranking.heaviest(k);
        double kept_mass = 0;
        for (int64_t i = 0; i < k; ++i) kept_mass += best[i].mass;
        m.free_recall = kept_mass / ranking.free_mass();
    }
    if (!mask.recall) {
        m.objective = m.free_recall;
    } else {
        // The free tiles an uncapped, unfloored recall mask keeps, as a share spared.
        const int64_t free_kept = ranking.tiles_for_recall(*mask.recall);
        m.objective = free > 0 ? 1.0 - static_cast<double>(free_kept) / static_cast<double>(free) : 1.0;
    }
    return m;
}

void apply_objective(std::array<OrderMetrics, kNumOrders>& m, const ObjectiveOptions& opt) {
    switch (opt.kind) {
        case ObjectiveKind::recall:
            break;  // order_metrics set it
        case ObjectiveKind::output_error:
            for (auto& x : m) x.objective = x.output_rel_l1;
            break;
        case ObjectiveKind::paper: {
            double sum_inco = 0, sum_dense = 0;
            for (const auto& x : m) sum_inco += x.incoherence, sum_dense += 1.0 - x.sparsity;
            for (auto& x : m) {
                const double inco = sum_inco > 0 ? x.incoherence / sum_inco : 0.0;
                const double dense = sum_dense > 0 ? (1.0 - x.sparsity) / sum_dense : 0.0;
                x.objective = opt.alpha * inco + (1.0 - opt.alpha) * dense;
            }
            break;
        }
    }
}

AxisOrder choose_order(const std::array<OrderMetrics, kNumOrders>& m, ObjectiveKind kind) {
    const bool higher = higher_is_better(kind);
    int best = 0;
    for (int o = 1; o < kNumOrders; ++o) {
        const double a = m[o].objective, b = m[best].objective;
        // The tile masses are float sums whose rounding depends on the order, so orders tied in
        // exact arithmetic come out ~1e-9 apart: closer than 1e-6 (relative) is a tie.
        const double tol = 1e-6 * std::max(std::fabs(a), std::fabs(b));
        if (higher ? a > b + tol : a < b - tol) best = o;
    }
    return kAllOrders[best];
}

}  // namespace paro
