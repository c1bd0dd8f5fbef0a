// The host's share of calibration per head and sample: score_sample (each order's ranking, mask
// and metrics) on statistics of the CogVideoX-5B shape (N = 17,776 tokens, 64-token tiles: 278 x
// 278 tiles per order), lognormal masses. Usage: paro_scoring_bench [RUNS]; prints the median.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "paro/head_scoring.hpp"
#include "paro/mask_builder.hpp"

int main(int argc, char** argv) {
    using namespace paro;
    const int runs = argc > 1 ? std::atoi(argv[1]) : 21;
    const TokenLayout layout{{13, 30, 45}, 226, TextPosition::prefix};
    const TileGrid grid{layout.tokens(), 64};
    const int64_t tiles = grid.tiles();
    std::mt19937_64 rng(1);
    std::lognormal_distribution<double> mass(0, 2);
    SixOrderStats stats;
    for (TileStats& s : stats) {
        s = TileStats(grid);
        for (int64_t t = 0; t < tiles; ++t) {
            s.mass[t] = mass(rng);
            s.max[t] = static_cast<float>(s.mass[t] / 100);
            s.below_eps[t] = static_cast<int64_t>(rng() % 4096);
        }
    }
    CalibrateOptions opt;
    opt.mask.density = 0.3;
    const BlockMask forced = forced_tiles(layout, grid, opt.mask);
    std::vector<double> ms;
    double check = 0;
    for (int r = 0; r <= runs; ++r) {
        const auto t0 = std::chrono::steady_clock::now();
        const ScoredSample s = score_sample(stats, forced, opt);
        const double t = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
        if (r > 0) ms.push_back(t);  // the first allocates the thread's scratch
        check += s.metrics[0].recall;
    }
    std::sort(ms.begin(), ms.end());
    std::printf("score_sample, %lld x %lld tiles, 6 orders: median %.2f ms of %d runs (recall %.6f)\n",
                static_cast<long long>(grid.tiles_per_side()), static_cast<long long>(grid.tiles_per_side()),
                ms[ms.size() / 2], runs, check / (runs + 1));
    return 0;
}
