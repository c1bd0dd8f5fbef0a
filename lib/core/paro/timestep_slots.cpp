#include "paro/timestep_slots.hpp"

#include <fmt/format.h>

#include "paro/dump.hpp"
#include "paro/error.hpp"

namespace paro {

int SlotPlan::slot_of(double f) const {
    for (int s = 0; s + 1 < count(); ++s)
        if (f < boundaries[s + 1]) return s;
    return count() - 1;
}

std::string SlotPlan::describe(int s) const {
    return fmt::format("[{:.3f}, {:.3f}{}", boundaries[s], boundaries[s + 1], s + 1 == count() ? "]" : ")");
}

SlotPlan SlotPlan::make(int slots, bool share_later_half) {
    if (slots < 1) throw ParameterError("slots", fmt::format("must be at least 1, got {}", slots));
    SlotPlan p;
    p.boundaries.clear();
    if (slots == 1) {
        p.boundaries = {0.0, 1.0};
    } else if (share_later_half) {
        for (int s = 0; s < slots; ++s) p.boundaries.push_back(0.5 * s / (slots - 1));
        p.boundaries.push_back(1.0);
    } else {
        for (int s = 0; s <= slots; ++s) p.boundaries.push_back(static_cast<double>(s) / slots);
    }
    return p;
}

int sample_slot(const DumpInfo& dump, const SlotPlan& plan, int64_t sample) {
    PARO_ASSERT(sample >= 0 && sample < static_cast<int64_t>(dump.samples.size()));
    if (plan.count() == 1) return 0;
    if (!dump.has_steps()) return kUnknownSlot;
    return plan.slot_of(dump.step_fraction(sample));
}

}  // namespace paro
