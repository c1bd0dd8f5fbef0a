// calibrate(StatsReader&, ...): the pattern from a statistics file (stats_file.hpp). The metrics and
// the chosen order's masses were made at capture by the same score_sample the dump path runs, so
// finishing each head here is the dump path's finish (head_scoring.hpp).
#include <fmt/format.h>
#include <omp.h>

#include <algorithm>
#include <cmath>

#include "paro/calibrator.hpp"
#include "paro/error.hpp"
#include "paro/head_scoring.hpp"
#include "paro/memory_budget.hpp"
#include "paro/parallel.hpp"
#include "paro/stats_file.hpp"

namespace paro {

namespace {

// The options calibrate was given must be those the metrics were scored with (the file's).
void check_scoring(const StatsInfo& info, const CalibrateOptions& opt) {
    const auto file = scoring_fields(info.scoring), asked = scoring_fields({opt.tiles, opt.mask, opt.objective});
    for (size_t i = 0; i < file.size(); ++i)
        if (file[i].second != asked[i].second)
            throw ParameterError(file[i].first,
                                 fmt::format("is {} but the statistics were scored with {} at capture: calibrate them "
                                             "with the same value (the default when the option is not given), or "
                                             "capture again",
                                             asked[i].second, file[i].second),
                                 info.dump.path);
}

// The working set of one head (its masses, the slot sums, a TileStats and a ranking of one order)
// times the heads finished at once, against the memory budget.
void check_memory(const StatsInfo& info, int slots, int64_t heads_at_once) {
    const double tiles = std::pow(static_cast<double>(info.tiles_per_side()), 2);
    const double samples = static_cast<double>(info.dump.samples.size());
    const double per_head = tiles * (4.0 * samples + 4.0 * slots + 40.0);
    require_memory(per_head * static_cast<double>(heads_at_once),
                   fmt::format("{} heads at once ({} tokens: {} x {} tiles, {} samples)", heads_at_once,
                               info.dump.tokens(), info.tiles_per_side(), info.tiles_per_side(), info.dump.samples.size()),
                   info.dump.path, "/layers/0/mass");
}

}  // namespace

Pattern calibrate(const StatsReader& reader, const CalibrateOptions& opt) {
    const StatsInfo& info = reader.info();
    check_scoring(info, opt);
    validate_calibration(info.dump, opt);
    const SlotPlan plan = SlotPlan::make(opt.slots, opt.share_later_half);
    check_memory(info, plan.count(), std::max(1, omp_get_max_threads()));
    const std::vector<int> slot_of_sample = sample_slots(info.dump, plan);
    const TileGrid grid{info.dump.tokens(), opt.tiles.block};
    const BlockMask forced = forced_tiles(info.dump.layout, grid, opt.mask);
    const size_t tiles = static_cast<size_t>(grid.tiles());
    const size_t S = info.dump.samples.size();
    Pattern pat = pattern_shell(info.dump, opt, plan);
    const int threads = omp_get_max_threads();
    const int64_t total = info.dump.total_heads();
    int64_t done = 0;
    for (int64_t l = 0; l < static_cast<int64_t>(info.dump.layers.size()); ++l) {
        const StatsLayerScores scores = reader.read_scores(l);
        const int64_t H = info.dump.layers[l].heads;
        std::vector<HeadChoice> choice;
        for (int64_t h = 0; h < H; ++h) {
            choice.push_back(choose_head_order(scores.metrics[h], opt));
            if (choice.back().order != scores.order[h])
                throw InputError(info.dump.path, fmt::format("/layers/{}/order", l),
                                 fmt::format("head {}: its metrics choose {} but its masses are stored under {}", h,
                                             to_string(choice.back().order), to_string(scores.order[h])));
        }
        // Groups of heads whose masses take at most 256 MiB.
        const int64_t group = std::max<int64_t>(1, (int64_t(256) << 20) / static_cast<int64_t>(S * tiles * sizeof(float)));
        LayerPattern& layer = pat.layers.emplace_back();
        layer.heads.resize(static_cast<size_t>(H));
        for (int64_t h0 = 0; h0 < H; h0 += group) {
            const int64_t count = std::min(group, H - h0);
            const std::vector<float> mass = reader.read_mass(l, h0, count);
            parallel_for(count, threads, [&](int64_t i) {
                const int64_t h = h0 + i;
                layer.heads[h] = finish_head(
                    scores.metrics[h], choice[h], [&](size_t s) { return mass.data() + (static_cast<size_t>(i) * S + s) * tiles; },
                    slot_of_sample, plan.count(), grid, forced, opt);
            });
            done += count;
            if (opt.progress) opt.progress(done, total);
        }
    }
    pat.provenance.source_checksum = fmt::format("crc32:{:08x}", reader.checksum());
    return pat;
}

}  // namespace paro
