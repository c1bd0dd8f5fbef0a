#pragma once
// Statistics files, format "paro-stats" version 1 (docs/formats.md, schemas/paro-stats-v1.json):
// what calibration keeps of each sample when the tile statistics are computed inside the model's
// forward pass (paro.Capture(stats=...), StatsRecorder) instead of from a dump of q/k. Per (layer,
// head, sample): the six orders' metrics, scored at capture with the options recorded in the file,
// and the tile masses (float32) under the order those metrics choose for the head. `paro
// calibrate` turns one into the pattern the dump of the same run gives (calibrate_stats.cpp). The
// layout attributes and /samples are a paro-dump's (dump.hpp).
#include <cstdint>
#include <string>
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
    StatsLayerScores read_scores(int64_t layer) const;
    // Heads [h0, h0 + count) of a layer: [count][samples][nb * nb] masses. Throws InputError on
    // a negative, NaN or infinite mass.
    std::vector<float> read_mass(int64_t layer, int64_t h0, int64_t count) const;
    // CRC-32 of every value read so far (metrics, then masses), in the order read.
    uint32_t checksum() const { return crc_; }

private:
    h5::File file_;
    StatsInfo info_;
    mutable uint32_t crc_ = 0;
};

// Writes a statistics file at `path` (the caller renames it into place: AtomicOutput). Layers are
// written one at a time, in any order; each must be written once.
class StatsWriter {
public:
    StatsWriter(const std::string& path, const StatsInfo& info);
    // masses(h0, count, out): heads [h0, h0 + count) of the layer under their order, laid out as
    // read_mass returns them; called for groups of heads so memory stays at a group's masses.
    void write_layer(int64_t layer, const StatsLayerScores& scores,
                     const std::function<void(int64_t h0, int64_t count, float* out)>& masses);
    void close() { file_.close(); }

private:
    h5::File file_;
    StatsInfo info_;
};

// True when the file's root says paro_format = "paro-stats" (no other validation).
bool looks_like_stats(const std::string& path);

}  // namespace paro
