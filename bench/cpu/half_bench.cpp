// fp16 conversions of calibration's host side, per head at the CogVideoX-5B shape (q and k, N =
// 17,776, D 64: 2.3 M values): widening as the dump reader does (widen_halves) and narrowing back
// for the GPU's staging buffer (narrow_exact), each against the portable code in the same run.
// Usage: paro_half_bench [RUNS]; prints the best and median of each.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>
#include <vector>

#include "paro/half.hpp"

namespace {
void time(const char* what, int runs, const std::function<bool()>& f, size_t bytes) {
    std::vector<double> ms;
    for (int r = 0; r <= runs; ++r) {
        const auto t0 = std::chrono::steady_clock::now();
        if (!f()) std::printf("unexpected result in %s\n", what);
        if (r > 0) ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    std::sort(ms.begin(), ms.end());
    std::printf("%-34s median %7.3f ms (%6.2f GB/s of floats)\n", what, ms[ms.size() / 2],
                static_cast<double>(bytes) / ms[ms.size() / 2] / 1e6);
}
}  // namespace

int main(int argc, char** argv) {
    const int runs = argc > 1 ? std::atoi(argv[1]) : 21;
    const size_t n = size_t(17776) * 64 * 2;
    std::vector<uint16_t> halves(n), back(n);
    std::mt19937 rng(1);
    std::normal_distribution<float> normal(0.f, 1.f);
    for (uint16_t& h : halves) h = paro::float_to_half(normal(rng));
    std::vector<float> floats(n);
    const size_t bytes = n * sizeof(float);
    time("widen, portable (half_to_float)", runs, [&] {
        uint16_t special = 0;
        for (size_t i = 0; i < n; ++i) {
            special |= static_cast<uint16_t>((halves[i] & 0x7c00u) == 0x7c00u);
            floats[i] = paro::half_to_float(halves[i]);
        }
        return special == 0;
    }, bytes);
    time("widen_halves", runs, [&] { return paro::widen_halves(halves.data(), floats.data(), n); }, bytes);
    time("narrow, portable", runs, [&] { return paro::narrow_exact_portable(floats.data(), back.data(), n); }, bytes);
    time("narrow_exact", runs, [&] { return paro::narrow_exact(floats.data(), back.data(), n); }, bytes);
    return back == halves ? 0 : 1;
}
