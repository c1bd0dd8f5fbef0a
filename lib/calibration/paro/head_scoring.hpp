#pragma once
// One head's calibration in two halves, shared by the dump path (calibrator.cpp) and the
// statistics path (stats_recorder.hpp, then calibrate_stats.cpp):
//   score_sample  a sample's six-order tile statistics -> each order's metrics, mask, and the tile
//                 masses kept for later (float32); the statistics themselves are dropped after it;
//   finish_head   every sample's metrics and the chosen order's kept masses -> the HeadPattern.
// Kept masses are float32 in both paths and a slot's sum adds them in float32 in sample order, so a
// statistics file, which stores the chosen order's kept masses, gives the pattern the dump gives.
#include <array>
#include <functional>
#include <vector>

#include "paro/block_mask.hpp"
#include "paro/calibrator.hpp"
#include "paro/objective.hpp"
#include "paro/pattern.hpp"
#include "paro/tile_stats.hpp"

namespace paro {

struct ScoredSample {
    SampleMetrics metrics;  // objective applied to this sample alone (output_rel_l1 -1 unless computed)
    std::array<BlockMask, kNumOrders> masks;        // each order's mask from this sample alone
    SampleMasses mass;                              // each order's tile masses, float32
};

// Each order's relative L1 output error under its mask (the output-error objective, which needs v).
using OutputErrorFn = std::function<std::array<double, kNumOrders>(const std::array<BlockMask, kNumOrders>&)>;

// Scores the six orders of one sample; output_error, when given, fills output_rel_l1 before the
// objective is applied. Thread-safe (per-thread scratch) if output_error is.
ScoredSample score_sample(const SixOrderStats& stats, const BlockMask& forced, const CalibrateOptions& opt,
                          const OutputErrorFn& output_error = {});

// The order a sample alone would choose (the pattern's sample_order).
AxisOrder sample_choice(const SampleMetrics& metrics, const CalibrateOptions& opt);

// The head's scores (every metric averaged over the samples, objective applied) and its order.
struct HeadChoice {
    SampleMetrics scores;
    AxisOrder order = AxisOrder::FHW;
};
HeadChoice choose_head_order(const std::vector<SampleMetrics>& per_sample, const CalibrateOptions& opt);

// The head's pattern: choice, one mask per slot from the sum of its samples' kept masses under
// the chosen order (chosen_mass(s): sample s's, nb * nb floats), per-sample orders and recalls.
HeadPattern finish_head(const std::vector<SampleMetrics>& per_sample, const HeadChoice& choice,
                        const std::function<const float*(size_t sample)>& chosen_mass,
                        const std::vector<int>& slot_of_sample, int slots, const TileGrid& grid,
                        const BlockMask& forced, const CalibrateOptions& opt);

// A pattern with no layers yet: the source's layout, the options' tiles, slots and objective, and
// the provenance (tool version, options, source file name, creation time; no checksum).
Pattern pattern_shell(const DumpInfo& source, const CalibrateOptions& opt, const SlotPlan& plan);

// Every sample's slot under the plan; validate_calibration made sure each is known.
std::vector<int> sample_slots(const DumpInfo& dump, const SlotPlan& plan);

}  // namespace paro
