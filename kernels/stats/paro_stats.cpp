// The C API of paro_stats.h over GpuTileStatsEngine: argument checks, exceptions to status codes.
#include "paro_stats.h"

#include <cmath>
#include <exception>
#include <memory>
#include <new>
#include <string>
#include <utility>

#include "capi_boundary.hpp"
#include "gpu_tile_stats.hpp"
#include "paro/error.hpp"

struct paro_stats_engine {
    std::unique_ptr<paro::gpu::GpuTileStatsEngine> engine;
};

namespace {

thread_local std::string g_last_error;

paro_status fail(paro_status s, const std::string& msg) { return paro::capi::fail(g_last_error, s, msg); }

template <typename F>
paro_status guarded(F&& f) {
    return paro::capi::guarded(g_last_error, PARO_ERROR_INVALID_ARGUMENT, PARO_ERROR_CUDA, std::forward<F>(f));
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
        paro::TokenLayout layout;
        layout.grid = {d->grid[0], d->grid[1], d->grid[2]};
        layout.text_tokens = d->text_tokens;
        layout.text_position = d->text_suffix ? paro::TextPosition::suffix : paro::TextPosition::prefix;
        layout.validate();
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
