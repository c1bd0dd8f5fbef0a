#include "paro/calibrator.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <ctime>
#include <exception>
#include <filesystem>
#include <future>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include <omp.h>

#include "paro/error.hpp"
#include "paro/head_scoring.hpp"
#include "paro/memory_budget.hpp"
#include "paro/parallel.hpp"
#include "paro/slice_feed.hpp"
#include "paro/tile_stats.hpp"
#include "paro/version.hpp"

namespace paro {

namespace {


// What every head's calibration shares.
struct CalibrationContext {
    TileStatsBackend& tiles;
    const BlockMask& forced;
    const std::vector<int>& slot_of_sample;
    int slots;
    const CalibrateOptions& opt;
};

// Calibrates one (layer, head): fed every sample's statistics in turn (add_sample), it scores the
// six orders on each and keeps their tile masses, then (finish) chooses one and builds a mask per
// slot from that order's masses (head_scoring.hpp).
class HeadCalibration {
public:
    explicit HeadCalibration(const CalibrationContext& ctx) : ctx_(ctx) {}

    void add_sample(const HeadSlice& slice, const SixOrderStats& stats) {
        PARO_ASSERT(slice.sample == static_cast<int64_t>(per_sample_.size()));  // samples come in order
        OutputErrorFn output_error;
        if (needs_v(ctx_.opt))
            output_error = [&](const std::array<BlockMask, kNumOrders>& masks) { return ctx_.tiles.output_error(slice, masks); };
        ScoredSample scored = score_sample(stats, ctx_.forced, ctx_.opt, output_error);
        per_sample_.push_back(scored.metrics);
        mass_.push_back(std::move(scored.mass));
    }

    HeadPattern finish(int64_t layer, int64_t head) {
        const HeadChoice choice = choose_head_order(per_sample_, ctx_.opt);
        if (ctx_.opt.head_scored) ctx_.opt.head_scored(layer, head, per_sample_, choice.order, mass_);
        const int chosen = index_of(choice.order);
        return finish_head(per_sample_, choice, [&](size_t s) { return mass_[s][chosen].data(); },
                           ctx_.slot_of_sample, ctx_.slots, ctx_.tiles.grid(), ctx_.forced, ctx_.opt);
    }

