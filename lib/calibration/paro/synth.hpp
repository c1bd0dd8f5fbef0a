#pragma once
// Synthetic paro-dump files with planted head kinds, for examples, tests and benchmarks.
// Each head attends locally along its "tight" axes and freely along the others:
//   spatial  tight F        (within its frame)         accepted orders FHW, FWH
//   temporal tight H, W     (same place, all frames)   accepted orders HWF, WHF
//   row      tight F, H     (along its row)            accepted orders FHW, HFW
//   column   tight F, W     (along its column)         accepted orders FWH, WFH
// q and k carry, for each tight axis, cos/sin features of the coordinate at several frequencies,
// so q_i . k_j peaks where the tight coordinates agree; per-sample noise stands in for prompts.
#include <cstdint>
#include <string>
#include <vector>

#include "paro/axis_order.hpp"
#include "paro/runtime_limits.hpp"
#include "paro/token_layout.hpp"

namespace paro {

enum class HeadKind { spatial, temporal, row, column };

std::string to_string(HeadKind k);
HeadKind parse_head_kind(const std::string& name);  // throws ParameterError ("kinds")
// The orders that put the kind's tight axes outermost and its free axes innermost.
std::vector<AxisOrder> accepted_orders(HeadKind k);

struct SynthOptions {
    TokenLayout layout{{4, 12, 16}, 32, TextPosition::prefix};
    int layers = 2;
    int heads = 4;
    int samples = 2;
    int prompts = 1;
    int num_steps = 50;
    int head_dim = kRuntimeHeadDims[0];
    bool maps = false;    // write post-softmax attention maps instead of q/k
    bool with_v = true;
    bool float16 = true;
    double sharpness = 14.0;  // logit gap between a matching and an unrelated key
    double noise = 0.25;      // per-sample noise on q/k, relative to the features
    uint64_t seed = 0;
    std::vector<HeadKind> kinds{HeadKind::spatial, HeadKind::temporal, HeadKind::row, HeadKind::column};
    std::string model = "synthetic";
};

// The kind planted in (layer, head): kinds cycle over heads, shifted by layer.
HeadKind planted_kind(const SynthOptions& opt, int layer, int head);

// Writes atomically (temporary file, then rename). Throws InputError for impossible options.
void write_synthetic_dump(const SynthOptions& opt, const std::string& path);

}  // namespace paro
