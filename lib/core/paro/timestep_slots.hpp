#pragma once
// SlotPlan: how the sampling steps are split into timestep slots, each with its own block masks.
// Boundaries are step fractions (step / num_steps) in [0, 1]; slot s covers
// [boundaries[s], boundaries[s+1]), the last slot also includes 1.
#include <string>
#include <vector>

namespace paro {

struct DumpInfo;

struct SlotPlan {
    std::vector<double> boundaries{0.0, 1.0};

    int count() const { return static_cast<int>(boundaries.size()) - 1; }
    int slot_of(double step_fraction) const;
    std::string describe(int slot) const;  // "[0.00, 0.25)"

    // T slots. share_later_half (the paper's plan): slots 0..T-2 split the first half of the steps
    // evenly and the last slot is the whole later half; otherwise T even slots. Throws
    // ParameterError ("slots") for T < 1.
    static SlotPlan make(int slots, bool share_later_half);
};

constexpr int kUnknownSlot = -1;

// The slot whose masks serve a dump sample: 0 when the plan has one slot (steps not needed), else
// the slot of the sample's step fraction, or kUnknownSlot when the dump records no steps.
int sample_slot(const DumpInfo& dump, const SlotPlan& plan, int64_t sample);

}  // namespace paro
