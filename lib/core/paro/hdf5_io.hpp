#pragma once
// Thin RAII layer over the HDF5 C API, shared by the dump reader, the pattern file and `paro check`.
// Every failure becomes an InputError naming the file and the object at fault; HDF5's own error
// stack printing is silenced (we say one line, not forty). paro requires a thread-safe libhdf5
// (CMakeLists.txt checks): it serves one call at a time, from any thread.
#include <hdf5.h>

#include <cstdint>
#include <string>
#include <vector>

#include "paro/hdf5_probe.hpp"

namespace paro::h5 {

// Turns off libhdf5's printing of its error stack for the calling thread (the setting is per
// thread); every entry point of this layer calls it, and so must code calling libhdf5 directly.
void silence();

// Owns one hid_t and closes it with the matching H5*close.
class Handle {
public:
    Handle() = default;
    explicit Handle(hid_t id) : id_(id) {}
    Handle(const Handle&) = delete;
    Handle& operator=(const Handle&) = delete;
    Handle(Handle&& o) noexcept : id_(o.id_) { o.id_ = H5I_INVALID_HID; }
    Handle& operator=(Handle&& o) noexcept;
    ~Handle() { reset(); }
    hid_t get() const { return id_; }
    explicit operator bool() const { return id_ >= 0; }
    void reset();

private:
    hid_t id_ = H5I_INVALID_HID;
};

enum class TypeClass { integer, floating, string, other };

struct DatasetInfo {
    std::vector<int64_t> shape;
    TypeClass type = TypeClass::other;
    size_t type_size = 0;  // bytes per element in the file
};

class File {
public:
    // Opens an existing file read-only. Throws InputError: missing file, not HDF5, truncated.
    static File open_read(const std::string& path);
    // Creates (truncates) a file for writing.
    static File create(const std::string& path);

