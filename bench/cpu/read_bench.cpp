// The calibration's read stage alone: SliceFeed over every (sample, layer, group of heads) of a
// dump, one request ahead as a device's loop makes them, with the decoding threads given.
// Usage: paro_read_bench DUMP [THREADS] [GROUP] [RUNS] [keep]; prints the median wall time and
// rate. `keep`: q and k stored as halves stay halves (HalfQK::keep, as for the GPU statistics).
// The dump's first pass fills the page cache and is not counted.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "paro/dump.hpp"
#include "paro/slice_feed.hpp"

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s DUMP [THREADS] [GROUP] [RUNS] [keep]\n", argv[0]);
        return 2;
    }
    const int threads = argc > 2 ? std::atoi(argv[2]) : 2;
    const int64_t group = argc > 3 ? std::atoll(argv[3]) : 16;
    const int runs = argc > 4 ? std::atoi(argv[4]) : 5;
    const paro::HalfQK halves = argc > 5 && std::string(argv[5]) == "keep" ? paro::HalfQK::keep : paro::HalfQK::widen;
    paro::DumpReader reader(argv[1]);
    const paro::DumpInfo& info = reader.info();
    struct Request {
        int64_t sample, layer, h0, count;
    };
    std::vector<Request> requests;
    for (int64_t l = 0; l < static_cast<int64_t>(info.layers.size()); ++l)
        for (int64_t h0 = 0; h0 < info.layers[l].heads; h0 += group)
            for (int64_t s = 0; s < static_cast<int64_t>(info.samples.size()); ++s)
                requests.push_back({s, l, h0, std::min(group, info.layers[l].heads - h0)});
    std::vector<double> walls;
    int64_t bytes = 0;
    for (int run = 0; run <= runs; ++run) {
        paro::SliceFeed feed(reader, false, halves, threads);
        std::vector<paro::SliceBatch> buffers(2);
        const auto t0 = std::chrono::steady_clock::now();
        std::future<void> next = feed.request(requests[0].sample, requests[0].layer, requests[0].h0,
                                              requests[0].count, buffers[0]);
        for (size_t i = 0; i < requests.size(); ++i) {
            next.get();
            if (i + 1 < requests.size()) {
                const Request& r = requests[i + 1];
                next = feed.request(r.sample, r.layer, r.h0, r.count, buffers[(i + 1) % 2]);
            }
        }
        const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (run > 0) walls.push_back(wall);  // run 0 warms the page cache
        bytes = feed.stored_bytes();
    }
    std::sort(walls.begin(), walls.end());
    const double median = walls[walls.size() / 2];
    std::printf("read stage: %zu requests, %.1f MiB stored, %d threads%s: median %.3f s of %d runs (%.2f GB/s)\n",
                requests.size(), static_cast<double>(bytes) / (1 << 20), threads,
                halves == paro::HalfQK::keep ? ", halves kept" : "", median, runs,
                static_cast<double>(bytes) / median / 1e9);
    return 0;
}
