#pragma once
// C++ entry for paro's own tools: a device plan from an in-memory Pattern (what paro_plan_load does
// after reading the file). Not part of the shipped C API.
#include <memory>

#include "paro_runtime.h"

namespace paro {
struct Pattern;
}

namespace paro::gpu {

// Heads [head_begin, head_end) of every layer (head_end -1: to the last head).
paro_status plan_from_pattern(const paro::Pattern& p, paro_plan** out, int head_begin = 0, int head_end = -1);

struct PlanDeleter {
    void operator()(paro_plan* p) const { paro_plan_destroy(p); }
};
using PlanPtr = std::unique_ptr<paro_plan, PlanDeleter>;

}  // namespace paro::gpu
