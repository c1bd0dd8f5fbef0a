// GpuTileStatsEngine against the CPU TileStatsEngine and masked_output_error. "[.gpu]" tests are
// hidden (CI has no GPU): run them with `paro_gpu_tests "[gpu]"`. Tolerances (docs/gpu_calibration.md):
//   mass       |gpu - cpu| <= rel * cpu + 1e-6 per tile (rel = 1e-4; 2e-3 for logits ~10^3, where
//              the CPU's own fp32 dot products are off by ~1e-3 in the exponent)
//   max        |gpu - cpu| <= rel * cpu + 1e-7 per tile
//   below_eps  |gpu - cpu| <= the number of the tile's entries whose exact P (double reference)
//              lies within a factor (1 +- band) of eps (band = 1e-3; 2e-2 for logits ~10^3)
//   chosen order (recall objective): equal, or the CPU scores of both choices within 1e-4
//   output error: |gpu - cpu| <= 1e-4 per order
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "catch.hpp"
#include "test_helpers.hpp"
#include "gpu_helpers.hpp"
#include "cuda_tile_stats_backend.hpp"
#include "gpu_tile_stats.hpp"
#include "paro/axis_order.hpp"
#include "paro/calibrator.hpp"
#include "paro/dump.hpp"
#include "paro/half.hpp"
#include "paro/error.hpp"
#include "paro/mask_builder.hpp"
#include "paro/objective.hpp"
#include "paro/output_error.hpp"
#include "paro/reference_stats.hpp"
#include "paro/synth.hpp"
#include "paro/tile_stats.hpp"
#include "tile_stats_launch.hpp"

using namespace paro;
using paro::gpu::DeviceBuffer;
using paro::gpu::DeviceHeads;
using paro::gpu::GpuTileStatsEngine;

