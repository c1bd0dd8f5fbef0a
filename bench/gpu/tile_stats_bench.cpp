// Benchmark of the GPU tile statistics at the two reference shapes (docs/gpu_calibration.md):
//   CogVideoX-like   13x30x45 + 226 text, N = 17,776, D 64,  fp16, 48 heads   target <= 1 ms / head
//   large            21x45x80,            N = 75,600, D 128, fp16, 8 heads    target <= 20 ms / head
// Every kernel variant (TileStatsKernel; TEMPORARY until this measurement picks one) runs on the same
// inputs in the same process: per head, the median of several accumulate() calls over the whole
// batch (CUDA events, device work only); its statistics of head 0 against the reference variant's
// (largest relative mass / max difference, largest below_eps difference); the sanity check without
// a CPU run (every order's total mass must be N: each row of P sums to 1). Then one line per
// shape names the fastest variant, and compute() (device work + download + conversion to host
// TileStats, pipelined) runs with it. Memory: what the engine holds (bounded by its budget,
// independent of the number of heads) and the device total in use.
//
// Usage: paro_tile_stats_bench [iterations (default 5)] [--shape cogvideox|large]
//                              [--variants reference,sync,...] [--heads N] [--profile]
// --profile: one accumulate() per variant and nothing else (for ncu: bench/gpu/tile_stats_gpu.sh).
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include "gpu_helpers.hpp"
#include "gpu_tile_stats.hpp"

using namespace paro;

namespace {

constexpr double kNaiveTorchMs = 44.0;  // materialized P, 6 permuted copies, N = 17,776 (measured on the H200)

struct Shape {
    const char* name;
    TokenLayout layout;
    int head_dim, heads;
    double target_ms;
};

struct Args {
    int iters = 5;
    std::string shape;  // empty: both
    std::vector<gpu::TileStatsKernel> variants;
    int heads = 0;      // 0: the shape's
    bool profile = false;
};

double mib(size_t b) { return double(b) / (1024.0 * 1024.0); }

struct Diff {
    double mass = 0, max = 0;
    int64_t below = 0;
    double worst_total = 0;  // max over orders |total mass / N - 1|
};

Diff diff(const SixOrderStats& a, const SixOrderStats* ref, int64_t n) {
    Diff d;
    for (int o = 0; o < kNumOrders; ++o) {
        d.worst_total = std::max(d.worst_total, std::fabs(a[o].total_mass() / double(n) - 1.0));
        if (!ref) continue;
        const TileStats& r = (*ref)[o];
        for (size_t t = 0; t < r.mass.size(); ++t) {
            d.mass = std::max(d.mass, std::fabs(a[o].mass[t] - r.mass[t]) / (r.mass[t] + 1e-6));
            d.max = std::max(d.max, std::fabs(double(a[o].max[t]) - double(r.max[t])) / (double(r.max[t]) + 1e-7));
            d.below = std::max<int64_t>(d.below, std::llabs(a[o].below_eps[t] - r.below_eps[t]));
        }
    }
    return d;
}

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

    if (args.profile) {  // one launch of each pass per variant, for ncu
        for (const auto v : args.variants) {
            engine.set_kernel(v);
            engine.accumulate(in, dev, nullptr);
        }
        gpu::synchronize();
        std::printf("%s: profiled %zu variants\n", s.name, args.variants.size());
        return;
    }