    hid_t id() const { return handle_.get(); }
    const std::string& path() const { return path_; }
    // Flushes and closes a file written: InputError when the data cannot all be written (a full
    // disk shows here, where HDF5 writes what it cached), so that no caller renames a partial file
    // into place. Destruction closes without that check.
    void close();

private:
    Handle handle_;
    std::string path_;
};

// Opens `path` for a reader whose constructor reads it: open_read (a regular file, walked in a
// child), then Reader(path) rehearsed in another child (rehearse_in_child) before the real read.
template <typename Reader>
File open_for(const std::string& path) {
    File f = File::open_read(path);
    rehearse_in_child(path, [&] { const Reader rehearsal(path); });
    return f;
}

// Object access. `where` strings in errors are HDF5 paths such as "/layers/3/q".
bool link_exists(hid_t loc, const std::string& path);
Handle open_group(const File& f, const std::string& path);
Handle open_dataset(const File& f, const std::string& path);
Handle create_group(hid_t loc, const std::string& name);
std::vector<std::string> list_members(const File& f, const std::string& group_path);
bool is_group(hid_t loc, const std::string& path);

// Attributes. obj_path is used only for error messages.
bool has_attr(hid_t obj, const std::string& name);
TypeClass attr_type(hid_t obj, const std::string& name);
// The class of a type as the readers accept it: integer and floating only where the fields fit
// the size (and floats are IEEE-like), string only for C's one-byte strings; other for the rest.
TypeClass type_class(hid_t type);
std::string read_string_attr(const File& f, hid_t obj, const std::string& obj_path, const std::string& name);
std::vector<int64_t> read_int_attr(const File& f, hid_t obj, const std::string& obj_path, const std::string& name);
std::vector<double> read_float_attr(const File& f, hid_t obj, const std::string& obj_path, const std::string& name);
// A scalar integer attribute (an array of one is accepted).
int64_t read_scalar_int_attr(const File& f, hid_t obj, const std::string& obj_path, const std::string& name);
std::vector<std::string> read_string_array_attr(const File& f, hid_t obj, const std::string& obj_path,
                                                const std::string& name);
void write_attr(hid_t obj, const std::string& name, const std::string& value);
void write_attr(hid_t obj, const std::string& name, int64_t value);
void write_attr(hid_t obj, const std::string& name, double value);
void write_attr(hid_t obj, const std::string& name, const std::vector<int64_t>& values);
void write_attr(hid_t obj, const std::string& name, const std::vector<std::string>& values);

// Datasets.
DatasetInfo dataset_info(const File& f, hid_t dset, const std::string& path);
// Bytes the dataset's data takes in the file (0: never written, every read would give fill values).
uint64_t stored_bytes(hid_t dset);
// Reads the box [start, start+count) of an n-d float/integer dataset, converted to float.
void read_box(const File& f, hid_t dset, const std::string& path, const std::vector<int64_t>& start,
              const std::vector<int64_t>& count, float* out);
// The same converted to double: every value as the readers of doubles and int64 see it (up to
// 2^53), where float would round 1 + 1e-11 to 1 or 2^24 + 1 to 2^24.
void read_box(const File& f, hid_t dset, const std::string& path, const std::vector<int64_t>& start,
              const std::vector<int64_t>& count, double* out);
// The same box as stored when the dataset is IEEE half (raw bits, 2 bytes a value; returns true),
// else converted to float (4 bytes a value; returns false). out is resized, its capacity reused.
// Widening halves in the caller is what makes fp16 reads fast (HDF5's conversion is a soft path).
bool read_box_raw(const File& f, hid_t dset, const std::string& path, const std::vector<int64_t>& start,
                  const std::vector<int64_t>& count, std::vector<uint8_t>& out);
// Whether read_box_raw reads the dataset as IEEE halves; and the same read into memory the caller
// sized (2 bytes a value for halves, else 4).
bool stored_as_half(hid_t dset);
void read_box_raw(const File& f, hid_t dset, const std::string& path, const std::vector<int64_t>& start,
                  const std::vector<int64_t>& count, bool half, void* out);
// Reads a whole dataset converted to the requested native type.
std::vector<double> read_all_double(const File& f, const std::string& path);
std::vector<int64_t> read_all_int(const File& f, const std::string& path);
std::vector<uint8_t> read_all_u8(const File& f, const std::string& path);
std::vector<float> read_all_float(const File& f, const std::string& path);

enum class StoreType { f16, f32, f64, u8, i64 };
struct WriteOptions {
    std::vector<int64_t> chunk;  // empty: contiguous
    int deflate = 0;             // 0: none, 1..9: zlib level (with shuffle)
};
// Writes an n-d dataset from native memory (float/double/int64/uint8) into file type `store`;
// returns it open, for attributes.
Handle write_dataset(hid_t loc, const std::string& name, const std::vector<int64_t>& shape, StoreType store,
                   const void* data, StoreType memory, const WriteOptions& opt = {});
// Creates an empty chunked n-d dataset to be filled box by box with write_box (floats in memory).
Handle create_dataset(hid_t loc, const std::string& name, const std::vector<int64_t>& shape, StoreType store,
                      const WriteOptions& opt);
void write_box(hid_t dset, const std::vector<int64_t>& start, const std::vector<int64_t>& count, const float* data);
// The same from IEEE half bit patterns (float_to_half), stored without conversion into an f16 dataset.
void write_box(hid_t dset, const std::vector<int64_t>& start, const std::vector<int64_t>& count, const uint16_t* halves);

// The root attribute paro_format of a readable HDF5 file, or "" when it has none (or is not a
// string). Throws InputError when the file cannot be read as HDF5.
std::string format_name(const File& f);
// The same for a path; "" also when the file cannot be read.
std::string probe_format_name(const std::string& path);

// What to do with a file of format `found` where another is wanted, for the message refusing it
// (" (...)"; empty for most): a paro-partial is finished by paro merge.
std::string format_hint(const std::string& found);

// Checks the root attributes paro_format and paro_version (within [min_version, max_version]);
// throws InputError naming the one at fault. Returns the version.
int64_t expect_format(const File& f, const std::string& format, int64_t min_version, int64_t max_version);

// IEEE half precision as HDF5 (and h5py) describe it: a 16-bit float type.
hid_t half_type();

}  // namespace paro::h5
