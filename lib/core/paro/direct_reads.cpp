#include "paro/direct_reads.hpp"

#include <fcntl.h>
#include <hdf5.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <vector>

namespace paro {

namespace {
// The number libhdf5 gives the file holding an object.
bool file_number(hid_t obj, unsigned long& fileno) {
#if H5_VERSION_GE(1, 12, 0)
    H5O_info2_t info;
    if (H5Oget_info3(obj, &info, H5O_INFO_BASIC) < 0) return false;
#else
    H5O_info_t info;
    if (H5Oget_info2(obj, &info, H5O_INFO_BASIC) < 0) return false;
#endif
    fileno = info.fileno;
    return true;
}
}  // namespace

struct DirectReads::Dataset {
    enum Kind { through_hdf5, contiguous, chunked } kind = through_hdf5;
    h5::Handle dset;           // kept open for the chunk index
    uint64_t offset = 0;       // contiguous: where the data starts
    int64_t heads = 0;         // the dataset's second dimension
    uint64_t head_bytes = 0;   // one [1, 1, tokens, cols] box
    bool verified = false;     // a direct read was compared with libhdf5's
};

DirectReads::DirectReads(const std::string& path) : fd_(::open(path.c_str(), O_RDONLY | O_CLOEXEC)) {}

// Under mutex_, once: whether fd_ is the file libhdf5 has open (not another one renamed over the
// path between the two opens), its size, and where libhdf5's addresses start.
bool DirectReads::same_file(const h5::File& file) {
    if (checked_file_) return fd_ >= 0;
    checked_file_ = true;
    void* handle = nullptr;
    struct stat mine {}, theirs {};
    const h5::Handle fcpl(H5Fget_create_plist(file.id())), fapl(H5Fget_access_plist(file.id()));
    hsize_t userblock = 0;
    // The POSIX driver's handle is its file descriptor (other drivers' handles are not).
    const bool same = fd_ >= 0 && fapl && H5Pget_driver(fapl.get()) == H5FD_SEC2 &&
                      H5Fget_vfd_handle(file.id(), H5P_DEFAULT, &handle) >= 0 && handle &&
                      ::fstat(fd_, &mine) == 0 && ::fstat(*static_cast<int*>(handle), &theirs) == 0 &&
                      mine.st_dev == theirs.st_dev && mine.st_ino == theirs.st_ino && fcpl &&
                      H5Pget_userblock(fcpl.get(), &userblock) >= 0;
    // libhdf5 before 1.14.4 gives chunk addresses without the user block (HDF5 issue 3003).
#if H5_VERSION_GE(1, 14, 4)
    chunk_base_ = 0;
#else
    chunk_base_ = userblock;
#endif
    file_size_ = static_cast<uint64_t>(mine.st_size);
    h5::Handle root(H5Gopen2(file.id(), "/", H5P_DEFAULT));
    if (!same || !root || !file_number(root.get(), root_fileno_)) {
        ::close(fd_);
        fd_ = -1;
    }
    return fd_ >= 0;
}

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
    if (!same_file(file)) return d;
    d.dset = h5::Handle(H5Dopen2(file.id(), path.c_str(), H5P_DEFAULT));
    unsigned long fileno = 0;
    // In this file (an external link leads elsewhere, where fd_ does not read).
    if (!d.dset || !file_number(d.dset.get(), fileno) || fileno != root_fileno_) return d;
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
        // Written, and whole inside the file (libhdf5 1.10 adds the user block even to the
        // undefined address of data never written, which libhdf5 reads as fill values).
        const haddr_t at = H5Dget_offset(d.dset.get());
        uint64_t bytes = 0;
        if (at == HADDR_UNDEF || __builtin_mul_overflow(static_cast<uint64_t>(dims[0]) * dims[1], d.head_bytes, &bytes) ||
            H5Dget_storage_size(d.dset.get()) < bytes || at > file_size_ || bytes > file_size_ - at)
            return d;
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
    h5::silence();  // a decoding thread's first call into libhdf5 may be this one
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
            filters != 0 || size != d.head_bytes || at > file_size_ - chunk_base_ ||
            at + chunk_base_ > file_size_ - size)
            return false;
        offset = at + chunk_base_;
    }
    if (d.verified) {
        lock.unlock();  // the reads themselves run in parallel
        if (!pread_all(out, d.head_bytes, offset)) return false;  // libhdf5 says what is wrong
        ++direct_count_;
        return true;
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
    ++direct_count_;
    return true;
}

}  // namespace paro
