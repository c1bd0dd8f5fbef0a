// The calibration's allocation pattern on the host, alone: each batch of 16 heads' six-order tile
// statistics (278 x 278 tiles, the CogVideoX-5B shape: 9.3 MB a head) is assigned into fresh
// TileStats on two threads, as the GPU engine's download does, and handed to a scoring thread that
// reads and frees them. Usage: paro_alloc_bench [keep] [BATCHES]; `keep` sets the malloc options
// paro's main() sets (freed memory kept in the process). Prints wall time and minor page faults.
#include <malloc.h>
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <future>
#include <vector>

#include "paro/tile_stats_backend.hpp"

int main(int argc, char** argv) {
    using namespace paro;
    const bool keep = argc > 1 && std::strcmp(argv[1], "keep") == 0;
    const int batches = argc > 2 ? std::atoi(argv[2]) : 60;
    if (keep) {  // as apps/main.cpp
        mallopt(M_MMAP_THRESHOLD, 32 << 20);
        mallopt(M_TRIM_THRESHOLD, 512 << 20);
    }
    const TileGrid grid{17776, 64};
    const size_t tiles = static_cast<size_t>(grid.tiles());
    const int heads = 16;
    const std::vector<double> mass(tiles * kNumOrders * heads, 1.0);
    const std::vector<float> max(mass.size(), 2.f);
    const std::vector<uint32_t> below(mass.size(), 3u);
    rusage r0{}, r1{};
    getrusage(RUSAGE_SELF, &r0);
    const auto t0 = std::chrono::steady_clock::now();
    std::future<double> scoring;
    double check = 0;
    for (int b = 0; b < batches; ++b) {
        std::vector<SixOrderStats> out(heads);
#pragma omp parallel for collapse(2) num_threads(2)
        for (int h = 0; h < heads; ++h)
            for (int o = 0; o < kNumOrders; ++o) {
                const size_t at = (size_t(h) * kNumOrders + size_t(o)) * tiles;
                TileStats& st = out[size_t(h)][size_t(o)];
                st.mass.assign(mass.begin() + at, mass.begin() + at + tiles);
                st.max.assign(max.begin() + at, max.begin() + at + tiles);
                st.below_eps.assign(below.begin() + at, below.begin() + at + tiles);
            }
        if (scoring.valid()) check += scoring.get();
        scoring = std::async(std::launch::async, [stats = std::move(out), tiles]() mutable {
            double s = 0;
            for (const SixOrderStats& six : stats)
                for (const TileStats& t : six) s += t.mass[tiles / 2] + t.max[tiles / 3];
            stats.clear();  // freed here, as the scoring frees each head's statistics
            return s;
        });
    }
    check += scoring.get();
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    getrusage(RUSAGE_SELF, &r1);
    std::printf("%s: %d batches of %d heads in %.3f s, %ld minor page faults (check %.0f)\n",
                keep ? "freed memory kept" : "glibc defaults", batches, heads, secs, r1.ru_minflt - r0.ru_minflt,
                check);
    return 0;
}
