#include "paro/slice_feed.hpp"

#include <chrono>
#include <utility>

#include "paro/error.hpp"
#include "paro/hdf5_io.hpp"
#include "paro/parallel.hpp"

namespace paro {

SliceFeed::SliceFeed(const DumpReader& reader, bool with_v, HalfQK halves, int threads)
    : reader_(reader), with_v_(with_v), halves_(halves), threads_(threads), thread_([this] { serve(); }) {}

SliceFeed::~SliceFeed() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stop_ = true;
    }
    wake_.notify_all();
    thread_.join();
}

std::future<void> SliceFeed::request(int64_t sample, int64_t layer, int64_t h0, int64_t count, SliceBatch& into) {
    Request r{sample, layer, h0, count, &into, {}};
    std::future<void> f = r.done.get_future();
    {
        std::lock_guard<std::mutex> lock(mutex_);
        PARO_ASSERT(!stop_);
        queue_.push_back(std::move(r));
    }
    wake_.notify_one();
    return f;
}

double SliceFeed::busy_seconds() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return busy_seconds_;
}

int64_t SliceFeed::stored_bytes() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return stored_bytes_;
}

void SliceFeed::serve() {
    h5::silence();  // libhdf5's error printing is per thread: paro reports errors itself, in one line
    for (;;) {
        std::deque<Request> taken;  // swapped out of the queue: nothing to allocate under the lock
        {
            std::unique_lock<std::mutex> lock(mutex_);
            wake_.wait(lock, [this] { return stop_ || !queue_.empty(); });
            if (stop_) {
                queue_.clear();  // their futures see broken promises
                return;
            }
            taken.swap(queue_);
        }
        const auto t0 = std::chrono::steady_clock::now();
        std::vector<std::exception_ptr> errors;
        try {
            errors = fill(taken);
        } catch (...) {  // out of memory for the bookkeeping: every request of the batch fails with it
            errors.assign(taken.size(), std::current_exception());
        }
        {  // counted before the callers hear of it: one may read the totals as soon as its last read is done
            const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            std::lock_guard<std::mutex> lock(mutex_);
            busy_seconds_ += secs;
            for (const Request& r : taken) stored_bytes_ += r.into->raw.stored_bytes();
        }
        for (size_t j = 0; j < taken.size(); ++j)
            if (errors[j])
                taken[j].done.set_exception(errors[j]);
            else
                taken[j].done.set_value();
    }
}

std::vector<std::exception_ptr> SliceFeed::fill(const std::deque<Request>& requests) const {
    std::vector<std::exception_ptr> errors(requests.size());
    std::vector<std::pair<size_t, int64_t>> heads;  // (request, head in it)
    for (size_t j = 0; j < requests.size(); ++j) {
        const Request& r = requests[j];
        try {
            reader_.prepare_raw(r.sample, r.layer, r.h0, r.count, with_v_, r.into->raw);
            r.into->slices.resize(static_cast<size_t>(r.count));
            for (int64_t i = 0; i < r.count; ++i) heads.emplace_back(j, i);
        } catch (...) {
            errors[j] = std::current_exception();
        }
    }
    // Head by head: a thread reads one and decodes it while the others read and decode theirs, so
    // the reads overlap the decoding instead of preceding it. A request's error is its first head's.
    std::vector<std::exception_ptr> failed(heads.size());
    parallel_for(static_cast<int64_t>(heads.size()), threads_, [&](int64_t x) {
        const auto [j, i] = heads[static_cast<size_t>(x)];
        SliceBatch& b = *requests[j].into;
        try {
            reader_.read_raw_heads(b.raw, i, 1);
            reader_.decode(b.raw, i, b.slices[static_cast<size_t>(i)], halves_);
        } catch (...) {
            failed[static_cast<size_t>(x)] = std::current_exception();
        }
    });
    for (size_t x = 0; x < heads.size(); ++x)
        if (failed[x] && !errors[heads[x].first]) errors[heads[x].first] = failed[x];
    return errors;
}

}  // namespace paro