namespace {

bool have_gpu() { return !gpu::device_name().empty(); }

const char* dtype_name(paro_dtype d) { return d == PARO_FLOAT32 ? "fp32" : d == PARO_FLOAT16 ? "fp16" : "bf16"; }

// The values the GPU sees for dtype (a round trip through the device conversion).
std::vector<float> round_to(const std::vector<float>& x, paro_dtype dtype) {
    if (dtype == PARO_FLOAT32) return x;
    DeviceBuffer f(x.size() * sizeof(float)), h(x.size() * 2), back(x.size() * sizeof(float));
    f.upload(x.data(), f.bytes());
    gpu::convert_from_f32(f.as<float>(), h.get(), dtype, x.size());
    gpu::convert_to_f32(h.get(), dtype, back.as<float>(), x.size());
    gpu::synchronize();
    std::vector<float> out(x.size());
    back.download(out.data(), back.bytes());
    return out;
}

// A random head: q, k (and v) ~ N(0, sigma^2) rounded to dtype, scale 1 / sqrt(D).
HeadSlice make_slice(const TokenLayout& layout, int d, uint64_t seed, float sigma, paro_dtype dtype, bool with_v) {
    HeadSlice s = test::random_slice(layout.tokens(), d, seed, 1.0, with_v);
    for (auto* t : {&s.q, &s.k}) {
        for (float& x : *t) x *= sigma;
        *t = round_to(*t, dtype);
    }
    if (with_v) s.v = round_to(s.v, dtype);
    return s;
}

struct Tolerance {
    double rel = 1e-4;   // mass and max, relative to the CPU value
    double band = 1e-3;  // below_eps: relative distance of P from eps that may count either way
};

// Per order and tile: entries whose exact P lies within eps * (1 +- band).
std::array<std::vector<int64_t>, kNumOrders> eps_band_counts(const TileStatsEngine& cpu, const HeadSlice& s, float eps,
                                                            double band) {
    const std::vector<double> p = reference_attention_matrix(s);
    const int64_t n = s.tokens, nb = cpu.grid().tiles_per_side();
    std::array<std::vector<int64_t>, kNumOrders> out;
    for (AxisOrder order : kAllOrders) {
        const auto& tile_of = cpu.tile_of(order);
        auto& c = out[index_of(order)];
        c.assign(size_t(nb * nb), 0);
        for (int64_t i = 0; i < n; ++i)
            for (int64_t j = 0; j < n; ++j)
                if (std::fabs(p[size_t(i * n + j)] / eps - 1.0) <= band) ++c[size_t(tile_of[i] * nb + tile_of[j])];
    }
    return out;
}

// Recall objective of each order, as the calibrator scores them; `chosen` gets the best order.
std::array<double, kNumOrders> recall_objective(const TokenLayout& layout, const SixOrderStats& st, AxisOrder& chosen) {
    MaskOptions mo;
    const BlockMask forced = forced_tiles(layout, st[0].grid, mo);
    mo.density = std::max(0.3, forced.density());
    const ObjectiveOptions oo;
    std::array<OrderMetrics, kNumOrders> m;
    for (int o = 0; o < kNumOrders; ++o) m[o] = order_metrics(st[o], build_mask(st[o], forced, mo), forced, mo, oo);
    apply_objective(m, oo);
    chosen = choose_order(m, oo.kind);
    std::array<double, kNumOrders> obj{};
    for (int o = 0; o < kNumOrders; ++o) obj[o] = m[o].objective;
    return obj;
}

void compare(const TokenLayout& layout, const HeadSlice& s, const SixOrderStats& gpu, const TileStatsEngine& cpu_engine,
             float eps, const Tolerance& tol) {
    const SixOrderStats cpu = cpu_engine.compute(s);
    const auto band = eps_band_counts(cpu_engine, s, eps, tol.band);
    int64_t bad = 0;
    std::string first;
    for (int o = 0; o < kNumOrders; ++o) {
        REQUIRE(gpu[o].mass.size() == cpu[o].mass.size());
        for (size_t t = 0; t < cpu[o].mass.size(); ++t) {
            const double dm = std::fabs(gpu[o].mass[t] - cpu[o].mass[t]);
            const double dx = std::fabs(double(gpu[o].max[t]) - double(cpu[o].max[t]));
            const int64_t dc = std::llabs(gpu[o].below_eps[t] - cpu[o].below_eps[t]);
            const bool ok = dm <= tol.rel * cpu[o].mass[t] + 1e-6 && dx <= tol.rel * cpu[o].max[t] + 1e-7 &&
                            dc <= band[o][t];
            if (!ok && bad++ == 0)
                first = to_string(kAllOrders[o]) + " tile " + std::to_string(t) + ": mass " +
                        std::to_string(gpu[o].mass[t]) + " vs " + std::to_string(cpu[o].mass[t]) + ", max " +
                        std::to_string(gpu[o].max[t]) + " vs " + std::to_string(cpu[o].max[t]) + ", below_eps " +
                        std::to_string(gpu[o].below_eps[t]) + " vs " + std::to_string(cpu[o].below_eps[t]) +
                        " (band " + std::to_string(band[o][t]) + ")";
        }
    }
    INFO("tiles out of tolerance: " << bad << "; first: " << first);
    CHECK(bad == 0);

    AxisOrder cpu_order{}, gpu_order{};
    const auto cpu_obj = recall_objective(layout, cpu, cpu_order);
    recall_objective(layout, gpu, gpu_order);
    INFO("chosen order: CPU " << to_string(cpu_order) << " (" << cpu_obj[index_of(cpu_order)] << "), GPU "
                              << to_string(gpu_order) << " (CPU score " << cpu_obj[index_of(gpu_order)] << ")");
    CHECK((gpu_order == cpu_order ||
           std::fabs(cpu_obj[index_of(gpu_order)] - cpu_obj[index_of(cpu_order)]) <= 1e-4));
}

// Runs f() once per set of kernels that can run dtype on this machine: as the engine picks
// them, and, where that is wgmma, once more on the mma.sync kernels (what other GPUs run).
template <typename F>
void for_each_kernel(GpuTileStatsEngine& engine, paro_dtype dtype, F&& f) {
    const bool both = engine.kernel_for(dtype) == gpu::TileStatsKernel::wgmma;
    for (const bool sync : {false, true}) {
        if (sync && !both) break;
        engine.force_mma_sync_for_testing(sync);
        INFO("kernels: " << gpu::to_string(engine.kernel_for(dtype)));
        f();
    }
    engine.force_mma_sync_for_testing(false);
}

DeviceHeads fake_heads() {  // aligned non-null pointers: for argument checks only, never dereferenced
    DeviceHeads in;
    in.q = reinterpret_cast<const void*>(uintptr_t(4096));
    in.k = reinterpret_cast<const void*>(uintptr_t(8192));
    in.heads = 2;
    in.head_dim = 64;
    in.q_stride_token = in.k_stride_token = 64;
    in.q_stride_head = in.k_stride_head = 64 * 100;
    in.dtype = PARO_FLOAT16;
    in.scale = 0.125;
    return in;
}

}  // namespace

