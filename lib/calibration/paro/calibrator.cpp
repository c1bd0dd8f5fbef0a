#include "paro/calibrator.hpp"

#include <fmt/format.h>

#include <chrono>
#include <ctime>
#include <filesystem>

#include "paro/error.hpp"
#include "paro/output_error.hpp"
#include "paro/version.hpp"

namespace paro {

namespace {

std::vector<int> sample_slots(const DumpInfo& dump, const SlotPlan& plan) {
    std::vector<int> slot(dump.samples.size(), 0);
    if (plan.count() > 1)
        for (size_t s = 0; s < slot.size(); ++s) slot[s] = plan.slot_of(dump.step_fraction(static_cast<int64_t>(s)));
    return slot;
}

std::string utc_now() {
    const std::time_t t = std::time(nullptr);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
    return buf;
}

// Mean of each metric over the samples (output_rel_l1 stays -1 when it was not computed).
std::array<OrderMetrics, kNumOrders> mean_metrics(const std::vector<std::array<OrderMetrics, kNumOrders>>& per_sample) {
    std::array<OrderMetrics, kNumOrders> mean{};
    const double S = static_cast<double>(per_sample.size());
    for (int o = 0; o < kNumOrders; ++o) {
        auto fields = metric_fields(mean[o]);
        for (double* f : fields) *f = 0.0;  // OrderMetrics defaults output_rel_l1 to -1
        for (const auto& sample : per_sample) {
            const auto values = metric_values(sample[o]);
            for (int k = 0; k < kNumMetrics; ++k) *fields[k] += values[k] / S;
        }
    }
    return mean;
}

// Calibrates one (layer, head): scores the six orders on every sample, chooses one, and builds a
// mask per slot from the tile masses of that slot's samples under the chosen order.
struct HeadCalibrator {
    DumpReader& reader;
    const TileStatsEngine& engine;
    const BlockMask& forced;
    const std::vector<int>& slot_of_sample;
    int slots;
    const CalibrateOptions& opt;

