#pragma once
// Calibration: a paro-dump in, a Pattern out. For each (layer, head) it streams every sample's
// slice through a TileStatsBackend (the CPU TileStatsEngine unless the caller passes another),
// scores the six orders, chooses one, and builds one mask per timestep slot from the tile masses
// of that slot's samples under the chosen order. Heads go through the backend in groups of its
// batch_heads() (one for the CPU engine), sample by sample.
// Memory: one group's slices plus, per head of the group and sample, the six orders' tile masses.
#include <functional>
#include <string>

#include "paro/dump.hpp"
#include "paro/mask_builder.hpp"
#include "paro/objective.hpp"
#include "paro/pattern.hpp"
#include "paro/tile_stats_backend.hpp"
#include "paro/timestep_slots.hpp"

namespace paro {

struct CalibrateOptions {
    TileStatsOptions tiles;
    ObjectiveOptions objective;
    MaskOptions mask;
    int slots = 1;
    bool share_later_half = true;  // the paper's slot plan (see SlotPlan::make)
    int qk_bits = 8;
    PvFormat pv_format = PvFormat::int8;
    std::string options_json;      // recorded in the pattern's provenance
    // Called after each (layer, head) with (heads done, heads total).
    std::function<void(int64_t, int64_t)> progress;
};

// Checks options against the dump before any work (slots without samples, missing v, bits).
// Throws ParameterError naming the field of CalibrateOptions at fault, or InputError naming the
// dataset the options need.
void validate_calibration(const DumpInfo& dump, const CalibrateOptions& opt);

// With the CPU TileStatsEngine.
Pattern calibrate(DumpReader& dump, const CalibrateOptions& opt);
// With the given backend, built for the dump's layout and opt.tiles (else ParameterError "tiles").
Pattern calibrate(DumpReader& dump, const CalibrateOptions& opt, TileStatsBackend& tiles);

}  // namespace paro
