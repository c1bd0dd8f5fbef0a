#include "paro/stats_sink.hpp"

#include <algorithm>

#include "paro/error.hpp"

namespace paro {

StatsFileSink::StatsFileSink(const std::string& path, const StatsInfo& info, bool all_orders)
    : out_(path), info_(info), writer_(out_.temp_path(), info, all_orders), pending_(info.dump.layers.size()) {
    for (const DumpLayer& l : info.dump.layers) heads_left_.push_back(l.heads);
}

void StatsFileSink::head(int64_t layer, int64_t head, const std::vector<SampleMetrics>& metrics, AxisOrder order,
                         const std::vector<SampleMasses>& mass) {
    std::lock_guard<std::mutex> lock(mutex_);
    StatsLayerScores& scores = pending_[layer];
    if (scores.order.empty()) {
        writer_.begin_layer(layer);
        scores.order.resize(static_cast<size_t>(info_.dump.layers[layer].heads));
        scores.metrics.resize(scores.order.size());
    }
    writer_.write_head(layer, head, order, [&](int64_t s, AxisOrder o, float* out) {
        const std::vector<float>& m = mass[s][index_of(o)];
        std::copy(m.begin(), m.end(), out);
    });
    scores.order[head] = order;
    scores.metrics[head] = metrics;
    if (--heads_left_[layer] == 0) {
        writer_.end_layer(layer, scores);
        scores = StatsLayerScores{};
    }
}

void StatsFileSink::commit() {
    for (int64_t left : heads_left_) PARO_ASSERT(left == 0);  // the calibration finished every head
    writer_.close();
    out_.commit();
}

}  // namespace paro
