// The C API of paro_stats.h over GpuTileStatsEngine: argument checks, exceptions to status codes.
#include "paro_stats.h"

#include <fmt/format.h>
#include <cuda_runtime.h>

#include <chrono>
#include <cmath>
#include <thread>
#include <vector>
#include <exception>
#include <memory>
#include <new>
#include <string>
#include <utility>

#include "capi_boundary.hpp"
#include "gpu_tile_stats.hpp"
#include "paro/error.hpp"
#include "paro/stats_recorder.hpp"

struct paro_stats_engine {
    std::unique_ptr<paro::gpu::GpuTileStatsEngine> engine;
};

// The GPU statistics of each add go to the host and into a StatsRecorder (lib/calibration), which
// scores them on host threads; the file is the recorder's.
struct paro_stats_recorder {
    std::unique_ptr<paro::gpu::GpuTileStatsEngine> engine;
    std::unique_ptr<paro::StatsRecorder> recorder;
    int device = 0;
    bool all_orders = false;  // the file keeps all six orders' masses
    std::string kernels;  // what computed the statistics, for the file
    paro_stats_recorder_times times{};
};

namespace {

thread_local std::string g_last_error;

paro_status fail(paro_status s, const std::string& msg) { return paro::capi::fail(g_last_error, s, msg); }

template <typename F>
paro_status guarded(F&& f) {
    return paro::capi::guarded(g_last_error, PARO_ERROR_INVALID_ARGUMENT, PARO_ERROR_CUDA, std::forward<F>(f));
}

paro::TokenLayout layout_of(const int64_t grid[3], int64_t text_tokens, int text_suffix) {
    paro::TokenLayout layout;
    layout.grid = {grid[0], grid[1], grid[2]};
    layout.text_tokens = text_tokens;
    layout.text_position = text_suffix ? paro::TextPosition::suffix : paro::TextPosition::prefix;
    layout.validate();
    return layout;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

paro::gpu::DeviceHeads device_heads(const paro_stats_heads& h) {
    paro::gpu::DeviceHeads d;
    d.q = h.q;
    d.k = h.k;
    d.q_stride_head = h.q_stride_head;
    d.q_stride_token = h.q_stride_token;
    d.k_stride_head = h.k_stride_head;
    d.k_stride_token = h.k_stride_token;
    d.heads = h.heads;
    d.head_dim = h.head_dim;
    d.dtype = h.dtype;
    d.scale = h.scale > 0 ? h.scale : 1.0 / std::sqrt(static_cast<double>(h.head_dim > 0 ? h.head_dim : 1));
    return d;
}

}  // namespace

int paro_stats_api_version(void) { return PARO_STATS_API_VERSION; }
const char* paro_stats_last_error(void) { return g_last_error.c_str(); }

paro_status paro_stats_engine_create(const paro_stats_engine_desc* d, paro_stats_engine** engine) {
    if (!d || !engine) return fail(PARO_ERROR_INVALID_ARGUMENT, "null argument");
    *engine = nullptr;
    return guarded([&] {
        const paro::TokenLayout layout = layout_of(d->grid, d->text_tokens, d->text_suffix);
        if (!(d->eps > 0)) return fail(PARO_ERROR_INVALID_ARGUMENT, "eps must be positive");
        const size_t budget = d->memory_budget ? d->memory_budget : size_t(1) << 30;
        auto e = std::make_unique<paro_stats_engine>();
        e->engine = std::make_unique<paro::gpu::GpuTileStatsEngine>(layout, paro::TileStatsOptions{d->block, d->eps},
                                                                    d->device, budget);
        *engine = e.release();
        return PARO_OK;
    });
}

void paro_stats_engine_destroy(paro_stats_engine* engine) { delete engine; }

paro_status paro_stats_engine_get_info(const paro_stats_engine* e, paro_stats_engine_info* info) {
    if (!e || !info) return fail(PARO_ERROR_INVALID_ARGUMENT, "null argument");
    return guarded([&] {
        info->tokens = e->engine->grid().tokens;
        info->tiles_per_side = e->engine->grid().tiles_per_side();
        info->tiles_per_head = e->engine->tiles_per_head();
        info->device_bytes = e->engine->device_bytes();
        return PARO_OK;
    });
}

paro_status paro_stats_can_implement(const paro_stats_engine* e, const paro_stats_heads* h) {
    if (!e || !h) return fail(PARO_ERROR_INVALID_ARGUMENT, "null argument");
    return guarded([&] {
        paro::gpu::can_implement(e->engine->layout(), e->engine->options(), device_heads(*h));
        return PARO_OK;
    });
}

paro_status paro_stats_accumulate(paro_stats_engine* e, const paro_stats_heads* h, paro_stats_buffers stats,
                                  void* stream) {
    if (!e || !h) return fail(PARO_ERROR_INVALID_ARGUMENT, "null argument");
    if (!stats.mass || !stats.max || !stats.below_eps)
        return fail(PARO_ERROR_INVALID_ARGUMENT, "null statistics buffer");
    return guarded([&] {
        e->engine->accumulate(device_heads(*h), paro::gpu::DeviceTileStats{stats.mass, stats.max, stats.below_eps},
                              stream);
        return PARO_OK;
    });
}

paro_status paro_stats_overflow_seen(paro_stats_engine* e, int* seen) {
    if (!e || !seen) return fail(PARO_ERROR_INVALID_ARGUMENT, "null argument");
    return guarded([&] {
        *seen = e->engine->overflow_seen() ? 1 : 0;
        return PARO_OK;
    });
}

paro_status paro_stats_recorder_create(const paro_stats_recorder_desc* d, paro_stats_recorder** recorder) {
    if (!d || !recorder) return fail(PARO_ERROR_INVALID_ARGUMENT, "null argument");
    *recorder = nullptr;
    return guarded([&] {
        const paro::TokenLayout layout = layout_of(d->grid, d->text_tokens, d->text_suffix);
        const paro_stats_scoring& sc = d->scoring;
        if (sc.objective != 0 && sc.objective != 1)
            return fail(PARO_ERROR_INVALID_ARGUMENT, "objective must be 0 (recall) or 1 (paper)");
        paro::StatsScoring scoring;
        scoring.tiles = {paro::kRuntimeTile, sc.eps};
        scoring.mask.density = sc.density;
        if (sc.recall != 0) scoring.mask.recall = sc.recall;
        scoring.mask.min_density = sc.min_density;
        scoring.mask.force_text = sc.force_text != 0;
        scoring.mask.force_ragged = sc.force_ragged != 0;
        scoring.objective.kind = sc.objective == 0 ? paro::ObjectiveKind::recall : paro::ObjectiveKind::paper;
        scoring.objective.alpha = sc.alpha;
        scoring.objective.sigma = sc.sigma;
        const int threads = d->threads > 0 ? d->threads : static_cast<int>(std::thread::hardware_concurrency());
        auto r = std::make_unique<paro_stats_recorder>();
        r->recorder = std::make_unique<paro::StatsRecorder>(layout, scoring, d->spool_dir ? d->spool_dir : ".", threads);
        r->engine = std::make_unique<paro::gpu::GpuTileStatsEngine>(layout, scoring.tiles, d->device,
                                                                    d->memory_budget ? d->memory_budget : size_t(1) << 30);
        r->device = d->device;
        r->all_orders = d->all_orders != 0;
        *recorder = r.release();
        return PARO_OK;
    });
}

void paro_stats_recorder_destroy(paro_stats_recorder* recorder) { delete recorder; }

paro_status paro_stats_recorder_add(paro_stats_recorder* r, int64_t layer, int64_t sample, const paro_stats_heads* h,
                                    void* stream) {
    if (!r || !h) return fail(PARO_ERROR_INVALID_ARGUMENT, "null argument");
    return guarded([&] {
        const auto t0 = std::chrono::steady_clock::now();
        const paro::gpu::DeviceHeads in = device_heads(*h);
        paro::gpu::can_implement(r->engine->layout(), r->engine->options(), in);
        const paro::gpu::DeviceGuard guard(r->device);  // the caller's current device is left as it was
        paro::gpu::cuda_check(cudaStreamSynchronize(static_cast<cudaStream_t>(stream)), "cudaStreamSynchronize");
        std::vector<paro::SixOrderStats> stats = r->engine->compute(in);
        if (r->kernels.empty())
            r->kernels = fmt::format("CUDA {} {} ({})", paro::gpu::to_string(r->engine->kernel_for(in.dtype)),
                                     paro::gpu::dtype_name(in.dtype), paro::gpu::device_name());
        const auto t1 = std::chrono::steady_clock::now();
        r->times.gpu_seconds += std::chrono::duration<double>(t1 - t0).count();
        r->recorder->add(layer, sample, h->head_dim, in.scale, std::move(stats));
        r->times.wait_seconds += seconds_since(t1);
        return PARO_OK;
    });
}

paro_status paro_stats_recorder_write(paro_stats_recorder* r, const paro_stats_samples* s, const char* path) {
    if (!r || !s || !path) return fail(PARO_ERROR_INVALID_ARGUMENT, "null argument");
    if (s->count <= 0 || !s->timestep || !s->prompt)
        return fail(PARO_ERROR_INVALID_ARGUMENT, "samples: count, timestep and prompt are required");
    if ((s->prompt_name_count > 0 && !s->prompt_names) || (s->layer_count > 0 && !s->model_layer))
        return fail(PARO_ERROR_INVALID_ARGUMENT, "samples: a count without its array");
    return guarded([&] {
        const auto t0 = std::chrono::steady_clock::now();
        paro::DumpInfo header;
        header.model = s->model ? s->model : "";
        header.num_steps = s->num_steps > 0 ? s->num_steps : -1;
        for (int64_t i = 0; i < s->count; ++i)
            header.samples.push_back({s->timestep[i], s->step ? s->step[i] : -1, s->prompt[i]});
        for (int64_t i = 0; i < s->prompt_name_count; ++i) header.prompt_names.emplace_back(s->prompt_names[i]);
        const std::vector<int64_t> model_layer(s->model_layer, s->model_layer + std::max<int64_t>(0, s->layer_count));
        r->recorder->write(path, header, model_layer, r->kernels, r->all_orders);
        r->times.score_seconds = r->recorder->busy_seconds();
        r->times.write_seconds += seconds_since(t0);
        return PARO_OK;
    });
}

paro_status paro_stats_recorder_get_times(const paro_stats_recorder* r, paro_stats_recorder_times* times) {
    if (!r || !times) return fail(PARO_ERROR_INVALID_ARGUMENT, "null argument");
    *times = r->times;
    times->score_seconds = r->recorder->busy_seconds();
    return PARO_OK;
}
