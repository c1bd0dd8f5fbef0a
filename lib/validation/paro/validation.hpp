#pragma once
// Validation of a pattern against a dump (`paro validate`): for each (sample, layer, head) the
// error of fp32 attention with the pattern's mask against dense fp32 attention (the mask error),
// and, with a backend that runs the real kernel, of its output against the masked reference (the
// quantization error) and against dense (the total). The backend computes the outputs; this file
// owns the input checks, the walk over samples and layers, and the statistics.
#include <functional>
#include <string>
#include <vector>

#include "paro/attention_reference.hpp"
#include "paro/dump.hpp"
#include "paro/pattern.hpp"

namespace paro {

// Outputs of one (sample, layer) for all heads, each [heads, N, D] in original token order.
struct LayerOutputs {
    std::vector<float> dense, masked, kernel;  // kernel stays empty for a reference-only backend
};

// One (sample, layer) of inputs, [heads, N, D] each, original token order.
struct LayerInputs {
    int64_t layer = 0, heads = 0, tokens = 0, head_dim = 0;
    int slot = 0;
    double scale = 0;
    std::vector<float> q, k, v;
};

class ValidationBackend {
public:
    virtual ~ValidationBackend() = default;
    virtual std::string describe() const = 0;  // "CPU fp32 reference", "NVIDIA H100 ..., INT8 QK + INT8 PV"
    virtual bool runs_kernel() const = 0;
    virtual void run(const Pattern& pattern, const LayerInputs& in, LayerOutputs& out) = 0;
};

// Exact and slow: lib/validation/paro/attention_reference for both references, no kernel.
class CpuValidationBackend : public ValidationBackend {
public:
    std::string describe() const override { return "CPU fp32 reference, no quantization"; }
    bool runs_kernel() const override { return false; }
    void run(const Pattern& pattern, const LayerInputs& in, LayerOutputs& out) override;
};

struct HeadValidation {
    int sample = 0, layer = 0, head = 0, slot = 0;
    AxisOrder order = AxisOrder::FHW;
    double density = 0;
    ErrorStats mask, quant, total;  // quant and total equal mask's when no kernel ran
    bool has_quant = false;
};

struct ValidationScope {
    std::vector<int> samples, layers;  // empty: all
    int slot = -1;                     // -1: each sample's slot from its step
};

// Checks that the dump fits the pattern (check_dump_fits_pattern) and validation (v, q/k, a slot
// for every sample) before any work. Throws InputError naming the file and dataset at fault, or
// ParameterError ("slot"). pattern_file, when given, is named in a mismatch.
void check_validation_inputs(const Pattern& pattern, const DumpInfo& dump, const ValidationScope& scope,
                             const std::string& pattern_file = "");

// Runs every selected (sample, layer) through the backend; progress(done, total) after each.
std::vector<HeadValidation> validate_pattern(const Pattern& pattern, DumpReader& dump, const ValidationScope& scope,
                                             ValidationBackend& backend,
                                             const std::function<void(int64_t, int64_t)>& progress = {});

// The worse of two error statistics, field by field; NaN is worse than any number, so a check of
// the worst fails exactly when a check of one of them fails.
ErrorStats worst_of(const ErrorStats& a, const ErrorStats& b);

// One (layer, head) over the samples validated: the worst of each error statistic.
struct HeadWorst {
    int layer = 0, head = 0;
    AxisOrder order = AxisOrder::FHW;
    int samples = 0;
    double mean_density = 0;  // over the samples (their slots' masks may differ)
    ErrorStats mask, quant, total;
    bool has_quant = false;
};

// One entry per (layer, head) in results, ordered by layer, then head.
std::vector<HeadWorst> worst_over_samples(const std::vector<HeadValidation>& results);

}  // namespace paro