TEST_CASE("tile stats gpu: can_implement names the argument at fault", "[tile_stats_gpu]") {
    const TokenLayout layout{{2, 6, 8}, 4, TextPosition::prefix};
    const TileStatsOptions opt;
    CHECK_NOTHROW(gpu::can_implement(layout, opt, fake_heads()));
    auto rejects = [&](DeviceHeads in, const std::string& where, TileStatsOptions o = {}) {
        try {
            gpu::can_implement(layout, o, in);
            FAIL("accepted; expected an InputError at " << where);
        } catch (const InputError& e) {
            CHECK(e.where() == where);
        }
    };
    DeviceHeads in = fake_heads();
    in.head_dim = 96;
    rejects(in, "head_dim");
    in = fake_heads();
    in.dtype = static_cast<paro_dtype>(7);
    rejects(in, "dtype");
    in = fake_heads();
    in.scale = 0;
    rejects(in, "scale");
    in.scale = NAN;
    rejects(in, "scale");
    in = fake_heads();
    in.heads = 0;
    rejects(in, "heads");
    in = fake_heads();
    in.q = nullptr;
    rejects(in, "q");
    in = fake_heads();
    in.k = reinterpret_cast<const void*>(uintptr_t(8200));  // 8-byte aligned only
    rejects(in, "k");
    in = fake_heads();
    in.q_stride_token = 68;  // 136 bytes: rows not 16-byte aligned
    rejects(in, "q");
    in = fake_heads();
    in.k_stride_token = 32;  // rows overlap
    rejects(in, "k");
    TileStatsOptions b32;
    b32.block = 32;
    rejects(fake_heads(), "option --block", b32);
}

TEST_CASE("tile stats gpu: wgmma on sm_90a builds on compute capability 9.0, else mma.sync", "[.gpu][tile_stats]") {
    REQUIRE(have_gpu());
    int major = 0, minor = 0;
    REQUIRE(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, 0) == cudaSuccess);
    REQUIRE(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, 0) == cudaSuccess);
    const auto k16 = major == 9 && minor == 0 && gpu::tilestats::wgmma_built() ? gpu::TileStatsKernel::wgmma
                                                                               : gpu::TileStatsKernel::mma_sync;
    GpuTileStatsEngine engine({{1, 2, 3}, 5, TextPosition::prefix}, TileStatsOptions{});
    CHECK(engine.kernel_for(PARO_FLOAT32) == gpu::TileStatsKernel::fp32_tf32x3);
    CHECK(engine.kernel_for(PARO_FLOAT16) == k16);
    CHECK(engine.kernel_for(PARO_BFLOAT16) == k16);
    engine.force_mma_sync_for_testing(true);
    CHECK(engine.kernel_for(PARO_FLOAT16) == gpu::TileStatsKernel::mma_sync);
    CHECK(engine.kernel_for(PARO_FLOAT32) == gpu::TileStatsKernel::fp32_tf32x3);
}

