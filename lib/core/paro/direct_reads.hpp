#pragma once
// Reads of a dump's per-head boxes without libhdf5. libhdf5 (built thread-safe) serves one call at
// a time in a process, so reading through it caps a calibration at one core's copy rate (about 3
// GB/s from the page cache) however many threads decode. A dump's q, k and v are in the layout its
// writers use: unfiltered chunks of one head ([1, 1, N, cols]) or contiguous storage, in the
// little-endian type paro reads (IEEE half or float). For those, libhdf5 is asked only where a
// head's bytes lie (the chunk index), and the bytes are read with pread from any thread. The first
// read of each dataset is also made through libhdf5 and compared: a layout read wrongly (a user
// block, an address convention of another libhdf5) turns the direct reads of that dataset off.
// Only where the descriptor is libhdf5's file (same device and inode), for datasets in that file
// (not behind an external link), and for bytes inside it.
// Any other layout (filters, other chunks, other types) is read through libhdf5 as before.
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "paro/hdf5_io.hpp"

namespace paro {

class DirectReads {
public:
    // Opens `path` read-only (the file libhdf5 has open as the File each read is given).
    explicit DirectReads(const std::string& path);
    ~DirectReads();
    DirectReads(const DirectReads&) = delete;
    DirectReads& operator=(const DirectReads&) = delete;

    // Reads the box [sample, head, 0:tokens, 0:cols] of dataset `path` of `file` (stored as halves
    // when `half`, else floats) into out, and returns true; false when that dataset cannot be read
    // so (the caller reads it through libhdf5). Thread-safe.
    bool read(const h5::File& file, const std::string& path, bool half, int64_t sample, int64_t head, int64_t tokens,
              int64_t cols, void* out);

    // Heads read so far without libhdf5 (what the tests check the direct path by).
    int64_t direct_count() const { return direct_count_; }

private:
    struct Dataset;
    Dataset& lookup(const h5::File& file, const std::string& path, bool half, int64_t tokens, int64_t cols);
    bool pread_all(void* out, uint64_t bytes, uint64_t offset) const;
    bool same_file(const h5::File& file);

    int fd_ = -1;
    bool checked_file_ = false;
    uint64_t file_size_ = 0, chunk_base_ = 0;
    unsigned long root_fileno_ = 0;
    std::atomic<int64_t> direct_count_{0};
    std::mutex mutex_;
    std::map<std::string, std::unique_ptr<Dataset>> datasets_;
};

}  // namespace paro
