#pragma once
// Pattern: the deployable result of calibration, and its file format "paro-pattern" version 1
// (docs/formats.md, schemas/paro-pattern-v1.json). The CUDA runtime and the report read it
// through read_pattern_file; only calibrate writes it.
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "paro/axis_order.hpp"
#include "paro/block_mask.hpp"
#include "paro/pv_format.hpp"
#include "paro/runtime_limits.hpp"
#include "paro/timestep_slots.hpp"
#include "paro/token_layout.hpp"

namespace paro {

// The version written (1: per-head pv_bits; 2: per-head pv_format). Both are read, version 1 into
// the current form.
constexpr int64_t kPatternVersion = 2;

// Per-order metrics of one head, aggregated over the calibration samples.
struct OrderMetrics {
    double objective = 0;      // the value the chosen objective ranks by (see objective.hpp)
    double sparsity = 0;       // paper: fraction of tiles with >= sigma of entries below eps
    double incoherence = 0;    // paper: mean over tiles of max / mean
    double recall = 0;         // attention mass kept by the mask (target density or recall rule)
    double output_rel_l1 = -1; // relative L1 of masked vs dense output; -1 when not computed
    double free_recall = 0;    // share of the non-forced mass in the best density share of non-forced tiles
};
constexpr int kNumMetrics = 6;
// Column names of /layers/<l>/scores (its attribute "metrics"); readers match columns by name.
inline const std::array<const char*, kNumMetrics> kMetricNames = {"objective", "sparsity",      "incoherence",
                                                                   "recall",    "output_rel_l1", "free_recall"};
// The fields of OrderMetrics in the order of kMetricNames.
inline std::array<double*, kNumMetrics> metric_fields(OrderMetrics& m) {
    return {&m.objective, &m.sparsity, &m.incoherence, &m.recall, &m.output_rel_l1, &m.free_recall};
}
inline std::array<double, kNumMetrics> metric_values(OrderMetrics m) {
    std::array<double, kNumMetrics> v{};
    const auto f = metric_fields(m);
    for (int i = 0; i < kNumMetrics; ++i) v[i] = *f[i];
    return v;
}

struct HeadPattern {
    AxisOrder order = AxisOrder::FHW;
    std::vector<BlockMask> masks;       // one per slot, over the permuted sequence
    std::vector<double> density;        // per slot: fraction of all tiles kept
    std::vector<double> recall;         // per slot: attention mass kept (over that slot's samples)
    std::array<OrderMetrics, kNumOrders> scores{};  // indexed by index_of(AxisOrder)
    std::vector<uint8_t> sample_order;  // per sample: the order that sample alone would choose
    std::vector<double> sample_recall;  // per sample: mass its slot's shared mask keeps on it
    int qk_bits = 8;
    PvFormat pv_format = PvFormat::int8;
};

struct LayerPattern {
    std::vector<HeadPattern> heads;
};

struct Provenance {
    std::string tool_version;
    std::string options_json;  // the options calibrate ran with, as one JSON object
    std::string source_dump;   // file name of the dump
    std::string source_checksum;  // "crc32:xxxxxxxx" of every float read from the dump
    std::string created;       // UTC, ISO 8601
};

// Spread of the per-mask density over every (slot, layer, head); quantiles by nearest rank.
struct DensityDistribution {
    double min = 0, p10 = 0, median = 0, p90 = 0, max = 0;
    bool varies() const { return max > min; }  // adaptive masks (calibrate --recall) differ
};

struct Pattern {
    TokenLayout layout;
    int block_q = kRuntimeTile;
    int block_k = kRuntimeTile;
    SlotPlan slots;
    std::string objective;  // name of the objective that chose the orders
    bool higher_is_better = true;  // direction of OrderMetrics::objective
    Provenance provenance;
    std::vector<LayerPattern> layers;

    int64_t tiles_per_side() const { return (layout.tokens() + block_q - 1) / block_q; }
    int64_t num_samples() const;
    double mean_density() const;
    double mean_recall() const;
    DensityDistribution density_distribution() const;
};

// Heads [h0, h0 + count) of one layer of a dump: a piece of calibration work.
struct HeadBlock {
    int64_t layer = 0, h0 = 0, count = 0;
};

// The CRC-32 of the values calibration read for one layer, and how many bytes it covers: the pieces
// combine (zlib's crc32_combine) into the pattern's source_checksum, whichever process read them.
struct LayerChecksum {
    uint32_t crc = 0;
    int64_t bytes = 0;
};

// Part of a calibration: layers [first_layer, first_layer + pattern.layers.size()) of a dump with
// total_layers layers, finished (orders, masks, scores), with the checksum of what each read.
// Written by `paro calibrate --layers` and as the checkpoints of a run; `paro merge` and a resumed
// run stitch them into the pattern one run makes. File format "paro-partial": a pattern file's
// layout (docs/formats.md) plus first_layer, total_layers, source_identity and per layer
// read_crc32 and read_bytes; pattern readers refuse it by its format name.
struct PartialPattern {
    Pattern pattern;
    int64_t first_layer = 0;
    int64_t total_layers = 0;
    std::vector<LayerChecksum> checksums;  // per layer of `pattern`
    std::string source_identity;           // the dump's size and modification time when read
};

// Writes atomically: a temporary file beside `path`, renamed over it when complete.
// Returns the size of the file in bytes.
int64_t write_pattern_file(const Pattern& p, const std::string& path);
// Reads and validates. Throws InputError naming the file and the object at fault.
Pattern read_pattern_file(const std::string& path);
namespace h5 {
class File;
}
// The pattern reader's rules beyond the schema's layout, on a file `paro check` has found to fit
// the schema (paro-pattern v1 or v2): throws the InputError read_pattern_file would.
void check_pattern_rules(const h5::File& f);
int64_t write_partial_file(const PartialPattern& part, const std::string& path);
PartialPattern read_partial_file(const std::string& path);
bool looks_like_pattern(const std::string& path);

// The order names in the file's own index order (written as /attribute order_names).
const std::array<const char*, kNumOrders>& pattern_order_names();

}  // namespace paro
