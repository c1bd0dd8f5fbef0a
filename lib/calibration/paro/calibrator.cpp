#include "paro/calibrator.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <filesystem>

#include "paro/error.hpp"
#include "paro/tile_stats.hpp"
#include "paro/version.hpp"

namespace paro {

namespace {

// Every sample's slot; validate_calibration made sure each is known.
std::vector<int> sample_slots(const DumpInfo& dump, const SlotPlan& plan) {
    std::vector<int> slot(dump.samples.size());
    for (size_t s = 0; s < slot.size(); ++s) {
        slot[s] = sample_slot(dump, plan, static_cast<int64_t>(s));
        PARO_ASSERT(slot[s] != kUnknownSlot);
    }
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

// What every head's calibration shares.
struct CalibrationContext {
    const TileStatsBackend& tiles;
    const BlockMask& forced;
    const std::vector<int>& slot_of_sample;
    int slots;
    const CalibrateOptions& opt;
};

// Calibrates one (layer, head): fed every sample's statistics in turn (add_sample), it scores the
// six orders on each, then (finish) chooses one and builds a mask per slot from the tile masses
// of that slot's samples under the chosen order.
class HeadCalibration {
public:
    explicit HeadCalibration(const CalibrationContext& ctx) : ctx_(ctx), slot_stats_(ctx.slots) {
        for (auto& ss : slot_stats_) ss.fill(TileStats(ctx.tiles.grid()));
    }

    void add_sample(const HeadSlice& slice, const SixOrderStats& stats) {
        const CalibrateOptions& opt = ctx_.opt;
        const size_t sample = per_sample_.size();  // samples come in order
        PARO_ASSERT(slice.sample == static_cast<int64_t>(sample));
        std::array<OrderMetrics, kNumOrders>& metrics = per_sample_.emplace_back();
        std::array<BlockMask, kNumOrders> masks;
        for (int o = 0; o < kNumOrders; ++o) {
            masks[o] = build_mask(stats[o], ctx_.forced, opt.mask);
            metrics[o] = order_metrics(stats[o], masks[o], ctx_.forced, opt.mask, opt.objective);
        }
        if (needs_v(opt)) {
            const auto err = ctx_.tiles.output_error(slice, masks);
            for (int o = 0; o < kNumOrders; ++o) metrics[o].output_rel_l1 = err[o];
        }
        std::array<std::vector<double>, kNumOrders>& mass = sample_mass_.emplace_back();
        for (int o = 0; o < kNumOrders; ++o) {
            slot_stats_[ctx_.slot_of_sample[sample]][o].accumulate(stats[o]);
            mass[o] = stats[o].mass;
        }
        apply_objective(metrics, opt.objective);
        hp_.sample_order.push_back(static_cast<uint8_t>(index_of(choose_order(metrics, opt.objective.kind))));
    }

    HeadPattern finish() {
        const CalibrateOptions& opt = ctx_.opt;
        PARO_ASSERT(per_sample_.size() == ctx_.slot_of_sample.size());
        hp_.scores = mean_metrics(per_sample_);
        apply_objective(hp_.scores, opt.objective);
        hp_.order = choose_order(hp_.scores, opt.objective.kind);
        const int chosen = index_of(hp_.order);
        for (int t = 0; t < ctx_.slots; ++t) {
            const TileStats& st = slot_stats_[t][chosen];
            BlockMask m = build_mask(st, ctx_.forced, opt.mask);
            hp_.density.push_back(m.density());
            hp_.recall.push_back(mask_recall(m, st.mass));
            hp_.masks.push_back(std::move(m));
        }
        for (size_t s = 0; s < sample_mass_.size(); ++s)
            hp_.sample_recall.push_back(mask_recall(hp_.masks[ctx_.slot_of_sample[s]], sample_mass_[s][chosen]));
        hp_.qk_bits = opt.qk_bits;
        hp_.pv_format = opt.pv_format;
        return std::move(hp_);
    }

    static bool needs_v(const CalibrateOptions& opt) { return opt.objective.kind == ObjectiveKind::output_error; }

private:
    const CalibrationContext& ctx_;
    HeadPattern hp_;
    std::vector<std::array<OrderMetrics, kNumOrders>> per_sample_;
    std::vector<std::array<std::vector<double>, kNumOrders>> sample_mass_;
    std::vector<std::array<TileStats, kNumOrders>> slot_stats_;
};

}  // namespace

void validate_calibration(const DumpInfo& dump, const CalibrateOptions& opt) {
    if (opt.tiles.block < 16 || opt.tiles.block > 1024)
        throw ParameterError("block", fmt::format("tile size {} is outside 16..1024", opt.tiles.block));
    if (!(opt.mask.density > 0 && opt.mask.density <= 1))
        throw ParameterError("density", fmt::format("must be in (0, 1], got {}", opt.mask.density));
    if (!(opt.tiles.eps > 0)) throw ParameterError("eps", "must be positive");
    if (!(opt.objective.sigma > 0 && opt.objective.sigma <= 1)) throw ParameterError("sigma", "must be in (0, 1]");
    if (!(opt.objective.alpha >= 0 && opt.objective.alpha <= 1)) throw ParameterError("alpha", "must be in [0, 1]");
    if (opt.qk_bits != 4 && opt.qk_bits != 8 && opt.qk_bits != 16)
        throw ParameterError("qk_bits", fmt::format("must be 4, 8 or 16, got {}", opt.qk_bits));
    if (opt.objective.kind == ObjectiveKind::output_error && !dump.has_v())
        throw InputError(dump.path, "/layers/*/v", "objective output-error needs v in every layer of the dump");
    const SlotPlan plan = SlotPlan::make(opt.slots, opt.share_later_half);
    if (plan.count() > 1) {
        if (!dump.has_steps())
            throw ParameterError("slots",
                                 fmt::format("{} slots need the samples' steps (/samples/step and the /samples "
                                             "attribute num_steps), which the dump does not record",
                                             opt.slots),
                                 dump.path);
        std::vector<int> count(plan.count(), 0);
        for (int s : sample_slots(dump, plan)) ++count[s];
        for (int t = 0; t < plan.count(); ++t)
            if (count[t] == 0)
                throw ParameterError("slots",
                                     fmt::format("timestep slot {} (step fraction {}) has no calibration sample; dump "
                                                 "samples from those steps or use fewer slots",
                                                 t, plan.describe(t)),
                                     dump.path);
    }
    // build_mask checks the mask options, and that the forced tiles alone fit the density cap.
    const TileGrid grid{dump.tokens(), opt.tiles.block};
    TileStats empty(grid);
    build_mask(empty, forced_tiles(dump.layout, grid, opt.mask), opt.mask);
}

Pattern calibrate(DumpReader& reader, const CalibrateOptions& opt) {
    validate_calibration(reader.info(), opt);
    TileStatsEngine engine(reader.info().layout, opt.tiles);
    return calibrate(reader, opt, engine);
}

Pattern calibrate(DumpReader& reader, const CalibrateOptions& opt, TileStatsBackend& tiles) {
    const DumpInfo& dump = reader.info();
    validate_calibration(dump, opt);
    if (tiles.grid().tokens != dump.tokens() || tiles.grid().block != opt.tiles.block ||
        tiles.options().eps != opt.tiles.eps)
        throw ParameterError("tiles", fmt::format("the tile statistics backend was built for {} tokens, tile {}, eps "
                                                  "{}; the dump has {} tokens and the options ask for tile {}, eps {}",
                                                  tiles.grid().tokens, tiles.grid().block, tiles.options().eps,
                                                  dump.tokens(), opt.tiles.block, opt.tiles.eps));
    const SlotPlan plan = SlotPlan::make(opt.slots, opt.share_later_half);
    const std::vector<int> slot_of_sample = sample_slots(dump, plan);
    const BlockMask forced = forced_tiles(dump.layout, tiles.grid(), opt.mask);

    Pattern pat;
    pat.layout = dump.layout;
    pat.block_q = pat.block_k = static_cast<int>(opt.tiles.block);
    pat.slots = plan;
    pat.objective = to_string(opt.objective.kind);
    pat.higher_is_better = higher_is_better(opt.objective.kind);
    pat.provenance = {kVersion, opt.options_json, std::filesystem::path(dump.path).filename().string(), "", utc_now()};

    const CalibrationContext ctx{tiles, forced, slot_of_sample, plan.count(), opt};
    const bool need_v = HeadCalibration::needs_v(opt);
    const int64_t batch = std::max<int64_t>(1, tiles.batch_heads());
    const int64_t samples = static_cast<int64_t>(dump.samples.size());
    const int64_t total = dump.total_heads();
    int64_t done = 0;
    for (int64_t l = 0; l < static_cast<int64_t>(dump.layers.size()); ++l) {
        LayerPattern lp;
        const int64_t heads = dump.layers[l].heads;
        // Heads [h0, h0 + count) go through the backend together, one sample at a time.
        for (int64_t h0 = 0; h0 < heads; h0 += batch) {
            const int64_t count = std::min(batch, heads - h0);
            std::vector<HeadCalibration> group(static_cast<size_t>(count), HeadCalibration(ctx));
            std::vector<HeadSlice> slices(static_cast<size_t>(count));
            for (int64_t s = 0; s < samples; ++s) {
                for (int64_t i = 0; i < count; ++i) slices[i] = reader.read(s, l, h0 + i, need_v);
                const std::vector<SixOrderStats> stats = tiles.compute_batch(slices);
                PARO_ASSERT(static_cast<int64_t>(stats.size()) == count);
                // Heads are independent, so a batch's host work (masks and metrics of six orders
                // per head) runs in parallel; the output-error scorer goes through the backend,
                // which serves one call at a time.
#pragma omp parallel for schedule(dynamic) if (count > 1 && !need_v)
                for (int64_t i = 0; i < count; ++i) group[i].add_sample(slices[i], stats[i]);
            }
            std::vector<HeadPattern> finished(static_cast<size_t>(count));
#pragma omp parallel for schedule(dynamic) if (count > 1)
            for (int64_t i = 0; i < count; ++i) finished[i] = group[i].finish();
            for (HeadPattern& hp : finished) {
                lp.heads.push_back(std::move(hp));
                if (opt.progress) opt.progress(++done, total);
            }
        }
        pat.layers.push_back(std::move(lp));
    }
    pat.provenance.source_checksum = fmt::format("crc32:{:08x}", reader.checksum());
    return pat;
}

}  // namespace paro