TEST_CASE("tile stats gpu: without a device the engine says so", "[tile_stats_gpu]") {
    const TokenLayout layout{{1, 2, 3}, 5, TextPosition::prefix};
    if (have_gpu()) {
        CHECK_NOTHROW(GpuTileStatsEngine(layout, TileStatsOptions{}));
        return;
    }
    try {
        GpuTileStatsEngine engine(layout, TileStatsOptions{});
        FAIL("an engine without a CUDA device");
    } catch (const gpu::RuntimeError& e) {
        CHECK(e.status() == PARO_ERROR_NO_GPU);
        CHECK(std::string(e.what()).find("no CUDA device") != std::string::npos);
    }
}

TEST_CASE("tile stats gpu: a device runs two backends while half the budget holds a head's statistics",
          "[tile_stats_gpu]") {
    // Two slots of a head's six orders of statistics (16 bytes a tile) plus its row statistics,
    // against half the 1 GiB budget and the 256 MiB pinned cap: CogVideoX (278 tiles a side: 15 MB)
    // and Wan 720p (1,182: 268 MB) fit; 1,238 (294 MB) passes the first and not the second, 1,857
    // (N = 118,800: 662 MB) neither.
    const auto sharers = [](std::array<int64_t, 3> grid, int64_t text) {
        return gpu::CudaTileStatsBackend::sharers(TokenLayout{grid, text, TextPosition::prefix}, TileStatsOptions{});
    };
    CHECK(sharers({13, 30, 45}, 226) == gpu::kBackendsPerDevice);
    CHECK(sharers({21, 45, 80}, 0) == gpu::kBackendsPerDevice);
    CHECK(sharers({22, 45, 80}, 0) == 1);  // 79,200 tokens: 1,238 tiles a side, 294 MB, past the pinned cap
    CHECK(sharers({33, 45, 80}, 0) == 1);
    const auto fits = [](int64_t tokens, size_t budget) { return GpuTileStatsEngine::one_head_fits(TileGrid{tokens, 64}, budget); };
    const size_t cog = 2 * size_t(6) * 278 * 278 * 16 + 8 * 17776;  // bytes of one head's chunk
    CHECK(fits(17776, cog));
    CHECK_FALSE(fits(17776, cog - 1));
}

TEST_CASE("tile stats gpu: matches the CPU engine on random heads", "[.gpu][tile_stats]") {
    REQUIRE(have_gpu());
    struct Case {
        TokenLayout layout;
        int d;
        paro_dtype dtype;
        float sigma;
        Tolerance tol;
    };
    const Tolerance large{2e-3, 2e-2};
    const std::vector<Case> cases = {
        {{{2, 6, 8}, 17, TextPosition::prefix}, 64, PARO_FLOAT32, 1.f, {}},
        {{{2, 6, 8}, 17, TextPosition::suffix}, 64, PARO_FLOAT16, 1.f, {}},
        {{{3, 5, 7}, 0, TextPosition::prefix}, 128, PARO_BFLOAT16, 1.f, {}},  // N = 105: ragged
        {{{1, 2, 3}, 5, TextPosition::prefix}, 64, PARO_FLOAT32, 1.f, {}},    // N = 11 < 64: one ragged tile
        {{{1, 2, 3}, 5, TextPosition::suffix}, 128, PARO_FLOAT16, 1.f, {}},
        {{{4, 9, 11}, 40, TextPosition::suffix}, 128, PARO_FLOAT32, 1.f, {}},  // N = 436
        {{{5, 8, 8}, 0, TextPosition::prefix}, 64, PARO_BFLOAT16, 2.f, {}},     // N = 320: no ragged tile
        {{{2, 6, 8}, 17, TextPosition::prefix}, 64, PARO_FLOAT32, 30.f, large},  // logits ~ 10^3
        {{{2, 6, 8}, 17, TextPosition::suffix}, 128, PARO_FLOAT16, 30.f, large},
    };
    const TileStatsOptions opt;
    uint64_t seed = 11;
    for (const Case& c : cases) {
        DYNAMIC_SECTION(c.layout.describe() << " D" << c.d << " " << dtype_name(c.dtype) << " sigma " << c.sigma) {
            const HeadSlice s = make_slice(c.layout, c.d, seed++, c.sigma, c.dtype, false);
            const TileStatsEngine cpu(c.layout, opt);
            GpuTileStatsEngine engine(c.layout, opt);
            for_each_kernel(engine, c.dtype, [&] {
                compare(c.layout, s, engine.compute(s, c.dtype), cpu, opt.eps, c.tol);
            });
        }
    }
}

