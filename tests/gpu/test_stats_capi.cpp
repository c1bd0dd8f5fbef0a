// libparo_stats.so through its C API (linked as a shared library, as PyTorch loads it): argument
// and no-GPU errors everywhere; on a GPU, statistics accumulated over two samples against the CPU
// engine's per-sample statistics combined the same way (tolerances of test_tile_stats_gpu.cpp).
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "catch.hpp"
#include "gpu_helpers.hpp"
#include "paro/tile_stats.hpp"
#include "paro_stats.h"
#include "test_helpers.hpp"

namespace {

paro_stats_engine_desc small_desc() {
    paro_stats_engine_desc d;
    std::memset(&d, 0, sizeof d);
    d.grid[0] = 3;
    d.grid[1] = 10;
    d.grid[2] = 12;
    d.text_tokens = 17;  // N = 377: a ragged last tile
    d.block = 64;
    d.eps = 1e-3f;
    return d;
}

}  // namespace

TEST_CASE("stats C API: bad arguments and no GPU are status codes with a message", "[stats_capi]") {
    CHECK(paro_stats_api_version() == PARO_STATS_API_VERSION);
    paro_stats_engine* e = nullptr;
    CHECK(paro_stats_engine_create(nullptr, &e) == PARO_ERROR_INVALID_ARGUMENT);
    paro_stats_engine_desc d = small_desc();
    d.grid[1] = 0;
    CHECK(paro_stats_engine_create(&d, &e) == PARO_ERROR_INVALID_ARGUMENT);
    CHECK(std::string(paro_stats_last_error()).find("grid") != std::string::npos);
    CHECK(e == nullptr);
    d = small_desc();
    d.eps = 0;
    CHECK(paro_stats_engine_create(&d, &e) == PARO_ERROR_INVALID_ARGUMENT);
    d = small_desc();
    const paro_status st = paro_stats_engine_create(&d, &e);
    if (paro::gpu::device_name().empty()) {
        CHECK(st == PARO_ERROR_NO_GPU);
        CHECK(e == nullptr);
    } else {
        REQUIRE(st == PARO_OK);
        paro_stats_heads h{};
        h.heads = 1;
        h.head_dim = 96;
        CHECK(paro_stats_can_implement(e, &h) == PARO_ERROR_INVALID_ARGUMENT);
        CHECK(std::string(paro_stats_last_error()).find("head_dim") != std::string::npos);
        paro_stats_engine_destroy(e);
    }
    CHECK(paro_stats_accumulate(nullptr, nullptr, paro_stats_buffers{}, nullptr) == PARO_ERROR_INVALID_ARGUMENT);
}

TEST_CASE("stats C API: two samples accumulated on the device match the CPU engine", "[.gpu][stats_capi]") {
    using paro::gpu::DeviceBuffer;
    const paro_stats_engine_desc d = small_desc();
    paro_stats_engine* e = nullptr;
    REQUIRE(paro_stats_engine_create(&d, &e) == PARO_OK);
    paro_stats_engine_info info{};
    REQUIRE(paro_stats_engine_get_info(e, &info) == PARO_OK);
    const int H = 3, D = 64;
    const int64_t N = info.tokens, nb = info.tiles_per_side;
    REQUIRE(N == 377);
    REQUIRE(info.tiles_per_head == size_t(6 * nb * nb));
    const size_t tiles = info.tiles_per_head * H;
    DeviceBuffer mass(tiles * sizeof(double)), mx(tiles * sizeof(float)), below(tiles * sizeof(uint32_t));
    mass.fill_byte(0);
    mx.fill_byte(0);
    below.fill_byte(0);

    paro::TokenLayout layout;
    layout.grid = {d.grid[0], d.grid[1], d.grid[2]};
    layout.text_tokens = d.text_tokens;
    const paro::TileStatsEngine cpu(layout, paro::TileStatsOptions{64, 1e-3f});
    std::vector<paro::SixOrderStats> want(H);
    for (int sample = 0; sample < 2; ++sample) {
        // fp32 q, k: the GPU's 3xTF32 path; the CPU sees the same values.
        std::vector<float> q, k;
        std::vector<paro::HeadSlice> slices;
        for (int h = 0; h < H; ++h) {
            slices.push_back(paro::test::random_slice(N, D, 100 * sample + h, 1.5));
            q.insert(q.end(), slices.back().q.begin(), slices.back().q.end());
            k.insert(k.end(), slices.back().k.begin(), slices.back().k.end());
        }
        DeviceBuffer dq(q.size() * sizeof(float)), dk(k.size() * sizeof(float));
        dq.upload(q.data(), dq.bytes());
        dk.upload(k.data(), dk.bytes());
        paro_stats_heads in{};
        in.q = dq.get();
        in.k = dk.get();
        in.q_stride_head = in.k_stride_head = N * D;
        in.q_stride_token = in.k_stride_token = D;
        in.heads = H;
        in.head_dim = D;
        in.dtype = PARO_FLOAT32;
        in.scale = slices[0].scale;
        REQUIRE(paro_stats_can_implement(e, &in) == PARO_OK);
        REQUIRE(paro_stats_accumulate(e, &in, paro_stats_buffers{mass.as<double>(), mx.as<float>(), below.as<uint32_t>()},
                                      nullptr) == PARO_OK);
        paro::gpu::synchronize();  // the inputs are freed at the end of this scope
        for (int h = 0; h < H; ++h) {
            const paro::SixOrderStats s = cpu.compute(slices[h]);
            if (sample == 0) want[h] = s;
            else
                for (int o = 0; o < paro::kNumOrders; ++o) want[h][o].accumulate(s[o]);
        }
    }
    int seen = -1;
    REQUIRE(paro_stats_overflow_seen(e, &seen) == PARO_OK);
    CHECK(seen == 0);
    std::vector<double> m(tiles);
    std::vector<float> x(tiles);
    std::vector<uint32_t> b(tiles);
    mass.download(m.data(), mass.bytes());
    mx.download(x.data(), mx.bytes());
    below.download(b.data(), below.bytes());
    int bad_mass = 0, bad_max = 0;
    int64_t count_diff = 0, count_total = 0;
    for (int h = 0; h < H; ++h)
        for (int o = 0; o < paro::kNumOrders; ++o)
            for (int64_t t = 0; t < nb * nb; ++t) {
                const size_t at = (size_t(h) * paro::kNumOrders + o) * size_t(nb * nb) + size_t(t);
                const auto& w = want[h][o];
                bad_mass += std::fabs(m[at] - w.mass[t]) > 1e-4 * w.mass[t] + 1e-6;
                bad_max += std::fabs(x[at] - w.max[t]) > 1e-4 * w.max[t] + 1e-7;
                count_diff += std::llabs(int64_t(b[at]) - w.below_eps[t]);
                count_total += w.below_eps[t];
            }
    CHECK(bad_mass == 0);
    CHECK(bad_max == 0);
    // Counts may differ only for entries within rounding of eps: a handful out of the total.
    CHECK(count_diff <= count_total / 10000 + 2);
    paro_stats_engine_destroy(e);
}
