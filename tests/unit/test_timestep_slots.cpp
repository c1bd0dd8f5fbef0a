// sample_slot: the one rule mapping a dump sample to the timestep slot whose masks serve it.
#include "catch.hpp"
#include "paro/dump.hpp"
#include "paro/timestep_slots.hpp"

using namespace paro;

namespace {
DumpInfo dump_with_steps(std::vector<int64_t> steps, int64_t num_steps) {
    DumpInfo d;
    d.num_steps = num_steps;
    for (int64_t s : steps) d.samples.push_back({0.0, s, 0});
    return d;
}
}  // namespace

TEST_CASE("one slot serves every sample, steps or not", "[slots]") {
    const SlotPlan one = SlotPlan::make(1, true);
    CHECK(sample_slot(dump_with_steps({-1, -1}, -1), one, 1) == 0);
    CHECK(sample_slot(dump_with_steps({10, 40}, 50), one, 1) == 0);
}

TEST_CASE("several slots follow the step fraction", "[slots]") {
    const SlotPlan paper = SlotPlan::make(3, true);  // [0, .25) [.25, .5) [.5, 1]
    const DumpInfo d = dump_with_steps({0, 12, 13, 25, 49, 50}, 50);
    const int expected[] = {0, 0, 1, 2, 2, 2};
    for (int s = 0; s < 6; ++s) CHECK(sample_slot(d, paper, s) == expected[s]);
    const SlotPlan even = SlotPlan::make(2, false);
    CHECK(sample_slot(d, even, 3) == 1);
}

TEST_CASE("several slots without recorded steps give the unknown slot", "[slots]") {
    const SlotPlan two = SlotPlan::make(2, true);
    CHECK(sample_slot(dump_with_steps({-1, 10}, 50), two, 1) == kUnknownSlot);  // one sample lacks its step
    CHECK(sample_slot(dump_with_steps({10, 20}, -1), two, 0) == kUnknownSlot);  // num_steps unknown
}
