#pragma once
// Scoring the six orders of one head and choosing one.
//
// Per order and sample, from its TileStats (docs/method.md has the derivations):
//   sparsity    paper: fraction of tiles in which at least sigma of the entries are below eps
//   incoherence paper: mean over tiles of max(P) / mean(P) (an all-zero tile counts 1)
//   recall      mass kept by the mask build_mask makes (at the target density, or by the recall
//               rule), forced tiles included
//   free_recall share of the non-forced mass held by the best `density` share of non-forced tiles
//   output_rel_l1  relative L1 of masked vs dense attention output (objective output-error only)
// Metrics are averaged over the calibration samples, then one objective ranks the orders:
//   recall (default)  maximize mean free_recall: what the mask keeps where the order matters
//                     (forced tiles are the same in every order and would only dilute it).
//                     With a recall target (MaskOptions::recall) the masks' mass is fixed and
//                     their size varies, so instead maximize the mean share of non-forced tiles
//                     the recall rule leaves out (without cap or floor, which would tie orders).
//   paper             minimize  alpha * I_o / sum(I) + (1 - alpha) * (1 - S_o) / sum(1 - S)
//                     (I incoherence, S sparsity, sums over the six orders; a sum of zero makes
//                     its term zero for every order).
//   output-error      minimize mean output_rel_l1 (needs v in the dump).
// Ties (equal within 1e-6 relative) go to the lower canonical order index (FHW first).
#include <array>
#include <string>

#include "paro/block_mask.hpp"
#include "paro/mask_builder.hpp"
#include "paro/pattern.hpp"
#include "paro/tile_stats.hpp"

namespace paro {

enum class ObjectiveKind { recall, paper, output_error };

std::string to_string(ObjectiveKind k);
ObjectiveKind parse_objective(const std::string& name);  // throws ParameterError ("objective")
bool higher_is_better(ObjectiveKind k);

struct ObjectiveOptions {
    ObjectiveKind kind = ObjectiveKind::recall;
    double alpha = 0.5;  // paper objective: weight of incoherence against sparsity
    double sigma = 0.9;  // paper sparsity: share of entries below eps for a tile to count as sparse
};

// All metrics of one order on one sample but output_rel_l1 (left at -1). `kept` is the mask
// build_mask made from these stats with `mask`, `forced` its forced tiles. .objective is the
// recall objective's per-sample value (it needs the tile ranking, not only the other metrics).
OrderMetrics order_metrics(const TileStats& stats, const BlockMask& kept, const BlockMask& forced,
                           const MaskOptions& mask, const ObjectiveOptions& opt);
// The same with the ranking build_mask used for `kept` (the calibrator's path: one ranking per
// order and sample instead of three).
OrderMetrics order_metrics(const TileStats& stats, const BlockMask& kept, TileRanking& ranking, const MaskOptions& mask,
                           const ObjectiveOptions& opt);

// Fills .objective of each order from the other metrics (the recall objective keeps the value
// order_metrics gave, averaged over the samples).
void apply_objective(std::array<OrderMetrics, kNumOrders>& metrics, const ObjectiveOptions& opt);

// The best order by .objective, with the deterministic tie-break.
AxisOrder choose_order(const std::array<OrderMetrics, kNumOrders>& metrics, ObjectiveKind kind);

}  // namespace paro
