#pragma once
// Statistics files, format "paro-stats" version 1 (docs/formats.md, schemas/paro-stats-v1.json):
// what calibration keeps of each sample, made inside the model's forward pass (paro.Capture(stats=...),
// StatsRecorder) or from a dump (paro calibrate --stats-out). Per (layer, head, sample): the six
// orders' metrics, scored with the options recorded in the file, and the tile masses (float32)
// under the order those metrics choose for the head; optionally (all orders) under the other five
// orders too, so that files of more samples merge exactly whatever order the merged samples choose
// (stats_merge.hpp). `paro calibrate` turns one into the pattern the dump of the same run gives
// (calibrate_stats.cpp). The layout attributes and /samples are a paro-dump's (dump.hpp).
#include <algorithm>
#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "paro/dump.hpp"
#include "paro/hdf5_io.hpp"
#include "paro/head_scoring.hpp"

namespace paro {

// The options the metrics were scored with: calibrating the file must use the same.
struct StatsScoring {
    TileStatsOptions tiles;
    MaskOptions mask;
    ObjectiveOptions objective;
};

struct StatsInfo {
    DumpInfo dump;  // layout, samples, and per layer heads, head_dim, scale (no v)
    StatsScoring scoring;
    std::vector<int64_t> model_layer;  // per layer: the model's call index (-1: not recorded)
    std::string tile_statistics;       // what computed them, e.g. "CUDA wgmma fp16 (NVIDIA H200)"
    int64_t tiles_per_side() const;
};

// One layer's metrics, [heads][samples], and the order of each head's stored masses.
struct StatsLayerScores {
    std::vector<std::vector<SampleMetrics>> metrics;
    std::vector<AxisOrder> order;
};

class StatsReader {
public:
    // Opens and validates every attribute and shape, and the metrics' values. Throws InputError
    // naming the file and the attribute or dataset at fault.
    explicit StatsReader(const std::string& path);
    const StatsInfo& info() const { return info_; }
    // Whether the file keeps every head's masses under all six orders (every layer has other_mass).
    bool all_orders() const { return std::find(has_others_.begin(), has_others_.end(), false) == has_others_.end(); }
    StatsLayerScores read_scores(int64_t layer) const;
    // Heads [h0, h0 + count) of a layer: [count][samples][nb * nb] masses. Throws InputError on
    // a negative, NaN or infinite mass.
    std::vector<float> read_mass(int64_t layer, int64_t h0, int64_t count) const;
    // One head's masses under `order`, [samples][nb * nb]: its stored order's (`stored`, from
    // read_scores), or another's from a file with all orders (else InputError).
    std::vector<float> read_head_mass(int64_t layer, int64_t head, AxisOrder stored, AxisOrder order) const;
    // CRC-32 of every value read so far (metrics, then masses), in the order read.
    uint32_t checksum() const { return crc_; }

private:
    std::vector<float> checked_masses(const std::string& path, const std::vector<int64_t>& start,
                                      const std::vector<int64_t>& count, int64_t first_head) const;

    h5::File file_;
    StatsInfo info_;
    std::vector<bool> has_others_;  // per layer: other_mass present
    mutable uint32_t crc_ = 0;
};

// Where one (head, sample)'s masses under an order come from: nb * nb floats into out.
using HeadMassFn = std::function<void(int64_t sample, AxisOrder order, float* out)>;

// Writes a statistics file at `path` (the caller renames it into place: AtomicOutput). Layers are
// written in any order, each once: begin_layer, each head once (write_head, from any thread one
// at a time), then end_layer with the metrics and the orders the heads were written under; or all
// at once, write_layer. all_orders: each head's masses under the other five orders too.
class StatsWriter {
public:
    StatsWriter(const std::string& path, const StatsInfo& info, bool all_orders);
    void begin_layer(int64_t layer);
    void write_head(int64_t layer, int64_t head, AxisOrder order, const HeadMassFn& mass);
    void end_layer(int64_t layer, const StatsLayerScores& scores);
    // mass(head, sample, order, out), every head under scores.order.
    void write_layer(int64_t layer, const StatsLayerScores& scores,
                     const std::function<void(int64_t head, int64_t sample, AxisOrder order, float* out)>& mass);
    void close() { file_.close(); }

private:
    h5::File file_;
    StatsInfo info_;
    bool all_orders_;
    std::vector<std::vector<int>> written_;  // per layer begun: each head's order index (-1: not yet)
};

// The five orders other than `stored`, in paro's numbering: the order of other_mass's third axis.
std::array<AxisOrder, kNumOrders - 1> other_orders(AxisOrder stored);

// The scoring options as (name, value) texts in a fixed order, named as the file's attributes and
// calibrate's option fields: what statistics must share to be calibrated with given options, or merged.
std::vector<std::pair<std::string, std::string>> scoring_fields(const StatsScoring& s);

// The bytes a statistics file of `info` takes: its masses (with all_orders, six orders'), plus the
// metrics; deflate does not shrink float masses much, so this is close to the file's size.
double stats_file_bytes(const StatsInfo& info, bool all_orders);
// "1.2 GB", "3.4 MB", "56 KB".
std::string readable_bytes(double bytes);
// Refuses (InputError naming the path and `option`) to start writing `bytes` where the output's
// file system has less free space, with a hint (e.g. the smaller variant); a full disk would
// otherwise end a long run at its last write.
void require_free_space(const std::string& output, double bytes, const std::string& option, const std::string& hint);

// True when the file's root says paro_format = "paro-stats" (no other validation).
bool looks_like_stats(const std::string& path);

}  // namespace paro
