#include "paro/slice_feed.hpp"

#include <chrono>

#include "paro/error.hpp"
#include "paro/hdf5_io.hpp"
#include "paro/parallel.hpp"

namespace paro {

SliceFeed::SliceFeed(const DumpReader& reader, bool with_v, int threads)
    : reader_(reader), with_v_(with_v), threads_(threads), thread_([this] { serve(); }) {}

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
        Request r;
        {
            std::unique_lock<std::mutex> lock(mutex_);
            wake_.wait(lock, [this] { return stop_ || !queue_.empty(); });
            if (stop_) {
                queue_.clear();  // their futures see broken promises
                return;
            }
            r = std::move(queue_.front());
            queue_.pop_front();
        }
        const auto t0 = std::chrono::steady_clock::now();
        std::exception_ptr error;
        try {
            fill(r);
        } catch (...) {
            error = std::current_exception();
        }
        {  // counted before the caller hears of it: it may read the totals as soon as its last read is done
            const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            std::lock_guard<std::mutex> lock(mutex_);
            busy_seconds_ += secs;
            stored_bytes_ += r.into->raw.stored_bytes();
        }
        if (error)
            r.done.set_exception(error);
        else
            r.done.set_value();
    }
}

void SliceFeed::fill(const Request& r) {
    SliceBatch& b = *r.into;
    reader_.prepare_raw(r.sample, r.layer, r.h0, r.count, with_v_, b.raw);
    b.slices.resize(static_cast<size_t>(r.count));
    // Head by head: a thread reads one (libhdf5 serves one thread at a time) and decodes it while
    // the others read and decode theirs, so the reads overlap the decoding instead of preceding it.
    parallel_for(r.count, threads_, [&](int64_t i) {
        reader_.read_raw_heads(b.raw, i, 1);
        reader_.decode(b.raw, i, b.slices[i]);
    });
}

}  // namespace paro