TEST_CASE("tile stats gpu: batch of strided heads, chunked by memory, accumulates, deterministic", "[.gpu][tile_stats]") {
    REQUIRE(have_gpu());
    const TokenLayout layout{{3, 6, 10}, 13, TextPosition::prefix};  // N = 193
    const int heads = 5, d = 64;
    const int64_t n = layout.tokens();
    const TileStatsOptions opt;
    std::vector<HeadSlice> slices;
    // [tokens][heads][D] (heads interleaved, as a model's [B, N, H, D] tensor): stride_token = heads * D.
    std::vector<float> q(size_t(n * heads * d)), k(q.size());
    for (int h = 0; h < heads; ++h) {
        slices.push_back(make_slice(layout, d, 100 + h, 1.f + 0.5f * h, PARO_FLOAT16, false));
        for (int64_t i = 0; i < n; ++i)
            for (int c = 0; c < d; ++c) {
                q[size_t((i * heads + h) * d + c)] = slices.back().q[size_t(i * d + c)];
                k[size_t((i * heads + h) * d + c)] = slices.back().k[size_t(i * d + c)];
            }
    }
    DeviceBuffer f32(q.size() * sizeof(float)), dq(q.size() * 2), dk(q.size() * 2);
    f32.upload(q.data(), f32.bytes());
    gpu::convert_from_f32(f32.as<float>(), dq.get(), PARO_FLOAT16, q.size());
    gpu::synchronize();
    f32.upload(k.data(), f32.bytes());
    gpu::convert_from_f32(f32.as<float>(), dk.get(), PARO_FLOAT16, k.size());
    gpu::synchronize();
    DeviceHeads in;
    in.q = dq.get();
    in.k = dk.get();
    in.q_stride_head = in.k_stride_head = d;
    in.q_stride_token = in.k_stride_token = int64_t(heads) * d;
    in.heads = heads;
    in.head_dim = d;
    in.dtype = PARO_FLOAT16;
    in.scale = slices[0].scale;

    const TileStatsEngine cpu(layout, opt);
    const TileGrid grid{n, 64};
    const size_t per_head = size_t(kNumOrders * grid.tiles()) * 16 + size_t(n) * 8;
    // compute(): two slots of one head (the budget), so five chunks through the host pipeline.
    GpuTileStatsEngine engine(layout, opt, 0, 2 * per_head + 1);
    for_each_kernel(engine, PARO_FLOAT16, [&] {
        const auto batch = engine.compute(in);
        REQUIRE(batch.size() == size_t(heads));
        for (int h = 0; h < heads; ++h) {
            INFO("head " << h);
            compare(layout, slices[size_t(h)], batch[size_t(h)], cpu, opt.eps, Tolerance{});
        }
        const auto again = engine.compute(in);
        for (int h = 0; h < heads; ++h)
            for (int o = 0; o < kNumOrders; ++o) {
                CHECK(again[size_t(h)][o].mass == batch[size_t(h)][o].mass);
                CHECK(again[size_t(h)][o].max == batch[size_t(h)][o].max);
                CHECK(again[size_t(h)][o].below_eps == batch[size_t(h)][o].below_eps);
            }

        // Caller-owned statistics, accumulated twice on a stream: mass and counts double, max stays.
        const size_t tiles = engine.tiles_per_head() * heads;
        DeviceBuffer mass(tiles * sizeof(double)), mx(tiles * sizeof(float)), below(tiles * sizeof(uint32_t));
        mass.fill_byte(0);
        mx.fill_byte(0);
        below.fill_byte(0);
        const gpu::DeviceTileStats dev{mass.as<double>(), mx.as<float>(), below.as<uint32_t>()};
        engine.accumulate(in, dev, nullptr);
        engine.accumulate(in, dev, nullptr);
        CHECK_FALSE(engine.overflow_seen());
        std::vector<double> hm(tiles);
        std::vector<float> hx(tiles);
        std::vector<uint32_t> hb(tiles);
        mass.download(hm.data(), mass.bytes());
        mx.download(hx.data(), mx.bytes());
        below.download(hb.data(), below.bytes());
        const size_t per_order = size_t(grid.tiles());
        int64_t bad = 0;
        for (int h = 0; h < heads; ++h)
            for (int o = 0; o < kNumOrders; ++o)
                for (size_t t = 0; t < per_order; ++t) {
                    const size_t at = (size_t(h) * kNumOrders + o) * per_order + t;
                    const auto& b = batch[size_t(h)][o];
                    bad += hm[at] != 2 * b.mass[t] || hx[at] != b.max[t] || int64_t(hb[at]) != 2 * b.below_eps[t];
                }
        CHECK(bad == 0);
    });
}