    HeadPattern run(int64_t layer, int64_t head) const {
        const int64_t S = static_cast<int64_t>(slot_of_sample.size());
        const bool need_v = opt.objective.kind == ObjectiveKind::output_error;
        HeadPattern hp;
        std::vector<std::array<OrderMetrics, kNumOrders>> per_sample(S);
        std::vector<std::array<std::vector<double>, kNumOrders>> sample_mass(S);
        std::vector<std::array<TileStats, kNumOrders>> slot_stats(slots);
        for (auto& ss : slot_stats) ss.fill(TileStats(engine.grid()));

        for (int64_t s = 0; s < S; ++s) {
            const HeadSlice slice = reader.read(s, layer, head, need_v);
            const SixOrderStats stats = engine.compute(slice);
            std::array<BlockMask, kNumOrders> masks;
            for (int o = 0; o < kNumOrders; ++o) {
                masks[o] = build_mask(stats[o], forced, opt.mask);
                per_sample[s][o] = order_metrics(stats[o], masks[o], forced, opt.mask.density, opt.objective);
            }
            if (need_v) {
                const auto err = masked_output_error(slice, engine, masks);
                for (int o = 0; o < kNumOrders; ++o) per_sample[s][o].output_rel_l1 = err[o];
            }
            for (int o = 0; o < kNumOrders; ++o) {
                slot_stats[slot_of_sample[s]][o].accumulate(stats[o]);
                sample_mass[s][o] = stats[o].mass;
            }
            apply_objective(per_sample[s], opt.objective);
            hp.sample_order.push_back(static_cast<uint8_t>(index_of(choose_order(per_sample[s], opt.objective.kind))));
        }
        hp.scores = mean_metrics(per_sample);
        apply_objective(hp.scores, opt.objective);
        hp.order = choose_order(hp.scores, opt.objective.kind);
        const int chosen = index_of(hp.order);
        for (int t = 0; t < slots; ++t) {
            const TileStats& st = slot_stats[t][chosen];
            BlockMask m = build_mask(st, forced, opt.mask);
            hp.density.push_back(m.density());
            hp.recall.push_back(mask_recall(m, st.mass));
            hp.masks.push_back(std::move(m));
        }
        for (int64_t s = 0; s < S; ++s)
            hp.sample_recall.push_back(mask_recall(hp.masks[slot_of_sample[s]], sample_mass[s][chosen]));
        hp.qk_bits = opt.qk_bits;
        hp.pv_format = opt.pv_format;
        return hp;
    }
};

}  // namespace

void validate_calibration(const DumpInfo& dump, const CalibrateOptions& opt) {
    if (opt.tiles.block < 16 || opt.tiles.block > 1024)
        throw InputError("", "option --block", fmt::format("tile size {} is outside 16..1024", opt.tiles.block));
    if (!(opt.mask.density > 0 && opt.mask.density <= 1))
        throw InputError("", "option --density", fmt::format("must be in (0, 1], got {}", opt.mask.density));
    if (!(opt.tiles.eps > 0)) throw InputError("", "option --eps", "must be positive");
    if (!(opt.objective.sigma > 0 && opt.objective.sigma <= 1))
        throw InputError("", "option --sigma", "must be in (0, 1]");
    if (!(opt.objective.alpha >= 0 && opt.objective.alpha <= 1))
        throw InputError("", "option --alpha", "must be in [0, 1]");
    if (opt.qk_bits != 4 && opt.qk_bits != 8 && opt.qk_bits != 16)
        throw InputError("", "option --qk-bits", fmt::format("must be 4, 8 or 16, got {}", opt.qk_bits));
    if (opt.objective.kind == ObjectiveKind::output_error && !dump.has_v())
        throw InputError(dump.path, "/layers/*/v", "objective output-error needs v in every layer of the dump");
    const SlotPlan plan = SlotPlan::make(opt.slots, opt.share_later_half);
    if (plan.count() > 1) {
        if (!dump.has_steps())
            throw InputError(dump.path, "/samples/step",
                             fmt::format("--slots {} needs /samples/step and /samples attribute num_steps", opt.slots));
        std::vector<int> count(plan.count(), 0);
        for (int s : sample_slots(dump, plan)) ++count[s];
        for (int t = 0; t < plan.count(); ++t)
            if (count[t] == 0)
                throw InputError(dump.path, "option --slots",
                                 fmt::format("timestep slot {} (step fraction {}) has no calibration sample; dump "
                                             "samples from those steps or use fewer slots",
                                             t, plan.describe(t)));
    }
    // The forced tiles alone must fit the density (build_mask says so with the numbers).
    const TileGrid grid{dump.tokens(), opt.tiles.block};
    TileStats empty(grid);
    build_mask(empty, forced_tiles(dump.layout, grid, opt.mask), opt.mask);
}

Pattern calibrate(DumpReader& reader, const CalibrateOptions& opt) {
    const DumpInfo& dump = reader.info();
    validate_calibration(dump, opt);
    const SlotPlan plan = SlotPlan::make(opt.slots, opt.share_later_half);
    const std::vector<int> slot_of_sample = sample_slots(dump, plan);
    const TileStatsEngine engine(dump.layout, opt.tiles);
    const BlockMask forced = forced_tiles(dump.layout, engine.grid(), opt.mask);

    Pattern pat;
    pat.layout = dump.layout;
    pat.block_q = pat.block_k = static_cast<int>(opt.tiles.block);
    pat.slots = plan;
    pat.objective = to_string(opt.objective.kind);
    pat.higher_is_better = higher_is_better(opt.objective.kind);
    pat.provenance = {kVersion, opt.options_json, std::filesystem::path(dump.path).filename().string(), "", utc_now()};

    const HeadCalibrator head_calibrator{reader, engine, forced, slot_of_sample, plan.count(), opt};
    const int64_t total = dump.total_heads();
    int64_t done = 0;
    for (size_t l = 0; l < dump.layers.size(); ++l) {
        LayerPattern lp;
        for (int64_t h = 0; h < dump.layers[l].heads; ++h) {
            lp.heads.push_back(head_calibrator.run(static_cast<int64_t>(l), h));
            if (opt.progress) opt.progress(++done, total);
        }
        pat.layers.push_back(std::move(lp));
    }
    pat.provenance.source_checksum = fmt::format("crc32:{:08x}", reader.checksum());
    return pat;
}

}  // namespace paro
