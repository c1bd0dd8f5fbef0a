#include "paro/head_scoring.hpp"

#include <ctime>
#include <filesystem>

#include "paro/error.hpp"
#include "paro/mask_builder.hpp"
#include "paro/version.hpp"

namespace paro {

namespace {

// Mean of each metric over the samples (output_rel_l1 stays -1 when it was not computed).
SampleMetrics mean_metrics(const std::vector<SampleMetrics>& per_sample) {
    SampleMetrics mean{};
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

}  // namespace

ScoredSample score_sample(const SixOrderStats& stats, const BlockMask& forced, const CalibrateOptions& opt,
                          const OutputErrorFn& output_error) {
    ScoredSample out;
    // The rankings' storage is reused across orders, heads and samples of a thread (each is as
    // large as the statistics; fresh ones cost page faults that serialize the threads).
    thread_local std::vector<TileRanking::Tile> scratch;
    for (int o = 0; o < kNumOrders; ++o) {
        TileRanking ranking(stats[o], forced, std::move(scratch));
        out.masks[o] = build_tile_mask(ranking, forced, opt.mask);
        out.metrics[o] = order_metrics(stats[o], out.masks[o], ranking, opt.mask, opt.objective);
        scratch = std::move(ranking).release();
        out.mass[o].assign(stats[o].mass.begin(), stats[o].mass.end());
    }
    if (output_error) {
        const auto err = output_error(out.masks);
        for (int o = 0; o < kNumOrders; ++o) out.metrics[o].output_rel_l1 = err[o];
    }
    apply_objective(out.metrics, opt.objective);
    return out;
}

AxisOrder sample_choice(const SampleMetrics& metrics, const CalibrateOptions& opt) {
    return choose_order(metrics, opt.objective.kind);
}

HeadChoice choose_head_order(const std::vector<SampleMetrics>& per_sample, const CalibrateOptions& opt) {
    PARO_ASSERT(!per_sample.empty());
    HeadChoice c;
    c.scores = mean_metrics(per_sample);
    apply_objective(c.scores, opt.objective);
    c.order = choose_order(c.scores, opt.objective.kind);
    return c;
}

HeadPattern finish_head(const std::vector<SampleMetrics>& per_sample, const HeadChoice& choice,
                        const std::function<const float*(size_t sample)>& chosen_mass,
                        const std::vector<int>& slot_of_sample, int slots, const TileGrid& grid,
                        const BlockMask& forced, const CalibrateOptions& opt) {
    PARO_ASSERT(per_sample.size() == slot_of_sample.size());
    HeadPattern hp;
    hp.order = choice.order;
    hp.scores = choice.scores;
    for (const SampleMetrics& m : per_sample) hp.sample_order.push_back(static_cast<uint8_t>(index_of(sample_choice(m, opt))));
    // Slot sums in float32, samples in order (both paths add the same floats the same way).
    const size_t tiles = static_cast<size_t>(grid.tiles());
    std::vector<std::vector<float>> slot_sum(static_cast<size_t>(slots));
    for (size_t s = 0; s < per_sample.size(); ++s) {
        const float* m = chosen_mass(s);
        std::vector<float>& sum = slot_sum[static_cast<size_t>(slot_of_sample[s])];
        if (sum.empty()) {
            sum.assign(m, m + tiles);
        } else {
            for (size_t i = 0; i < tiles; ++i) sum[i] += m[i];
        }
    }
    for (const std::vector<float>& sum : slot_sum) {
        PARO_ASSERT(!sum.empty());  // validate_calibration: every slot has a sample
        TileStats st(grid);
        st.mass.assign(sum.begin(), sum.end());
        BlockMask m = build_mask(st, forced, opt.mask);
        hp.density.push_back(m.density());
        hp.recall.push_back(mask_recall(m, st.mass));
        hp.masks.push_back(std::move(m));
    }
    for (size_t s = 0; s < per_sample.size(); ++s)
        hp.sample_recall.push_back(mask_recall(hp.masks[static_cast<size_t>(slot_of_sample[s])], chosen_mass(s)));
    hp.qk_bits = opt.qk_bits;
    hp.pv_format = opt.pv_format;
    return hp;
}

Pattern pattern_shell(const DumpInfo& source, const CalibrateOptions& opt, const SlotPlan& plan) {
    const std::time_t now = std::time(nullptr);
    char created[32];
    std::strftime(created, sizeof created, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
    Pattern pat;
    pat.layout = source.layout;
    pat.block_q = pat.block_k = static_cast<int>(opt.tiles.block);
    pat.slots = plan;
    pat.objective = to_string(opt.objective.kind);
    pat.higher_is_better = higher_is_better(opt.objective.kind);
    pat.provenance = {kVersion, opt.options_json, std::filesystem::path(source.path).filename().string(), "", created};
    return pat;
}

std::vector<int> sample_slots(const DumpInfo& dump, const SlotPlan& plan) {
    std::vector<int> slot(dump.samples.size());
    for (size_t s = 0; s < slot.size(); ++s) {
        slot[s] = sample_slot(dump, plan, static_cast<int64_t>(s));
        PARO_ASSERT(slot[s] != kUnknownSlot);
    }
    return slot;
}

}  // namespace paro
