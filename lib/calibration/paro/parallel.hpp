#pragma once
// parallel_for: fn(i) for i in [0, n) on `threads` OpenMP threads (dynamic schedule). An exception
// may not leave an OpenMP region (it would terminate the process), so each is caught and the first
// one, by index, is rethrown after the loop.
#include <cstdint>
#include <exception>
#include <vector>

namespace paro {

template <typename F>
void parallel_for(int64_t n, int threads, F&& fn) {
    std::vector<std::exception_ptr> failed(static_cast<size_t>(n));
#pragma omp parallel for schedule(dynamic) num_threads(threads) if (n > 1 && threads > 1)
    for (int64_t i = 0; i < n; ++i) {
        try {
            fn(i);
        } catch (...) {
            failed[static_cast<size_t>(i)] = std::current_exception();
        }
    }
    for (const std::exception_ptr& e : failed)
        if (e) std::rethrow_exception(e);
}

}  // namespace paro
