// Benchmark of the GPU tile statistics at the two reference shapes (docs/gpu_calibration.md):
//   CogVideoX-like   13x30x45 + 226 text, N = 17,776, D 64,  fp16, 48 heads   target <= 1 ms / head
//   large            21x45x80,            N = 75,600, D 128, fp16, 8 heads    target <= 20 ms / head
// One row per shape for the engine as shipped (the kernels it picks on this device): per head, the
// median of several accumulate() calls over the whole batch (CUDA events, device work only); that
// against the naive PyTorch reference (P materialized, six permuted copies; measured at the
// CogVideoX shape only); compute() per head (device work + download + conversion to host
// TileStats, pipelined) and its ratio to the device time; memory: what the engine holds (bounded
// by its budget, independent of the number of heads), inputs + caller-owned statistics, and the
// device total in use; a sanity check without a CPU run (every order's total mass of head 0 must
// be N: each row of P sums to 1).
//
// Usage: paro_tile_stats_bench [iterations (default 5)] [--shape cogvideox|large] [--heads N]
//                              [--naive-ms MS (default 44.0)] [--profile]
// --profile: one accumulate() and nothing else (for ncu: bench/gpu/tile_stats_gpu.sh).
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <stdexcept>
#include <string>

#include "gpu_helpers.hpp"
#include "gpu_tile_stats.hpp"

using namespace paro;

namespace {

struct Shape {
    const char* name;
    TokenLayout layout;
    int head_dim, heads;
    double target_ms;
    bool naive_measured;  // the naive reference was measured at this shape
};

struct Args {
    int iters = 5;
    std::string shape;  // empty: both
    int heads = 0;      // 0: the shape's
    double naive_ms = 44.0;  // naive PyTorch, N = 17,776, D 64 (H200, 2026-11-29)
    bool profile = false;
};

double mib(size_t b) { return double(b) / (1024.0 * 1024.0); }

void run(const Shape& s, const Args& args) {
    const int64_t n = s.layout.tokens();
    const int heads = args.heads > 0 ? args.heads : s.heads;
    const size_t elems = size_t(heads) * size_t(n) * size_t(s.head_dim);
    gpu::DeviceBuffer q(elems * 2), k(elems * 2);
    gpu::fill_random(q.get(), PARO_FLOAT16, elems, 1, 1.f);
    gpu::fill_random(k.get(), PARO_FLOAT16, elems, 2, 1.f);
    gpu::DeviceHeads in;
    in.q = q.get();
    in.k = k.get();
    in.q_stride_token = in.k_stride_token = s.head_dim;
    in.q_stride_head = in.k_stride_head = n * s.head_dim;
    in.heads = heads;
    in.head_dim = s.head_dim;
    in.dtype = PARO_FLOAT16;
    in.scale = 1.0 / std::sqrt(double(s.head_dim));

    gpu::GpuTileStatsEngine engine(s.layout, TileStatsOptions{});
    const size_t tiles = engine.tiles_per_head() * size_t(heads);
    gpu::DeviceBuffer mass(tiles * sizeof(double)), mx(tiles * sizeof(float)), below(tiles * sizeof(uint32_t));
    const gpu::DeviceTileStats dev{mass.as<double>(), mx.as<float>(), below.as<uint32_t>()};

    if (args.profile) {  // one launch of each pass, for ncu
        engine.accumulate(in, dev, nullptr);
        gpu::synchronize();
        std::printf("%s: profiled (%s)\n", s.name, gpu::to_string(engine.kernel_for(PARO_FLOAT16)));
        return;
    }

    const double ms = gpu::median_ms([&] { engine.accumulate(in, dev, nullptr); }, 1, args.iters) / heads;
    gpu::DeviceHeads one = in;
    one.heads = 1;
    const SixOrderStats st = std::move(engine.compute(one).front());
    double worst_total = 0;  // max over orders |total mass / N - 1|
    for (int o = 0; o < kNumOrders; ++o) worst_total = std::max(worst_total, std::fabs(st[o].total_mass() / double(n) - 1.0));

    gpu::DeviceHeads part = in;  // compute(): device work + download + conversion, pipelined by chunks
    part.heads = std::min(heads, s.head_dim == 64 ? 16 : 4);
    const double ms_compute = gpu::median_ms([&] { engine.compute(part); }, 1, 3) / part.heads;
    size_t free_b = 0, total_b = 0;
    gpu::cuda_check(cudaMemGetInfo(&free_b, &total_b), "cudaMemGetInfo");

    char naive[32] = "-";
    if (s.naive_measured) std::snprintf(naive, sizeof(naive), "%.1f", args.naive_ms / ms);
    std::printf("%-9s %6lld %3d %5d  %-8s | %8.3f %6.1f %-4s | %7s | %8.3f (%2d heads) %5.2fx | %7.1f %9.1f %8.1f | %.1e\n",
                s.name, static_cast<long long>(n), s.head_dim, heads, gpu::to_string(engine.kernel_for(PARO_FLOAT16)),
                ms, s.target_ms, ms <= s.target_ms ? "ok" : "MISS", naive, ms_compute, part.heads, ms_compute / ms,
                mib(engine.device_bytes()), mib(q.bytes() + k.bytes() + mass.bytes() + mx.bytes() + below.bytes()),
                mib(total_b - free_b), worst_total);
}

Args parse(int argc, char** argv) {
    Args a;
    for (int i = 1; i < argc; ++i) {
        const std::string x = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) throw std::runtime_error(x + " needs a value");
            return argv[++i];
        };
        if (x == "--shape")
            a.shape = value();
        else if (x == "--heads")
            a.heads = std::max(1, std::atoi(value().c_str()));
        else if (x == "--naive-ms")
            a.naive_ms = std::atof(value().c_str());
        else if (x == "--profile")
            a.profile = true;
        else
            a.iters = std::max(1, std::atoi(x.c_str()));
    }
    if (!(a.naive_ms > 0)) throw std::runtime_error("--naive-ms must be > 0");
    return a;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        const Args args = parse(argc, argv);
        const std::string card = gpu::device_name();
        if (card.empty()) {
            std::fprintf(stderr, "paro_tile_stats_bench: no CUDA device\n");
            return 2;
        }
        const Shape shapes[] = {
            {"cogvideox", {{13, 30, 45}, 226, TextPosition::prefix}, 64, 48, 1.0, true},
            {"large", {{21, 45, 80}, 0, TextPosition::prefix}, 128, 8, 20.0, false},
        };
        if (!args.profile) {
            std::printf("card: %s; fp16 q/k, eps 1e-3, tile 64, median of %d runs; naive PyTorch reference %.1f ms/head "
                        "at N = 17,776, D 64\n",
                        card.c_str(), args.iters, args.naive_ms);
            std::printf("%-9s %6s %3s %5s  %-8s | %8s %6s %-4s | %7s | %-19s %6s | %7s %9s %8s | %s\n", "shape", "N", "D",
                        "heads", "kernels", "ms/head", "target", "", "x naive", "compute() ms/head", "x dev",
                        "eng MiB", "in+st MiB", "dev MiB", "max |mass/N-1|");
        }
        for (const Shape& s : shapes)
            if (args.shape.empty() || args.shape == s.name) run(s, args);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "paro_tile_stats_bench: %s\n", e.what());
        return 1;
    }
    return 0;
}
