// Benchmark of the GPU tile statistics at the two reference shapes (docs/gpu_calibration.md):
//   CogVideoX-like   13x30x45 + 226 text, N = 17,776, D 64,  fp16, 48 heads   target <= 1 ms / head
//   large            21x45x80,            N = 75,600, D 128, fp16, 8 heads    target <= 20 ms / head
// Per head: median of several accumulate() calls over the whole batch (CUDA events, device work
// only), then compute() with its host download. Memory: what the engine holds (bounded by its
// budget, independent of the number of heads) and the device total in use at the end.
// Sanity without a CPU run: every order's total mass must be N (each row of P sums to 1).
// Usage: paro_tile_stats_bench [iterations (default 5)]
#include <cuda_runtime.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>

#include "gpu_helpers.hpp"
#include "gpu_tile_stats.hpp"

using namespace paro;

namespace {

struct Shape {
    const char* name;
    TokenLayout layout;
    int head_dim, heads;
    double target_ms;
};

double mib(size_t b) { return double(b) / (1024.0 * 1024.0); }

void run(const Shape& s, int iters) {
    const int64_t n = s.layout.tokens();
    const size_t elems = size_t(s.heads) * size_t(n) * size_t(s.head_dim);
    gpu::DeviceBuffer q(elems * 2), k(elems * 2);
    gpu::fill_random(q.get(), PARO_FLOAT16, elems, 1, 1.f);
    gpu::fill_random(k.get(), PARO_FLOAT16, elems, 2, 1.f);
    gpu::DeviceHeads in;
    in.q = q.get();
    in.k = k.get();
    in.q_stride_token = in.k_stride_token = s.head_dim;
    in.q_stride_head = in.k_stride_head = n * s.head_dim;
    in.heads = s.heads;
    in.head_dim = s.head_dim;
    in.dtype = PARO_FLOAT16;
    in.scale = 1.0 / std::sqrt(double(s.head_dim));

    gpu::GpuTileStatsEngine engine(s.layout, TileStatsOptions{});
    const size_t tiles = engine.tiles_per_head() * size_t(s.heads);
    gpu::DeviceBuffer mass(tiles * sizeof(double)), mx(tiles * sizeof(float)), below(tiles * sizeof(uint32_t));
    const gpu::DeviceTileStats dev{mass.as<double>(), mx.as<float>(), below.as<uint32_t>()};
    const double ms = gpu::median_ms([&] { engine.accumulate(in, dev, nullptr); }, 1, iters);

    gpu::DeviceHeads two = in;  // compute() with the host download, on 2 heads
    two.heads = 2;
    const double ms_compute = gpu::median_ms([&] { engine.compute(two); }, 0, 3) / 2;
    const auto stats = engine.compute(two);
    double worst = 0;
    for (const auto& st : stats[0]) worst = std::max(worst, std::fabs(st.total_mass() / double(n) - 1.0));
    size_t free_b = 0, total_b = 0;
    gpu::cuda_check(cudaMemGetInfo(&free_b, &total_b), "cudaMemGetInfo");
    std::printf("%-10s %7lld %4d %5d | %9.3f %7.1f %-4s | %10.3f | %9.1f %9.1f %9.1f | %.1e\n", s.name,
                static_cast<long long>(n), s.head_dim, s.heads, ms / s.heads, s.target_ms,
                ms / s.heads <= s.target_ms ? "ok" : "MISS", ms_compute, mib(engine.device_bytes()),
                mib(q.bytes() + k.bytes() + mass.bytes() + mx.bytes() + below.bytes()), mib(total_b - free_b), worst);
}

}  // namespace

int main(int argc, char** argv) {
    const int iters = argc > 1 ? std::max(1, std::atoi(argv[1])) : 5;
    try {
        const std::string card = gpu::device_name();
        if (card.empty()) {
            std::fprintf(stderr, "paro_tile_stats_bench: no CUDA device\n");
            return 2;
        }
        std::printf("card: %s; fp16 inputs, eps 1e-3, tile 64, median of %d runs\n", card.c_str(), iters);
        std::printf("%-10s %7s %4s %5s | %9s %7s %-4s | %10s | %9s %9s %9s | %s\n", "shape", "N", "D", "heads",
                    "ms/head", "target", "", "compute()", "engine", "inputs+", "device", "max |mass/N-1|");
        std::printf("%-10s %7s %4s %5s | %9s %7s %-4s | %10s | %9s %9s %9s |\n", "", "", "", "", "accumulate", "", "",
                    "ms/head", "MiB", "stats MiB", "used MiB");
        const Shape shapes[] = {
            {"cogvideox", {{13, 30, 45}, 226, TextPosition::prefix}, 64, 48, 1.0},
            {"large", {{21, 45, 80}, 0, TextPosition::prefix}, 128, 8, 20.0},
        };
        for (const Shape& s : shapes) run(s, iters);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "paro_tile_stats_bench: %s\n", e.what());
        return 1;
    }
    return 0;
}