TEST_CASE("tile stats gpu: planted heads of a synthetic dump, stats, chosen order and output error", "[.gpu][tile_stats]") {
    REQUIRE(have_gpu());
    test::TempDir dir;
    SynthOptions so;
    so.layout = {{4, 12, 16}, 32, TextPosition::prefix};  // N = 800
    so.samples = 1;
    const std::string path = dir.file("planted.h5");
    write_synthetic_dump(so, path);
    const DumpReader reader(path);
    const TileStatsOptions opt;
    const TileStatsEngine cpu(so.layout, opt);
    GpuTileStatsEngine engine(so.layout, opt);
    for (int layer = 0; layer < so.layers; ++layer)
        for (int head = 0; head < so.heads; ++head) {
            const HeadSlice s = reader.read(0, layer, head, true);
            INFO("layer " << layer << " head " << head << " (" << to_string(planted_kind(so, layer, head)) << ")");
            compare(so.layout, s, engine.compute(s, PARO_FLOAT16), cpu, opt.eps, Tolerance{});
            const SixOrderStats st = cpu.compute(s);
            MaskOptions mo;
            mo.density = 0.3;
            const BlockMask forced = forced_tiles(so.layout, st[0].grid, mo);
            std::array<BlockMask, kNumOrders> masks;
            for (int o = 0; o < kNumOrders; ++o) masks[o] = build_mask(st[o], forced, mo);
            const auto want = paro::masked_output_error(s, cpu, masks);
            const auto got = engine.masked_output_error(s, masks, PARO_FLOAT16);
            for (int o = 0; o < kNumOrders; ++o) CHECK(std::fabs(got[o] - want[o]) <= 1e-4);
        }
}

TEST_CASE("tile stats gpu: masked output error matches the CPU (ragged, empty mask rows, dtypes)", "[.gpu][tile_stats]") {
    REQUIRE(have_gpu());
    struct Case {
        TokenLayout layout;
        int d;
        paro_dtype dtype;
        double density;
        bool forced;
    };
    const std::vector<Case> cases = {
        {{{2, 6, 8}, 17, TextPosition::prefix}, 64, PARO_FLOAT32, 0.5, false},
        {{{3, 5, 7}, 9, TextPosition::suffix}, 128, PARO_FLOAT32, 0.2, false},  // some rows keep nothing
        {{{1, 2, 3}, 5, TextPosition::prefix}, 64, PARO_FLOAT16, 1.0, true},     // N = 11
        {{{4, 9, 11}, 40, TextPosition::suffix}, 128, PARO_BFLOAT16, 0.3, true},
    };
    const TileStatsOptions opt;
    uint64_t seed = 500;
    for (const Case& c : cases) {
        DYNAMIC_SECTION(c.layout.describe() << " D" << c.d << " " << dtype_name(c.dtype) << " density " << c.density) {
            const HeadSlice s = make_slice(c.layout, c.d, seed++, 1.5f, c.dtype, true);
            const TileStatsEngine cpu(c.layout, opt);
            const SixOrderStats st = cpu.compute(s);
            MaskOptions mo;
            mo.density = c.density;
            mo.force_text = mo.force_ragged = c.forced;
            const BlockMask forced = forced_tiles(c.layout, st[0].grid, mo);
            std::array<BlockMask, kNumOrders> masks;
            for (int o = 0; o < kNumOrders; ++o) masks[o] = build_mask(st[o], forced, mo);
            GpuTileStatsEngine engine(c.layout, opt);
            const auto want = paro::masked_output_error(s, cpu, masks);
            const auto got = engine.masked_output_error(s, masks, c.dtype);
            for (int o = 0; o < kNumOrders; ++o) {
                INFO(to_string(kAllOrders[o]) << ": GPU " << got[o] << " CPU " << want[o]);
                CHECK(std::fabs(got[o] - want[o]) <= 1e-4);
            }
        }
    }
}

