#pragma once
// Calibration: a paro-dump in, a Pattern out. For each (layer, head) it streams every sample's
// slice through a TileStatsBackend (the CPU TileStatsEngine unless the caller passes another),
// scores the six orders, chooses one, and builds one mask per timestep slot from the tile masses
// of that slot's samples under the chosen order. Heads go through a backend in groups of its
// batch_heads() (one for the CPU engine), sample by sample; per backend, the next group's slices
// are read while the current one's statistics are computed and the previous one is scored.
// Memory: per backend three groups' slices plus, per head of its groups and sample, the six
// orders' tile masses.
#include <array>
#include <functional>
#include <string>
#include <vector>

#include "paro/dump.hpp"
#include "paro/mask_builder.hpp"
#include "paro/objective.hpp"
#include "paro/pattern.hpp"
#include "paro/tile_stats_backend.hpp"
#include "paro/timestep_slots.hpp"

namespace paro {

// One sample's metrics of the six orders, and its tile masses (float32, nb * nb) under each order.
using SampleMetrics = std::array<OrderMetrics, kNumOrders>;
using SampleMasses = std::array<std::vector<float>, kNumOrders>;

struct CalibrateOptions {
    TileStatsOptions tiles;
    ObjectiveOptions objective;
    MaskOptions mask;
    int slots = 1;
    bool share_later_half = true;  // the paper's slot plan (see SlotPlan::make)
    int qk_bits = 8;
    PvFormat pv_format = kDefaultPvFormat;
    std::string options_json;      // recorded in the pattern's provenance
    // Called after each (layer, head) with (heads done, heads total).
    std::function<void(int64_t, int64_t)> progress;
    // The dump's layers to calibrate, increasing (empty: all). The pattern holds these, in order.
    std::vector<int64_t> layers;
    // Or the heads to calibrate, in blocks of one layer each, in (layer, head) order, not
    // overlapping (`layers` empty then). Blocks that split a layer share its work between processes
    // (mpirun): the pattern returned holds only the layers whose every head is in a block, and the
    // blocks' results reach the caller through block_done.
    std::vector<HeadBlock> blocks;
    // Called when a block's last head is finished (every layer is one block unless `blocks` says
    // otherwise; from worker threads, perhaps several at once): where a long run checkpoints a
    // layer, or a rank sends its heads to rank 0. An exception it throws stops the calibration.
    std::function<void(const HeadBlock&, const std::vector<HeadPattern>&)> block_done;
    // Called as each (layer, head) is finished, before block_done, with every sample's metrics, the
    // chosen order and every sample's masses under the six orders (from worker threads, perhaps
    // several at once): where calibrate --stats-out keeps the statistics (StatsFileSink).
    std::function<void(int64_t layer, int64_t head, const std::vector<SampleMetrics>& metrics, AxisOrder order,
                       const std::vector<SampleMasses>& mass)>
        head_scored;
};

// Checks options against the dump before any work (slots without samples, missing v, bits).
// Throws ParameterError naming the field of CalibrateOptions at fault, or InputError naming the
// dataset the options need.
void validate_calibration(const DumpInfo& dump, const CalibrateOptions& opt);

// Where a calibration's time went. The stages overlap (reads run ahead of the devices), so the
// parts add up to more than the wall time when the pipeline works.
struct CalibrationTimes {
    struct Device {
        std::string name;            // the backend's describe()
        double compute_seconds = 0;  // tile statistics of its batches
        double score_seconds = 0;    // its heads' objectives and masks (host)
        // Idle, waiting: for its next batch's read, and for its previous batch's scoring. Which one
        // a worker waits for says which stage bounds the pipeline (neither: its own statistics).
        double read_wait_seconds = 0, score_wait_seconds = 0;
    };
    std::vector<Device> devices;
    double read_seconds = 0;  // the reader thread: HDF5 reads and decoding
    int64_t stored_bytes = 0;  // read from the dump, as stored
    double wall_seconds = 0;
    // Around the pipeline, set by the caller when it knows them (0: not measured): from the start
    // of the command to the pipeline's (opening the dump, MPI, the devices), the devices' part of
    // that, and after it, assembling the finished layers before the write.
    double setup_seconds = 0, device_setup_seconds = 0, assemble_seconds = 0;
};

// With the CPU TileStatsEngine.
Pattern calibrate(DumpReader& dump, const CalibrateOptions& opt);
// With the given backend, built for the dump's layout and opt.tiles (else ParameterError "tiles").
Pattern calibrate(DumpReader& dump, const CalibrateOptions& opt, TileStatsBackend& tiles);
// Spread over several backends (one per device), each taking groups of heads in turn; the result
// is the same for any number of them. One reader thread feeds them, ahead of their work.
Pattern calibrate(DumpReader& dump, const CalibrateOptions& opt, const std::vector<TileStatsBackend*>& backends,
                  CalibrationTimes* times = nullptr);

class StatsReader;
// From a statistics file (stats_file.hpp) instead of a dump: the pattern the dump of the same run
// gives with the same options (all but the provenance's source and checksum, which name the
// statistics file). The options the metrics were scored with at capture (opt.tiles, opt.mask,
// opt.objective) must be the file's: ParameterError names the first that differs. Slots and the
// quantization plan are free.
Pattern calibrate(const StatsReader& stats, const CalibrateOptions& opt);

}  // namespace paro
