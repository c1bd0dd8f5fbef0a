#pragma once
// StatsFileSink: calibrate --stats-out's writer of the statistics file (stats_file.hpp).
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "paro/atomic_output.hpp"
#include "paro/stats_file.hpp"

namespace paro {

// A calibration's statistics written as its heads are finished (calibrate --stats-out, through
// CalibrateOptions::head_scored): each head's masses go to the file at once, a layer's metrics and
// orders with its last head; commit() renames the file into place once every head is in.
// Thread-safe: heads are written one at a time, under its lock (the calls into HDF5 come from the
// calibration's threads: paro requires a thread-safe libhdf5, CMakeLists.txt checks). Memory: one head's
// masses at a time, six orders' with all_orders.
class StatsFileSink {
public:
    StatsFileSink(const std::string& path, const StatsInfo& info, bool all_orders);
    void head(int64_t layer, int64_t head, const std::vector<SampleMetrics>& metrics, AxisOrder order,
              const std::vector<SampleMasses>& mass);
    void commit();

private:
    std::mutex mutex_;
    AtomicOutput out_;
    StatsInfo info_;
    StatsWriter writer_;
    std::vector<StatsLayerScores> pending_;  // per layer: the scores of the heads in so far
    std::vector<int64_t> heads_left_;
};

}  // namespace paro
