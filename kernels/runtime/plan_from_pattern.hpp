#pragma once
// C++ entry for paro's own tools: a device plan from an in-memory Pattern (what paro_plan_load does
// after reading the file). Not part of the shipped C API.
#include <memory>

#include "paro_runtime.h"

namespace paro {
struct Pattern;
}

namespace paro::gpu {

paro_status plan_from_pattern(const paro::Pattern& p, paro_plan** out);

struct PlanDeleter {
    void operator()(paro_plan* p) const { paro_plan_destroy(p); }
};
using PlanPtr = std::unique_ptr<paro_plan, PlanDeleter>;

}  // namespace paro::gpu