    static bool needs_v(const CalibrateOptions& opt) { return opt.objective.kind == ObjectiveKind::output_error; }

private:
    const CalibrationContext& ctx_;
    std::vector<SampleMetrics> per_sample_;
    std::vector<SampleMasses> mass_;  // per sample, each order's
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
    for (size_t i = 0; i < opt.layers.size(); ++i)
        if (opt.layers[i] < 0 || opt.layers[i] >= static_cast<int64_t>(dump.layers.size()) ||
            (i > 0 && opt.layers[i] <= opt.layers[i - 1]))
            throw ParameterError("layers", fmt::format("must be increasing layer indices below {} (the dump's layers)",
                                                       dump.layers.size()),
                                 dump.path);
    if (!opt.blocks.empty() && !opt.layers.empty())
        throw ParameterError("blocks", "are an alternative to layers: give one of them");
    for (size_t i = 0; i < opt.blocks.size(); ++i) {
        const HeadBlock& b = opt.blocks[i];
        const bool inside = b.layer >= 0 && b.layer < static_cast<int64_t>(dump.layers.size()) && b.h0 >= 0 &&
                            b.count > 0 && b.h0 + b.count <= dump.layers[static_cast<size_t>(b.layer)].heads;
        const HeadBlock* prev = i > 0 ? &opt.blocks[i - 1] : nullptr;
        if (!inside || (prev && (b.layer < prev->layer || (b.layer == prev->layer && b.h0 < prev->h0 + prev->count))))
            throw ParameterError("blocks", fmt::format("block {} (layer {}, heads {}..{}) is outside the dump's layers "
                                                       "and heads or overlaps or precedes the block before it",
                                                       i, b.layer, b.h0, b.h0 + b.count - 1),
                                 dump.path);
    }
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
    return calibrate(reader, opt, std::vector<TileStatsBackend*>{&tiles});
}

namespace {

// The calibration's peak host memory, from the declared sizes: per device (backend), three groups of
// `batch` slices in flight, two groups of heads keeping every sample's six orders of tile masses
// and one sample's statistics, and what the backend itself holds while it computes; per ranking in
// flight (each backend's scoring team ranks up to min(batch, threads) heads at once, and every
// thread may have ranked), a ranking of one order and the selection's keys.
double peak_bytes(const DumpInfo& dump, const CalibrateOptions& opt, int64_t batch,
                  const std::vector<TileStatsBackend*>& backends, int threads) {
    const double n = static_cast<double>(dump.tokens());
    const double tiles = std::pow(static_cast<double>(tiles_per_side(dump.tokens(), opt.tiles.block)), 2);
    double slice = 0;
    for (const DumpLayer& l : dump.layers)
        slice = std::max(slice, 4.0 * (l.kind == DumpKind::attention ? n * n
                                                                     : n * static_cast<double>(2 * l.head_dim + l.value_dim)));
    const double samples = static_cast<double>(dump.samples.size());
    const double head = tiles * kNumOrders * (4.0 * samples + TileStats::kBytesPerTile);
    const double b = static_cast<double>(batch), d = static_cast<double>(backends.size());
    const double rankings = std::max(static_cast<double>(threads), d * std::min(b, static_cast<double>(threads)));
    double working = 0;
    for (const TileStatsBackend* backend : backends) working += backend->working_bytes();
    return d * (3.0 * b * slice + 2.0 * b * head) + working + rankings * tiles * 24.0;
}

// Heads [h0, h0 + count) of one layer: what one device takes through every sample; of block `block`.
struct WorkUnit {
    int64_t layer = 0, h0 = 0, count = 0;
    size_t block = 0;
};

// The blocks a calibration covers: opt.blocks, or every head of opt.layers (all layers by default).
std::vector<HeadBlock> blocks_of(const DumpInfo& dump, const CalibrateOptions& opt) {
    if (!opt.blocks.empty()) return opt.blocks;
    std::vector<HeadBlock> blocks;
    const auto whole = [&](int64_t l) { blocks.push_back({l, 0, dump.layers[static_cast<size_t>(l)].heads}); };
    if (opt.layers.empty())
        for (int64_t l = 0; l < static_cast<int64_t>(dump.layers.size()); ++l) whole(l);
    for (int64_t l : opt.layers) whole(l);
    return blocks;
}

// What the devices' workers share: the units in (layer, head) order, handed out one by one, the
// finished heads by (layer, head), and the first error, which stops everyone.
class SharedWork {
public:
    SharedWork(const DumpInfo& dump, int64_t batch, const CalibrateOptions& opt)
        : opt_(opt), blocks_(blocks_of(dump, opt)) {
        for (size_t b = 0; b < blocks_.size(); ++b) {
            const HeadBlock& block = blocks_[b];
            if (!slot_of_layer_.count(block.layer)) {
                slot_of_layer_[block.layer] = heads_.size();
                heads_.emplace_back(static_cast<size_t>(dump.layers[static_cast<size_t>(block.layer)].heads));
                covered_.push_back(0);
            }
            covered_[slot_of_layer_[block.layer]] += block.count;
            heads_left_.push_back(block.count);
            for (int64_t h0 = block.h0; h0 < block.h0 + block.count; h0 += batch)
                units_.push_back({block.layer, h0, std::min(batch, block.h0 + block.count - h0), b});
            total_ += block.count;
        }
    }

    std::optional<WorkUnit> claim() {
        const size_t i = next_.fetch_add(1);
        if (failed_ || i >= units_.size()) return std::nullopt;
        return units_[i];
    }
    bool failed() const { return failed_; }