    std::printf("\n%s: N %lld, D %d, %d heads, fp16; target %.1f ms/head\n", s.name, static_cast<long long>(n),
                s.head_dim, heads, s.target_ms);
    std::printf("  %-12s %-12s | %9s %-4s | %8s %8s | %10s %10s %7s | %s\n", "variant", "runs as", "ms/head", "",
                "x ref", "x naive", "d mass", "d max", "d below", "max |mass/N-1|");
    gpu::DeviceHeads one = in;  // head 0 of every variant against the reference variant's
    one.heads = 1;
    SixOrderStats ref;
    bool have_ref = false;
    double ref_ms = 0, best_ms = 1e30;
    gpu::TileStatsKernel best = args.variants.front();
    for (const auto v : args.variants) {
        engine.set_kernel(v);
        const double ms = gpu::median_ms([&] { engine.accumulate(in, dev, nullptr); }, 1, args.iters) / heads;
        const SixOrderStats st = std::move(engine.compute(one).front());
        const Diff d = diff(st, have_ref ? &ref : nullptr, n);
        if (v == gpu::TileStatsKernel::reference) {
            ref = st;
            have_ref = true;
            ref_ms = ms;
        }
        if (ms < best_ms) {
            best_ms = ms;
            best = v;
        }
        std::printf("  %-12s %-12s | %9.3f %-4s | %8.2f %8.1f | %10.2e %10.2e %7lld | %.1e\n", gpu::to_string(v),
                    gpu::to_string(engine.kernel_for(PARO_FLOAT16)), ms, ms <= s.target_ms ? "ok" : "MISS",
                    ref_ms > 0 ? ref_ms / ms : 0.0, kNaiveTorchMs / ms, d.mass, d.max, static_cast<long long>(d.below),
                    d.worst_total);
    }
    std::printf("  fastest: %s, %.3f ms/head (%s the %.1f ms target; %.1fx the naive torch %.1f ms at N = 17,776)\n",
                gpu::to_string(best), best_ms, best_ms <= s.target_ms ? "meets" : "MISSES", s.target_ms,
                kNaiveTorchMs / best_ms, kNaiveTorchMs);

    engine.set_kernel(best);
    gpu::DeviceHeads part = in;  // compute(): device work + download + conversion, pipelined by chunks
    part.heads = std::min(heads, s.head_dim == 64 ? 16 : 4);
    const double ms_compute = gpu::median_ms([&] { engine.compute(part); }, 1, 3) / part.heads;
    size_t free_b = 0, total_b = 0;
    gpu::cuda_check(cudaMemGetInfo(&free_b, &total_b), "cudaMemGetInfo");
    std::printf("  compute() with %s on %d heads: %.3f ms/head (%.2fx the device time) | engine %.1f MiB | "
                "inputs+stats %.1f MiB | device used %.1f MiB\n",
                gpu::to_string(best), part.heads, ms_compute, ms_compute / best_ms, mib(engine.device_bytes()),
                mib(q.bytes() + k.bytes() + mass.bytes() + mx.bytes() + below.bytes()), mib(total_b - free_b));
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
        else if (x == "--profile")
            a.profile = true;
        else if (x == "--variants") {
            const std::string list = value();
            size_t at = 0;
            while (at <= list.size()) {
                const size_t end = std::min(list.find(',', at), list.size());
                if (end > at) a.variants.push_back(gpu::parse_tile_stats_kernel(list.substr(at, end - at)));
                at = end + 1;
            }
        } else
            a.iters = std::max(1, std::atoi(x.c_str()));
    }
    if (a.variants.empty())
        for (int i = 0; i < gpu::kTileStatsKernels; ++i) a.variants.push_back(static_cast<gpu::TileStatsKernel>(i));
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
        std::printf("card: %s; fp16 inputs, eps 1e-3, tile 64, median of %d runs; d = largest difference of head 0's "
                    "statistics from the reference variant (relative for mass and max)\n",
                    card.c_str(), args.iters);
        const Shape shapes[] = {
            {"cogvideox", {{13, 30, 45}, 226, TextPosition::prefix}, 64, 48, 1.0},
            {"large", {{21, 45, 80}, 0, TextPosition::prefix}, 128, 8, 20.0},
        };
        for (const Shape& s : shapes)
            if (args.shape.empty() || args.shape == s.name) run(s, args);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "paro_tile_stats_bench: %s\n", e.what());
        return 1;
    }
    return 0;
}
