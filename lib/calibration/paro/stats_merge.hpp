#pragma once
// Merging statistics files of one model: the way a pattern grows with more calibration prompts.
// Files made at different times (paro calibrate --stats-out on dumps of other prompts, or
// paro.Capture(stats=...) runs) that agree on the layout, the layers and the scoring options merge
// into one file holding all their samples, in the order given: exactly the file one recording of
// all those samples makes. Each head's order is chosen again from every sample's metrics (the
// samples are scored alone, so they add up), and its masses are taken under that order: from the
// masses a file stores under its own choice, or, where the merged samples choose another order,
// from the file's other orders' masses (written with all orders), else the merge is refused.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace paro {

struct StatsMergeResult {
    int64_t samples = 0, layers = 0, heads = 0;
    int64_t reordered = 0;    // heads whose merged order differs from the order some input stored
    bool all_orders = false;  // the output keeps all six orders' masses (every input did)
    bool prompt_names = false;  // prompts matched by name (every input names its prompts); else renumbered
};

// Writes the merge of `inputs` (at least two paro-stats files) to `output` atomically. Throws
// InputError naming the input and the attribute or dataset at fault: another layout, model, layer
// shape or scoring option than the first input, a file given twice, a sample (prompt name, step,
// timestep) in two inputs, or masses missing under a head's merged order.
// progress(heads done, heads in all), when given, after each head. Refuses to start when the
// output's file system has too little space for the merged file.
StatsMergeResult merge_stats(const std::vector<std::string>& inputs, const std::string& output,
                             const std::function<void(int64_t, int64_t)>& progress = {});

}  // namespace paro