    void finished(const WorkUnit& u, std::vector<HeadPattern>& heads) {
        std::vector<HeadPattern>& layer = heads_[slot_of_layer_.at(u.layer)];
        for (int64_t i = 0; i < u.count; ++i) layer[u.h0 + i] = std::move(heads[i]);
        const HeadBlock& b = blocks_[u.block];
        std::vector<HeadPattern> block;  // a copy taken under the lock, handed over outside it
        {
            std::lock_guard<std::mutex> lock(mutex_);
            done_ += u.count;
            if (opt_.progress) opt_.progress(done_, total_);
            if ((heads_left_[u.block] -= u.count) > 0 || !opt_.block_done) return;
            block.assign(layer.begin() + b.h0, layer.begin() + b.h0 + b.count);
        }
        opt_.block_done(b, block);  // a checkpoint write or an MPI send: the other workers go on
    }
    void fail(std::exception_ptr e) {
        std::lock_guard<std::mutex> lock(mutex_);
        if (!error_) error_ = e;
        failed_ = true;
    }
    void rethrow_error() const {
        if (error_) std::rethrow_exception(error_);
    }
    // The layers every head of which was calibrated, in order.
    std::vector<LayerPattern> whole_layers() {
        std::vector<LayerPattern> layers;
        for (const auto& [layer, slot] : slot_of_layer_)
            if (covered_[slot] == static_cast<int64_t>(heads_[slot].size())) layers.push_back({std::move(heads_[slot])});
        return layers;
    }

private:
    const CalibrateOptions& opt_;
    std::vector<HeadBlock> blocks_;
    std::vector<WorkUnit> units_;
    std::map<int64_t, size_t> slot_of_layer_;  // the dump's layer -> its place in heads_
    std::vector<std::vector<HeadPattern>> heads_;
    std::vector<int64_t> covered_;             // per place in heads_: heads in blocks
    std::vector<int64_t> heads_left_;          // per block: heads not finished yet
    std::atomic<size_t> next_{0};
    std::atomic<bool> failed_{false};
    std::mutex mutex_;
    std::exception_ptr error_;
    int64_t done_ = 0, total_ = 0;
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// The (unit, sample) steps of one device in order: every sample of a unit, then the next unit
// it claims. One step ahead, so that its read can be queued early.
class DeviceSteps {
public:
    struct Step {
        WorkUnit unit;
        int64_t sample = 0;
    };
    DeviceSteps(SharedWork& work, int64_t samples) : work_(work), samples_(samples) {
        if (const auto u = work_.claim()) next_ = Step{*u, 0};
    }
    std::optional<Step> take() {
        const std::optional<Step> step = next_;
        if (step && step->sample + 1 < samples_) {
            next_ = Step{step->unit, step->sample + 1};
        } else if (step) {
            const auto u = work_.claim();
            next_ = u ? std::optional<Step>(Step{*u, 0}) : std::nullopt;
        }
        return step;
    }

private:
    SharedWork& work_;
    int64_t samples_;
    std::optional<Step> next_;
};

// One device's loop. Three steps are in flight: the next one's slices being read, this one's
// statistics on the device, and the previous one's scoring (masks and metrics of six orders per
// head) on the host. A unit's heads are finished by the scoring of its last sample.
void run_device(const CalibrationContext& ctx, SharedWork& work, SliceFeed& feed, std::array<SliceBatch, 3>& buffers,
                int64_t samples, int threads, CalibrationTimes::Device& times) {
    // The output-error scorer goes through the backend, which serves one call at a time: its
    // scoring cannot overlap the next statistics, nor run in parallel across heads.
    const bool need_v = HeadCalibration::needs_v(ctx.opt);
    DeviceSteps steps(work, samples);
    std::optional<DeviceSteps::Step> step = steps.take();
    if (!step) return;
    std::future<void> read = feed.request(step->sample, step->unit.layer, step->unit.h0, step->unit.count, buffers[0]);
    std::future<void> scoring;
    std::shared_ptr<std::vector<HeadCalibration>> group;
    for (size_t i = 0; step; ++i) {
        const auto t_wait = std::chrono::steady_clock::now();
        read.get();  // rethrows what stopped the read
        times.read_wait_seconds += seconds_since(t_wait);
        if (work.failed()) break;
        SliceBatch& batch = buffers[i % buffers.size()];
        const std::optional<DeviceSteps::Step> next = steps.take();
        if (next)
            read = feed.request(next->sample, next->unit.layer, next->unit.h0, next->unit.count,
                                buffers[(i + 1) % buffers.size()]);
        const auto t0 = std::chrono::steady_clock::now();
        std::vector<SixOrderStats> stats = ctx.tiles.compute_batch(batch.slices);
        PARO_ASSERT(static_cast<int64_t>(stats.size()) == step->unit.count);
        times.compute_seconds += seconds_since(t0);
        const auto t_score_wait = std::chrono::steady_clock::now();
        if (scoring.valid()) scoring.get();
        times.score_wait_seconds += seconds_since(t_score_wait);
        if (step->sample == 0)
            group = std::make_shared<std::vector<HeadCalibration>>(static_cast<size_t>(step->unit.count),
                                                                  HeadCalibration(ctx));
        auto score = [&work, &times, &batch, group, stats = std::move(stats), unit = step->unit,
                      last = step->sample + 1 == samples, need_v, threads]() mutable {
            const auto t1 = std::chrono::steady_clock::now();
            std::vector<HeadCalibration>& g = *group;
            parallel_for(unit.count, need_v ? 1 : threads,
                         [&](int64_t h) {
                             const SixOrderStats st = std::move(stats[h]);  // freed here: the kept masses stay
                             g[h].add_sample(batch.slices[h], st);
                         });
            if (last) {
                std::vector<HeadPattern> finished(static_cast<size_t>(unit.count));
                parallel_for(unit.count, threads, [&](int64_t h) { finished[h] = g[h].finish(unit.layer, unit.h0 + h); });
                work.finished(unit, finished);
            }
            times.score_seconds += seconds_since(t1);
        };
        if (need_v)
            score();
        else
            scoring = std::async(std::launch::async, std::move(score));
        step = next;
    }
    if (scoring.valid()) scoring.get();
}

}  // namespace

Pattern calibrate(DumpReader& reader, const CalibrateOptions& opt, const std::vector<TileStatsBackend*>& backends,
                  CalibrationTimes* times) {
    const auto start = std::chrono::steady_clock::now();
    const DumpInfo& dump = reader.info();
    validate_calibration(dump, opt);
    PARO_ASSERT(!backends.empty());
    for (const TileStatsBackend* tiles : backends)
        if (tiles->grid().tokens != dump.tokens() || tiles->grid().block != opt.tiles.block ||
            tiles->options().eps != opt.tiles.eps)
            throw ParameterError("tiles", fmt::format("the tile statistics backend was built for {} tokens, tile {}, "
                                                      "eps {}; the dump has {} tokens and the options ask for tile {}, "
                                                      "eps {}",
                                                      tiles->grid().tokens, tiles->grid().block, tiles->options().eps,
                                                      dump.tokens(), opt.tiles.block, opt.tiles.eps));
    const SlotPlan plan = SlotPlan::make(opt.slots, opt.share_later_half);
    const std::vector<int> slot_of_sample = sample_slots(dump, plan);
    const BlockMask forced = forced_tiles(dump.layout, backends.front()->grid(), opt.mask);

    Pattern pat = pattern_shell(dump, opt, plan);

    // Work units are the same whatever the number of devices, so each head meets the same
    // computation and the result does not depend on how the units were spread.
    int64_t batch = std::numeric_limits<int64_t>::max();
    for (const TileStatsBackend* tiles : backends) batch = std::min(batch, std::max<int64_t>(1, tiles->batch_heads()));
    require_memory(peak_bytes(dump, opt, batch, backends, omp_get_max_threads()),
                   fmt::format("calibrating {} tokens ({} x {} tiles per order, {} samples)", dump.tokens(),
                               backends.front()->grid().tiles_per_side(), backends.front()->grid().tiles_per_side(),
                               dump.samples.size()),
                   dump.path, "/layers");
    SharedWork work(dump, batch, opt);
    CalibrationTimes t;
    t.devices.resize(backends.size());
    std::vector<std::array<SliceBatch, 3>> buffers(backends.size());  // outlive the feed
    // New threads start from OpenMP's default thread count: hand them the caller's (--threads).
    const int threads = omp_get_max_threads();
    {
        // Halves stay halves only when no consumer needs floats: the output-error scorer reads
        // q and k on the host.
        const bool need_v = HeadCalibration::needs_v(opt);
        const bool halves = !need_v && std::all_of(backends.begin(), backends.end(),
                                                   [](const TileStatsBackend* b) { return b->takes_halves(); });
        SliceFeed feed(reader, need_v, halves ? HalfQK::keep : HalfQK::widen, threads);
        std::vector<std::thread> workers;
        for (size_t w = 0; w < backends.size(); ++w) {
            t.devices[w].name = backends[w]->describe();
            workers.emplace_back([&, w] {
                omp_set_num_threads(threads);  // the backend's own parallel regions
                const CalibrationContext ctx{*backends[w], forced, slot_of_sample, plan.count(), opt};
                try {
                    run_device(ctx, work, feed, buffers[w], static_cast<int64_t>(dump.samples.size()), threads,
                               t.devices[w]);
                } catch (...) {
                    work.fail(std::current_exception());
                }
            });
        }
        for (std::thread& th : workers) th.join();
        t.read_seconds = feed.busy_seconds();
        t.stored_bytes = feed.stored_bytes();
    }
    work.rethrow_error();
    pat.layers = work.whole_layers();
    pat.provenance.source_checksum = fmt::format("crc32:{:08x}", reader.checksum());
    t.wall_seconds = seconds_since(start);
    if (times) *times = std::move(t);
    return pat;
}

}  // namespace paro