TEST_CASE("tile stats gpu: overflowing scores are an input error, as on the CPU", "[.gpu][tile_stats]") {
    REQUIRE(have_gpu());
    const TokenLayout layout{{2, 6, 8}, 17, TextPosition::prefix};
    HeadSlice s = make_slice(layout, 64, 7, 1.f, PARO_FLOAT32, false);
    for (float& x : s.q) x *= 1e20f;
    for (float& x : s.k) x *= 1e20f;
    GpuTileStatsEngine engine(layout, TileStatsOptions{});
    CHECK_THROWS_AS(engine.compute(s, PARO_FLOAT32), InputError);
    // The engine is usable afterwards.
    const HeadSlice ok = make_slice(layout, 64, 8, 1.f, PARO_FLOAT32, false);
    compare(layout, ok, engine.compute(ok, PARO_FLOAT32), TileStatsEngine(layout, TileStatsOptions{}), 1e-3f, Tolerance{});
}

TEST_CASE("tile stats gpu: a head's statistics do not depend on its batch-mates' upload format", "[.gpu][tile_stats]") {
    // fp16-exact heads go up in fp16 (the fp16 MMA kernel), the others in fp32 (3 x tf32): per head,
    // so a batch that mixes them gives each head the bits it gets alone, however shards, ranks or
    // backends batch it.
    REQUIRE(have_gpu());
    const TokenLayout layout{{3, 10, 13}, 7, TextPosition::suffix};
    const HeadSlice e1 = make_slice(layout, 64, 31, 1.f, PARO_FLOAT16, false);
    const HeadSlice f = make_slice(layout, 64, 32, 1.f, PARO_FLOAT32, false);
    const HeadSlice e2 = make_slice(layout, 64, 33, 1.f, PARO_FLOAT16, false);
    gpu::CudaTileStatsBackend backend(layout, TileStatsOptions{}, 0);
    const std::vector<SixOrderStats> mixed = backend.compute_batch({e1, f, e2});
    const std::vector<HeadSlice> alone[] = {{e1}, {f}, {e2}};
    REQUIRE(mixed.size() == 3);
    const auto same = [](const SixOrderStats& a, const SixOrderStats& b) {
        for (int o = 0; o < kNumOrders; ++o)
            if (a[o].mass != b[o].mass || a[o].max != b[o].max || a[o].below_eps != b[o].below_eps) return false;
        return true;
    };
    for (int i = 0; i < 3; ++i) {
        INFO("head " << i);
        CHECK(same(mixed[i], backend.compute_batch(alone[i]).front()));
    }
    // The reader's kept halves (HalfQK::keep) are the same heads: the same bits, beside floats too.
    // One head with only q kept (a dump may store k as floats).
    const auto kept = [](const HeadSlice& s, bool k_too) {
        HeadSlice h = s;
        for (float x : s.q) h.q_half.push_back(float_to_half(x));
        h.q.clear();
        if (k_too) {
            for (float x : s.k) h.k_half.push_back(float_to_half(x));
            h.k.clear();
        }
        return h;
    };
    REQUIRE(backend.takes_halves());
    const std::vector<SixOrderStats> with_kept = backend.compute_batch({kept(e1, true), f, kept(e2, false)});
    for (int i = 0; i < 3; ++i) {
        INFO("head " << i << ", halves kept");
        CHECK(same(with_kept[i], mixed[i]));
    }
    // A head whose q is kept as halves and whose k is not exact in fp16 goes up in fp32, its q widened.
    HeadSlice qe_kf = e1;
    qe_kf.k = f.k;
    const SixOrderStats as_floats = backend.compute_batch({qe_kf}).front();
    const std::vector<SixOrderStats> mixed_kept = backend.compute_batch({kept(e2, true), kept(qe_kf, false)});
    CHECK(same(mixed_kept[0], mixed[2]));
    CHECK(same(mixed_kept[1], as_floats));
    // What the test guards against: the fp32 kernel gives an fp16-exact head other bits.
    GpuTileStatsEngine engine(layout, TileStatsOptions{});
    CHECK_FALSE(same(mixed[0], engine.compute(e1, PARO_FLOAT32)));
}

