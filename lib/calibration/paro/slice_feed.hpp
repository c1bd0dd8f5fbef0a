#pragma once
// SliceFeed: the dump reader of a calibration as a pipeline stage. One thread serves read requests:
// every request queued when it turns to the queue, together, in one parallel loop over their heads
// (the devices' groups are smaller than the thread count, 8 heads for 16 threads, and one group at a
// time left half the threads idle while other devices waited; the price is that each request of a
// batch is ready only when the whole batch is). Its decoding threads each read a head's stored
// values (direct reads, or libhdf5, which serves one call at a time) and decode it (fp16 widening,
// NaN/Inf checks, checksums), so one head's read overlaps the others' decoding. A caller asks for
// its next group before it works on the current one, so reads overlap tile statistics and scoring.
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

#include "paro/dump.hpp"

namespace paro {

// One group of heads of one (sample, layer), with the buffers reused from request to request.
struct SliceBatch {
    RawHeads raw;
    std::vector<HeadSlice> slices;
};

class SliceFeed {
public:
    // threads: decoding threads (the caller's OpenMP setting, e.g. --threads); halves: what
    // DumpReader::decode makes of q and k stored as halves.
    SliceFeed(const DumpReader& reader, bool with_v, HalfQK halves, int threads);
    // Drops queued requests (their futures see broken promises) and joins the thread after the
    // batch of reads in progress: destroy the feed before the SliceBatches it may be writing.
    ~SliceFeed();
    SliceFeed(const SliceFeed&) = delete;
    SliceFeed& operator=(const SliceFeed&) = delete;

    // Queues reading heads [h0, h0 + count) of (sample, layer) into into; the future is ready
    // when into.slices holds them, or holds the InputError that stopped the read. into must stay
    // alive and untouched until then.
    std::future<void> request(int64_t sample, int64_t layer, int64_t h0, int64_t count, SliceBatch& into);

    // Seconds the reader thread spent on requests, and the bytes it read as stored in the dump.
    double busy_seconds() const;
    int64_t stored_bytes() const;

private:
    struct Request {
        int64_t sample, layer, h0, count;
        SliceBatch* into;
        std::promise<void> done;
    };
    void serve();
    // Reads and decodes the requests' heads; the error of each request that failed, by index.
    std::vector<std::exception_ptr> fill(const std::deque<Request>& requests) const;

    const DumpReader& reader_;
    const bool with_v_;
    const HalfQK halves_;
    const int threads_;
    mutable std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<Request> queue_;
    bool stop_ = false;
    double busy_seconds_ = 0;
    int64_t stored_bytes_ = 0;
    std::thread thread_;
};

}  // namespace paro
