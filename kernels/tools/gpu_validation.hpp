#pragma once
// The GPU backend of `paro validate`: both fp32 references on the device (kernels/reference.cu)
// and the runtime itself (INT8 QK; PV in INT8 or fp16 per head) on inputs converted to the chosen dtype.
#include <string>

#include "paro/validation.hpp"
#include "gpu_helpers.hpp"
#include "paro_runtime.h"

namespace paro::gpu {

class GpuValidationBackend : public ValidationBackend {
public:
    // Loads the pattern onto the device. Throws InputError when there is no usable GPU.
    GpuValidationBackend(const Pattern& pattern, paro_dtype dtype);
    std::string describe() const override;
    bool runs_kernel() const override { return true; }
    void run(const Pattern& pattern, const LayerInputs& in, LayerOutputs& out) override;

private:
    PlanPtr plan_;
    paro_dtype dtype_;
    std::string device_;
    std::string pv_;  // how PV runs: "INT8", "fp16" or mixed per head
};


}  // namespace paro::gpu