TEST_CASE("tile stats gpu: an attention-map slice is an input error, not an abort", "[.gpu][tile_stats]") {
    REQUIRE(have_gpu());
    const TokenLayout layout{{2, 4, 6}, 5, TextPosition::prefix};
    gpu::CudaTileStatsBackend backend(layout, TileStatsOptions{}, 0);
    HeadSlice s;
    s.file = "maps.h5";
    s.layer = 2;
    s.tokens = layout.tokens();
    s.attention.assign(size_t(s.tokens * s.tokens), 1.f / float(s.tokens));
    try {
        (void)backend.compute_batch({s});
        FAIL("expected an InputError");
    } catch (const InputError& e) {
        CHECK(std::string(e.what()).find("/layers/2/attn") != std::string::npos);
    }
}

TEST_CASE("tile stats gpu: calibration spread over two engines equals one engine's, bit for bit", "[.gpu][tile_stats]") {
    // Two CudaTileStatsBackends on device 0 stand in for two GPUs: the workers, the shared reader
    // and the per-unit results are what a multi-GPU run exercises (bench/gpu/calibrate_e2e.sh
    // compares the pattern files of real devices on a machine with several GPUs).
    REQUIRE(have_gpu());
    test::TempDir dir;
    // N = 397 (ragged); 20 heads: groups of 16 and 4 per layer.
    const SynthOptions so = test::synth_options({{3, 10, 13}, 7, TextPosition::suffix}, 3, 20, 2, 0);
    const std::string path = dir.file("d.h5");
    write_synthetic_dump(so, path);
    CalibrateOptions co;
    co.mask.recall = 0.9;
    co.mask.density = 1.0;
    DumpReader one_reader(path), two_reader(path);
    gpu::CudaTileStatsBackend a(so.layout, co.tiles, 0), b(so.layout, co.tiles, 0), c(so.layout, co.tiles, 0);
    const Pattern one = calibrate(one_reader, co, a);
    CalibrationTimes times;
    const Pattern two = calibrate(two_reader, co, std::vector<TileStatsBackend*>{&b, &c}, &times);
    CHECK(one.provenance.source_checksum == two.provenance.source_checksum);
    REQUIRE(one.layers.size() == two.layers.size());
    for (size_t l = 0; l < one.layers.size(); ++l)
        for (size_t h = 0; h < one.layers[l].heads.size(); ++h) {
            const HeadPattern &x = one.layers[l].heads[h], &y = two.layers[l].heads[h];
            INFO("layer " << l << " head " << h);
            CHECK(x.order == y.order);
            CHECK(x.masks == y.masks);
            CHECK(x.recall == y.recall);
            CHECK(x.density == y.density);
            for (int o = 0; o < kNumOrders; ++o) CHECK(metric_values(x.scores[o]) == metric_values(y.scores[o]));
        }
    CHECK(times.devices.size() == 2);
    CHECK(times.stored_bytes > 0);
}
