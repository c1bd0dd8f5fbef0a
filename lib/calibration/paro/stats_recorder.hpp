#pragma once
// StatsRecorder: calibration statistics gathered one (layer, sample) at a time, as a model's
// forward pass produces them (the GPU tile statistics run on the model's tensors: libparo_stats),
// and written as a paro-stats file (stats_file.hpp). add() hands a group of heads' six-order tile
// statistics to a worker thread, which scores them (score_sample, on `threads` cores) and appends
// each head's six kept masses to a spool file (created in spool_dir and unlinked at once, so a
// crash leaves nothing behind); write() chooses each head's order from all its samples' metrics
// and copies that order's masses from the spool into the statistics file.
// Memory: up to four groups' statistics (the caller's, two queued, the one being scored) plus
// every head's metrics. Disk: the spool holds
// six orders' masses per (head, sample), six times what the statistics file keeps, until write().
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "paro/stats_file.hpp"

namespace paro {

class StatsRecorder {
public:
    // Throws ParameterError for options calibrate would refuse, InputError ("spool") when
    // spool_dir cannot hold the spool.
    StatsRecorder(const TokenLayout& layout, const StatsScoring& scoring, const std::string& spool_dir, int threads);
    ~StatsRecorder();
    StatsRecorder(const StatsRecorder&) = delete;
    StatsRecorder& operator=(const StatsRecorder&) = delete;

    // Heads [0, stats.size()) of `layer` on `sample` (both numbered by the caller from 0; every
    // layer must come with the same head count each time). Queues them and returns, waiting only
    // while two groups are queued. Rethrows an earlier failure of the worker.
    void add(int64_t layer, int64_t sample, int64_t head_dim, double scale, std::vector<SixOrderStats>&& stats);

    // Finishes the queued work and writes the statistics file to `path` (atomically). header gives
    // the layout (the recorder's), the samples (one per sample number, every layer having had each),
    // model, num_steps and prompt names; model_layer the model's index of each layer (or empty).
    // all_orders: keep every head's masses under all six orders (six times the size), so that the
    // file merges exactly with files of more samples whatever order they choose (stats_merge.hpp).
    void write(const std::string& path, const DumpInfo& header, const std::vector<int64_t>& model_layer,
               const std::string& tile_statistics, bool all_orders = false);

    // Seconds the worker has spent scoring and spooling.
    double busy_seconds() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace paro
