#include "paro/direct_reads.hpp"

#include <fcntl.h>
#include <hdf5.h>
#include <unistd.h>

#include <cstring>
#include <vector>

namespace paro {

struct DirectReads::Dataset {
    enum Kind { through_hdf5, contiguous, chunked } kind = through_hdf5;
    h5::Handle dset;           // kept open for the chunk index
    uint64_t offset = 0;       // contiguous: where the data starts
    int64_t heads = 0;         // the dataset's second dimension
    uint64_t head_bytes = 0;   // one [1, 1, tokens, cols] box
    bool verified = false;     // a direct read was compared with libhdf5's
};

DirectReads::DirectReads(const std::string& path) : fd_(::open(path.c_str(), O_RDONLY | O_CLOEXEC)) {}

DirectReads::~DirectReads() {
    if (fd_ >= 0) ::close(fd_);
}

bool DirectReads::pread_all(void* out, uint64_t bytes, uint64_t offset) const {
    uint64_t got = 0;
    while (got < bytes) {
        const ssize_t r = ::pread(fd_, static_cast<char*>(out) + got, bytes - got, static_cast<off_t>(offset + got));
        if (r <= 0) return false;
        got += static_cast<uint64_t>(r);
    }
    return true;
}

// Under mutex_. What the dataset's creation properties, type and shape allow.
DirectReads::Dataset& DirectReads::lookup(const h5::File& file, const std::string& path, bool half, int64_t tokens,
                                          int64_t cols) {
    std::unique_ptr<Dataset>& slot = datasets_[path];
    if (slot) return *slot;
    slot = std::make_unique<Dataset>();
    Dataset& d = *slot;
    if (fd_ < 0) return d;
    d.dset = h5::Handle(H5Dopen2(file.id(), path.c_str(), H5P_DEFAULT));
    if (!d.dset) return d;
    const h5::Handle type(H5Dget_type(d.dset.get())), space(H5Dget_space(d.dset.get())),
        dcpl(H5Dget_create_plist(d.dset.get()));
    hsize_t dims[4] = {0, 0, 0, 0};
    if (!type || !space || !dcpl || H5Sget_simple_extent_ndims(space.get()) != 4 ||
        H5Sget_simple_extent_dims(space.get(), dims, nullptr) != 4 || dims[2] != hsize_t(tokens) ||
        dims[3] != hsize_t(cols) || H5Pget_nfilters(dcpl.get()) != 0)
        return d;
    // Exactly the type the box is read as, little-endian (what memcpy of the stored bytes gives).
    if (H5Tequal(type.get(), half ? h5::half_type() : H5T_IEEE_F32LE) <= 0) return d;
    d.heads = static_cast<int64_t>(dims[1]);
    d.head_bytes = static_cast<uint64_t>(tokens) * static_cast<uint64_t>(cols) * (half ? 2u : 4u);
    const H5D_layout_t layout = H5Pget_layout(dcpl.get());
    if (layout == H5D_CONTIGUOUS) {
        const haddr_t at = H5Dget_offset(d.dset.get());
        if (at == HADDR_UNDEF) return d;  // not written: libhdf5 gives the fill value
        d.offset = at;
        d.kind = Dataset::contiguous;
    } else if (layout == H5D_CHUNKED) {
        hsize_t chunk[4] = {0, 0, 0, 0};
        if (H5Pget_chunk(dcpl.get(), 4, chunk) != 4 || chunk[0] != 1 || chunk[1] != 1 || chunk[2] != dims[2] ||
            chunk[3] != dims[3])
            return d;
        d.kind = Dataset::chunked;
    }
    return d;
}

bool DirectReads::read(const h5::File& file, const std::string& path, bool half, int64_t sample, int64_t head,
                       int64_t tokens, int64_t cols, void* out) {
    std::unique_lock<std::mutex> lock(mutex_);
    Dataset& d = lookup(file, path, half, tokens, cols);
    if (d.kind == Dataset::through_hdf5) return false;
    uint64_t offset = 0;
    if (d.kind == Dataset::contiguous) {
        offset = d.offset +
                 (static_cast<uint64_t>(sample) * static_cast<uint64_t>(d.heads) + static_cast<uint64_t>(head)) * d.head_bytes;
    } else {
        const hsize_t coord[4] = {hsize_t(sample), hsize_t(head), 0, 0};
        unsigned filters = 0;
        haddr_t at = HADDR_UNDEF;
        hsize_t size = 0;
        // A chunk not written (fill values), or of another size: libhdf5 reads it.
        if (H5Dget_chunk_info_by_coord(d.dset.get(), coord, &filters, &at, &size) < 0 || at == HADDR_UNDEF ||
            filters != 0 || size != d.head_bytes)
            return false;
        offset = at;
    }
    if (d.verified) {
        lock.unlock();  // the reads themselves run in parallel
        return pread_all(out, d.head_bytes, offset);  // past the end: libhdf5 says what is wrong
    }
    // The dataset's first read, under the lock (no other thread reads it directly before): the
    // same box through libhdf5 as well, byte for byte.
    const Dataset::Kind kind = d.kind;
    d.kind = Dataset::through_hdf5;  // unless the comparison passes (an error in libhdf5's read included)
    std::vector<uint8_t> check;
    h5::read_box_raw(file, d.dset.get(), path, {sample, head, 0, 0}, {1, 1, tokens, cols}, check);
    if (!pread_all(out, d.head_bytes, offset) || check.size() != d.head_bytes ||
        std::memcmp(check.data(), out, check.size()) != 0)
        return false;
    d.kind = kind;
    d.verified = true;
    return true;
}

}  // namespace paro
