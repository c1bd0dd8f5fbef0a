#pragma once
// The GPU backend of `paro validate`: both fp32 references on the device (kernels/reference.cu)
// and the runtime itself (QK and PV formats per head, as the pattern says) on inputs converted to the
// chosen dtype.
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
    std::string qk_, pv_;  // how QK and PV run: "INT8", "16-bit", "fp16"..., or "A/B (per head)"
};


}  // namespace paro::gpu
