#include "paro/hdf5_io.hpp"

#include <fmt/format.h>

#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <thread>

#include "paro/error.hpp"
#include "paro/half.hpp"
#include "paro/hdf5_probe.hpp"

namespace paro::h5 {

namespace {
struct SilenceOnce {
    SilenceOnce() { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); }
};
}  // namespace

void silence() { thread_local SilenceOnce once; }


namespace {

// HDF5 prints its whole error stack to stderr by default; paro reports one line instead. The
// setting is per thread in a thread-safe libhdf5 (workers write checkpoints and statistics).

std::string attr_where(const std::string& obj_path, const std::string& name) {
    return obj_path.empty() || obj_path == "/" ? "attribute " + name : obj_path + " attribute " + name;
}

void check(herr_t status, const File& f, const std::string& where, const char* what) {
    if (status < 0) throw InputError(f.path(), where, what);
}

Handle open_attr(const File& f, hid_t obj, const std::string& obj_path, const std::string& name) {
    silence();
    if (H5Aexists(obj, name.c_str()) <= 0) throw InputError(f.path(), attr_where(obj_path, name), "missing");
    Handle a(H5Aopen(obj, name.c_str(), H5P_DEFAULT));
    if (!a) throw InputError(f.path(), "attribute " + name, "cannot be opened");
    return a;
}


// A string the probe's child read, refused past kMaxStringBytes.
std::string checked_string(const File& f, const std::string& where, const WalkedString& v) {
    if (v.length > kMaxStringBytes)
        throw InputError(f.path(), where, fmt::format("is a string of {} bytes (at most {})", v.length, kMaxStringBytes));
    return v.bytes;
}

// Whether a numeric type's fields fit inside its size: a corrupted file can declare, say, a 1-byte
// integer of 200 bits, and libhdf5's conversion then reads past its buffers. Such types classify
// as `other`, which every reader refuses before any read.
bool numeric_fields_fit(hid_t type, H5T_class_t cls) {
    const size_t size = H5Tget_size(type), bits = 8 * size;
    const size_t precision = H5Tget_precision(type);
    const int offset = H5Tget_offset(type);
    if (size == 0 || size > 16 || precision == 0 || offset < 0 || size_t(offset) + precision > bits) return false;
    if (cls == H5T_FLOAT) {
        size_t spos = 0, epos = 0, esize = 0, mpos = 0, msize = 0;
        if (H5Tget_fields(type, &spos, &epos, &esize, &mpos, &msize) < 0) return false;
        if (spos >= bits || esize == 0 || esize > 32 || epos + esize > bits || mpos + msize > bits) return false;
        // IEEE's exponent bias and implied leading bit (every writer's, bfloat16's too): another
        // bias converts every value into a different number without any error.
        if (H5Tget_ebias(type) != (size_t(1) << (esize - 1)) - 1 || H5Tget_norm(type) != H5T_NORM_IMPLIED) return false;
    }
    return true;
}

// Whether a string type is C's one-byte character string, as every HDF5 writer makes it, apart from
// its size, character set and padding. A corrupted file can change the character type underneath
// (h5dump: "unknown_one_character_type"); libhdf5 then converts its bytes into other text.
bool plain_string(hid_t type) {
    const hid_t plain = H5Tcopy(H5T_C_S1);
    const bool same = plain >= 0 && H5Tset_size(plain, H5Tis_variable_str(type) > 0 ? H5T_VARIABLE : H5Tget_size(type)) >= 0 &&
                      H5Tset_cset(plain, H5Tget_cset(type)) >= 0 && H5Tset_strpad(plain, H5Tget_strpad(type)) >= 0 &&
                      H5Tequal(plain, type) > 0;
    if (plain >= 0) H5Tclose(plain);
    return same;
}

TypeClass classify(hid_t type) {
    const H5T_class_t cls = H5Tget_class(type);
    switch (cls) {
        case H5T_INTEGER: return numeric_fields_fit(type, cls) ? TypeClass::integer : TypeClass::other;
        case H5T_FLOAT: return numeric_fields_fit(type, cls) ? TypeClass::floating : TypeClass::other;
        case H5T_STRING: return plain_string(type) ? TypeClass::string : TypeClass::other;
        default: return TypeClass::other;
    }
}

// Values an attribute may hold: attributes are metadata (HDF5 keeps small ones in the object
// header); a larger claim comes from a corrupted or hostile file.
constexpr int64_t kMaxAttrValues = int64_t(1) << 20;

int64_t attr_values(const File& f, hid_t space, const std::string& where) {
    const int64_t n = static_cast<int64_t>(H5Sget_simple_extent_npoints(space));
    if (n < 0) throw InputError(f.path(), where, "has an unreadable shape");
    if (n > kMaxAttrValues)
        throw InputError(f.path(), where, fmt::format("holds {} values (at most {})", n, kMaxAttrValues));
    return n;
}

int64_t npoints(hid_t space) { return static_cast<int64_t>(H5Sget_simple_extent_npoints(space)); }

hid_t file_type(StoreType t) {
    switch (t) {
        case StoreType::f16: return half_type();
        case StoreType::f32: return H5T_IEEE_F32LE;
        case StoreType::f64: return H5T_IEEE_F64LE;
        case StoreType::u8: return H5T_STD_U8LE;
        case StoreType::i64: return H5T_STD_I64LE;
    }
    return H5T_IEEE_F32LE;
}

hid_t memory_type(StoreType t) {
    switch (t) {
        case StoreType::f16: PARO_ASSERT(!"f16 is not a memory type");
        case StoreType::f32: return H5T_NATIVE_FLOAT;
        case StoreType::f64: return H5T_NATIVE_DOUBLE;
        case StoreType::u8: return H5T_NATIVE_UINT8;
        case StoreType::i64: return H5T_NATIVE_INT64;
    }
    return H5T_NATIVE_FLOAT;
}

Handle make_space(const std::vector<int64_t>& shape) {
    std::vector<hsize_t> dims(shape.begin(), shape.end());
    return Handle(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr));
}

Handle make_dcpl(const WriteOptions& opt) {
    Handle dcpl(H5Pcreate(H5P_DATASET_CREATE));
    if (!opt.chunk.empty()) {
        std::vector<hsize_t> c(opt.chunk.begin(), opt.chunk.end());
        H5Pset_chunk(dcpl.get(), static_cast<int>(c.size()), c.data());
        if (opt.deflate > 0) {
            H5Pset_shuffle(dcpl.get());
            H5Pset_deflate(dcpl.get(), static_cast<unsigned>(opt.deflate));
        }
    }
    return dcpl;
}

// Before any read: numbers (libhdf5's conversion of a corrupt type overruns its buffers), stored
// with filters this libhdf5 can decode (else H5Dread fails as if the file were damaged).
void expect_readable(const File& f, hid_t dset, const std::string& path) {
    Handle type(H5Dget_type(dset));
    const TypeClass c = type ? classify(type.get()) : TypeClass::other;
    if (c != TypeClass::integer && c != TypeClass::floating)
        throw InputError(f.path(), path, "does not hold numbers of a readable type");
    Handle dcpl(H5Dget_create_plist(dset));
    const int filters = dcpl ? H5Pget_nfilters(dcpl.get()) : 0;
    for (int i = 0; i < filters; ++i) {
        unsigned flags = 0;
        size_t values = 0;
        char name[64] = {};
        const H5Z_filter_t id = H5Pget_filter2(dcpl.get(), static_cast<unsigned>(i), &flags, &values, nullptr,
                                               sizeof name, name, nullptr);
        if (id >= 0 && H5Zfilter_avail(id) <= 0)
            throw InputError(f.path(), path,
                             fmt::format("is compressed with HDF5 filter {} ('{}'), which this HDF5 library cannot "
                                         "decode; write it with gzip or without compression",
                                         static_cast<int>(id), printable(name)));
    }
}

template <typename T>
std::vector<T> read_all(const File& f, const std::string& path, hid_t mem_type) {
    Handle d = open_dataset(f, path);
    expect_readable(f, d.get(), path);
    Handle space(H5Dget_space(d.get()));
    std::vector<T> out(static_cast<size_t>(npoints(space.get())));
    if (!out.empty())
        check(H5Dread(d.get(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()), f, path,
              "cannot be read (corrupt or truncated file?)");
    return out;
}

}  // namespace

Handle& Handle::operator=(Handle&& o) noexcept {
    if (this != &o) {
        reset();
        id_ = o.id_;
        o.id_ = H5I_INVALID_HID;
    }
    return *this;
}

void Handle::reset() {
    if (id_ < 0) return;
    silence();  // a close that fails (after a failed write) must not print HDF5's stack either
    switch (H5Iget_type(id_)) {
        case H5I_FILE: H5Fclose(id_); break;
        case H5I_GROUP: H5Gclose(id_); break;
        case H5I_DATASET: H5Dclose(id_); break;
        case H5I_ATTR: H5Aclose(id_); break;
        case H5I_DATASPACE: H5Sclose(id_); break;
        case H5I_DATATYPE: H5Tclose(id_); break;
        case H5I_GENPROP_LST: H5Pclose(id_); break;
        default: break;
    }
    id_ = H5I_INVALID_HID;
}

File File::open_read(const std::string& path) {
    silence();
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) throw InputError(path, "", "no such file");
    if (std::filesystem::is_directory(path, ec)) throw InputError(path, "", "is a directory, not a file");
    // A FIFO or device would block or stream forever inside HDF5's signature probe.
    if (!std::filesystem::is_regular_file(path, ec)) throw InputError(path, "", "is not a regular file");
    if (::access(path.c_str(), R_OK) != 0) throw InputError(path, "", std::string("cannot be read (") + std::strerror(errno) + ")");
    const htri_t is_h5 = H5Fis_hdf5(path.c_str());
    if (is_h5 <= 0) throw InputError(path, "", "not an HDF5 file");
    probe_in_child(path);  // corrupted metadata that crashes or hangs libhdf5: refused here
    File f;
    f.path_ = path;
    f.handle_ = Handle(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
    if (!f.handle_) throw InputError(path, "", "cannot be opened as HDF5 (truncated or corrupt file?)");
    return f;
}

File File::create(const std::string& path) {
    silence();
    File f;
    f.path_ = path;
    f.handle_ = Handle(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT));
    if (!f.handle_) throw InputError(path, "", "cannot be created");
    return f;
}

void File::close() {
    if (!handle_) return;
    const bool flushed = H5Fflush(handle_.get(), H5F_SCOPE_LOCAL) >= 0;
    handle_.reset();
    if (!flushed) throw InputError(path_, "", "cannot be written completely (is the disk full?)");
}

bool link_exists(hid_t loc, const std::string& path) {
    silence();
    // Check each component: H5Lexists fails on a missing intermediate group.
    std::string prefix;
    size_t start = path.front() == '/' ? 1 : 0;
    if (start == 1) prefix = "/";
    while (start <= path.size()) {
        size_t end = path.find('/', start);
        if (end == std::string::npos) end = path.size();
        prefix += path.substr(start, end - start);
        if (H5Lexists(loc, prefix.c_str(), H5P_DEFAULT) <= 0) return false;
        if (end == path.size()) break;
        prefix += "/";
        start = end + 1;
    }
    return H5Oexists_by_name(loc, path.c_str(), H5P_DEFAULT) > 0;
}

bool is_group(hid_t loc, const std::string& path) {
    if (!link_exists(loc, path)) return false;
    H5O_info_t info;
    if (H5Oget_info_by_name(loc, path.c_str(), &info, H5P_DEFAULT) < 0) return false;
    return info.type == H5O_TYPE_GROUP;
}

Handle open_group(const File& f, const std::string& path) {
    if (!is_group(f.id(), path)) throw InputError(f.path(), path, "missing group");
    Handle g(H5Gopen2(f.id(), path.c_str(), H5P_DEFAULT));
    if (!g) throw InputError(f.path(), path, "cannot open group");
    return g;
}

Handle open_dataset(const File& f, const std::string& path) {
    if (!link_exists(f.id(), path)) throw InputError(f.path(), path, "missing dataset");
    Handle d(H5Dopen2(f.id(), path.c_str(), H5P_DEFAULT));
    if (!d) throw InputError(f.path(), path, "not a dataset or cannot be opened");
    // Compact and contiguous data hold the whole extent: less storage than the shape declares is
    // a corrupt layout message, which libhdf5 1.10 reads past (a heap overflow inside H5Dread).
    Handle dcpl(H5Dget_create_plist(d.get())), space(H5Dget_space(d.get())), type(H5Dget_type(d.get()));
    const H5D_layout_t layout = dcpl ? H5Pget_layout(dcpl.get()) : H5D_LAYOUT_ERROR;
    if (layout == H5D_VIRTUAL)  // its bytes are other files' (it would read as never written)
        throw InputError(f.path(), path,
                         "is a virtual dataset, whose data lives in other files: paro reads only what a file holds "
                         "(h5repack, or h5py's copy, stores the data in it)");
    if (layout == H5D_COMPACT || layout == H5D_CONTIGUOUS) {
        const uint64_t stored = stored_bytes(d.get());
        const hssize_t points = space ? H5Sget_simple_extent_npoints(space.get()) : -1;
        const size_t size = type ? H5Tget_size(type.get()) : 0;
        uint64_t declared = 0;
        if (points < 0 || size == 0 || __builtin_mul_overflow(static_cast<uint64_t>(points), size, &declared) ||
            ((layout == H5D_COMPACT || stored > 0) && stored < declared))
            throw InputError(f.path(), path,
                             fmt::format("declares {} bytes of data but stores {} (corrupt layout)", declared, stored));
    }
    return d;
}

namespace {
// A write that fails is the file system's doing (a full disk, an I/O error), not a broken
// invariant: one line naming the file and the object, and the caller's AtomicOutput removes it.
void check_written(bool ok, hid_t obj, const std::string& what) {
    if (ok) return;
    std::string file(256, '\0');
    const ssize_t n = H5Fget_name(obj, file.data(), file.size());
    file.resize(n > 0 ? std::min(static_cast<size_t>(n), file.size() - 1) : 0);
    throw InputError(file, what, "cannot be written (is the disk full?)");
}
}  // namespace

Handle create_group(hid_t loc, const std::string& name) {
    silence();
    Handle g(H5Gcreate2(loc, name.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    check_written(bool(g), loc, "group " + name);
    return g;
}

std::vector<std::string> list_members(const File& f, const std::string& group_path) {
    Handle g = open_group(f, group_path);
    H5G_info_t info;
    check(H5Gget_info(g.get(), &info), f, group_path, "cannot list group");
    std::vector<std::string> names;
    for (hsize_t i = 0; i < info.nlinks; ++i) {
        ssize_t len = H5Lget_name_by_idx(g.get(), ".", H5_INDEX_NAME, H5_ITER_INC, i, nullptr, 0, H5P_DEFAULT);
        if (len < 0) throw InputError(f.path(), group_path, "cannot list group");
        std::string name(static_cast<size_t>(len), '\0');
        H5Lget_name_by_idx(g.get(), ".", H5_INDEX_NAME, H5_ITER_INC, i, name.data(), len + 1, H5P_DEFAULT);
        names.push_back(name);
    }
    return names;
}

bool has_attr(hid_t obj, const std::string& name) {
    silence();
    const htri_t exists = H5Aexists(obj, name.c_str());
    if (exists < 0) {  // a corrupt attribute table: not the same as no such attribute
        char file[4096] = "", object[1024] = "";
        H5Fget_name(obj, file, sizeof file);
        H5Iget_name(obj, object, sizeof object);
        const std::string where = std::strcmp(object, "/") == 0 || !object[0] ? "" : std::string(object) + " ";
        throw InputError(file, where + "attribute " + name, "cannot be read (corrupt attribute table)");
    }
    return exists > 0;
}

TypeClass type_class(hid_t type) { return classify(type); }

TypeClass attr_type(hid_t obj, const std::string& name) {
    Handle a(H5Aopen(obj, name.c_str(), H5P_DEFAULT));
    Handle t(H5Aget_type(a.get()));
    return classify(t.get());
}

std::string read_string_attr(const File& f, hid_t obj, const std::string& obj_path, const std::string& name) {
    Handle a = open_attr(f, obj, obj_path, name);
    const std::string where = attr_where(obj_path, name);
    Handle ftype(H5Aget_type(a.get()));
    if (classify(ftype.get()) != TypeClass::string) throw InputError(f.path(), where, "must be a string");
    Handle space(H5Aget_space(a.get()));
    if (npoints(space.get()) != 1) throw InputError(f.path(), where, "must be a single string");
    if (H5Tis_variable_str(ftype.get()) > 0) {
        if (const auto w = walked_strings(f.path(), obj_path, name)) {  // read safely by the probe's child
            if (!w->readable || w->values.size() != 1) throw InputError(f.path(), where, "cannot be read");
            return checked_string(f, where, w->values[0]);
        }
        Handle mtype(H5Tcopy(H5T_C_S1));
        H5Tset_size(mtype.get(), H5T_VARIABLE);
        H5Tset_cset(mtype.get(), H5Tget_cset(ftype.get()));
        char* s = nullptr;
        check(H5Aread(a.get(), mtype.get(), &s), f, where, "cannot be read");
        std::string out = s ? s : "";
        H5free_memory(s);
        if (out.size() > kMaxStringBytes)
            throw InputError(f.path(), where,
                             fmt::format("is a string of {} bytes (at most {})", out.size(), kMaxStringBytes));
        return out;
    }
    const size_t size = H5Tget_size(ftype.get());
    if (size > kMaxStringBytes)
        throw InputError(f.path(), where, fmt::format("is a string of {} bytes (at most {})", size, kMaxStringBytes));
    // One byte more than stored: a null-terminated memory type of the stored size would drop the
    // last character of a full-length null-padded string (h5py's np.bytes_ attributes).
    std::string buf(size + 1, '\0');
    Handle mtype(H5Tcopy(H5T_C_S1));
    H5Tset_size(mtype.get(), size + 1);
    check(H5Aread(a.get(), mtype.get(), buf.data()), f, where, "cannot be read");
    buf.resize(buf.find('\0'));
    return buf;
}

std::vector<std::string> read_string_array_attr(const File& f, hid_t obj, const std::string& obj_path,
                                                const std::string& name) {
    Handle a = open_attr(f, obj, obj_path, name);
    const std::string where = attr_where(obj_path, name);
    Handle ftype(H5Aget_type(a.get()));
    if (classify(ftype.get()) != TypeClass::string || H5Tis_variable_str(ftype.get()) <= 0)
        throw InputError(f.path(), where, "must be an array of variable-length strings");
    Handle space(H5Aget_space(a.get()));
    const int64_t n = attr_values(f, space.get(), where);
    if (const auto w = walked_strings(f.path(), obj_path, name)) {  // read safely by the probe's child
        if (!w->readable || int64_t(w->values.size()) != n) throw InputError(f.path(), where, "cannot be read");
        std::vector<std::string> out;
        for (const WalkedString& v : w->values) out.push_back(checked_string(f, where, v));
        return out;
    }
    std::vector<char*> ptrs(static_cast<size_t>(n), nullptr);
    Handle mtype(H5Tcopy(H5T_C_S1));
    H5Tset_size(mtype.get(), H5T_VARIABLE);
    H5Tset_cset(mtype.get(), H5Tget_cset(ftype.get()));
    check(H5Aread(a.get(), mtype.get(), ptrs.data()), f, where, "cannot be read");
    std::vector<std::string> out;
    for (char* p : ptrs) {
        out.emplace_back(p ? p : "");
        H5free_memory(p);
    }
    return out;
}

namespace {
// The read against the child's of the same attribute (walked_numbers): libhdf5 reading past a
// corrupt attribute message returns what lies there, which is not the same in the two processes.
template <typename T>
void same_as_walked(const File& f, const std::string& obj_path, const std::string& name, const std::vector<T>& read) {
    const auto w = walked_numbers(f.path(), obj_path, name);
    if (!w) return;
    bool same;
    if constexpr (std::is_same_v<T, double>)
        same = w->doubles_read && w->doubles.size() == read.size() &&
               std::memcmp(w->doubles.data(), read.data(), read.size() * sizeof(T)) == 0;
    else
        same = w->ints_read && w->ints == read;
    if (!same)
        throw CorruptMetadataError(f.path(), attr_where(obj_path, name),
                                   "reads differently each time (a corrupt attribute message the HDF5 library reads past)");
}
}  // namespace

std::vector<int64_t> read_int_attr(const File& f, hid_t obj, const std::string& obj_path, const std::string& name) {
    Handle a = open_attr(f, obj, obj_path, name);
    Handle ftype(H5Aget_type(a.get()));
    if (classify(ftype.get()) != TypeClass::integer)
        throw InputError(f.path(), attr_where(obj_path, name), "must be an integer");
    Handle space(H5Aget_space(a.get()));
    std::vector<int64_t> out(static_cast<size_t>(attr_values(f, space.get(), attr_where(obj_path, name))));
    check(H5Aread(a.get(), H5T_NATIVE_INT64, out.data()), f, attr_where(obj_path, name), "cannot be read");
    same_as_walked(f, obj_path, name, out);
    return out;
}

int64_t read_scalar_int_attr(const File& f, hid_t obj, const std::string& obj_path, const std::string& name) {
    const auto v = read_int_attr(f, obj, obj_path, name);
    if (v.size() != 1) throw InputError(f.path(), attr_where(obj_path, name), "must be a single integer");
    return v[0];
}

std::vector<double> read_float_attr(const File& f, hid_t obj, const std::string& obj_path, const std::string& name) {
    Handle a = open_attr(f, obj, obj_path, name);
    Handle ftype(H5Aget_type(a.get()));
    const TypeClass c = classify(ftype.get());
    if (c != TypeClass::integer && c != TypeClass::floating)
        throw InputError(f.path(), attr_where(obj_path, name), "must be a number");
    Handle space(H5Aget_space(a.get()));
    std::vector<double> out(static_cast<size_t>(attr_values(f, space.get(), attr_where(obj_path, name))));
    check(H5Aread(a.get(), H5T_NATIVE_DOUBLE, out.data()), f, attr_where(obj_path, name), "cannot be read");
    same_as_walked(f, obj_path, name, out);
    return out;
}

namespace {
void write_attr_raw(hid_t obj, const std::string& name, hid_t ftype, hid_t mtype, hid_t space, const void* data) {
    if (H5Aexists(obj, name.c_str()) > 0) H5Adelete(obj, name.c_str());
    Handle a(H5Acreate2(obj, name.c_str(), ftype, space, H5P_DEFAULT, H5P_DEFAULT));
    check_written(a && H5Awrite(a.get(), mtype, data) >= 0, obj, "attribute " + name);
}
Handle vlen_utf8() {
    Handle t(H5Tcopy(H5T_C_S1));
    H5Tset_size(t.get(), H5T_VARIABLE);
    H5Tset_cset(t.get(), H5T_CSET_UTF8);
    return t;
}
}  // namespace

void write_attr(hid_t obj, const std::string& name, const std::string& value) {
    Handle t = vlen_utf8();
    Handle space(H5Screate(H5S_SCALAR));
    const char* p = value.c_str();
    write_attr_raw(obj, name, t.get(), t.get(), space.get(), &p);
}

void write_attr(hid_t obj, const std::string& name, int64_t value) {
    Handle space(H5Screate(H5S_SCALAR));
    write_attr_raw(obj, name, H5T_STD_I64LE, H5T_NATIVE_INT64, space.get(), &value);
}

void write_attr(hid_t obj, const std::string& name, double value) {
    Handle space(H5Screate(H5S_SCALAR));
    write_attr_raw(obj, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, space.get(), &value);
}

void write_attr(hid_t obj, const std::string& name, const std::vector<int64_t>& values) {
    Handle space = make_space({static_cast<int64_t>(values.size())});
    write_attr_raw(obj, name, H5T_STD_I64LE, H5T_NATIVE_INT64, space.get(), values.data());
}

void write_attr(hid_t obj, const std::string& name, const std::vector<std::string>& values) {
    Handle t = vlen_utf8();
    Handle space = make_space({static_cast<int64_t>(values.size())});
    std::vector<const char*> ptrs;
    for (const auto& v : values) ptrs.push_back(v.c_str());
    write_attr_raw(obj, name, t.get(), t.get(), space.get(), ptrs.data());
}

DatasetInfo dataset_info(const File& f, hid_t dset, const std::string& path) {
    DatasetInfo info;
    Handle space(H5Dget_space(dset));
    const int rank = H5Sget_simple_extent_ndims(space.get());
    if (rank < 0) throw InputError(f.path(), path, "has no simple shape");
    std::vector<hsize_t> dims(static_cast<size_t>(rank));
    H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
    info.shape.assign(dims.begin(), dims.end());
    Handle t(H5Dget_type(dset));
    info.type = classify(t.get());
    info.type_size = H5Tget_size(t.get());
    return info;
}

namespace {
// The box [start, start + count) of a numeric dataset read into `out` as `memory_type`.
void read_box_as(const File& f, hid_t dset, const std::string& path, const std::vector<int64_t>& start,
                 const std::vector<int64_t>& count, hid_t memory_type, void* out) {
    expect_readable(f, dset, path);
    Handle fspace(H5Dget_space(dset));
    std::vector<hsize_t> s(start.begin(), start.end()), c(count.begin(), count.end());
    check(H5Sselect_hyperslab(fspace.get(), H5S_SELECT_SET, s.data(), nullptr, c.data(), nullptr), f, path,
          "selection out of range");
    Handle mspace = make_space(count);
    check(H5Dread(dset, memory_type, mspace.get(), fspace.get(), H5P_DEFAULT, out), f, path,
          "cannot be read (corrupt or truncated file?)");
}

}  // namespace

bool stored_as_half(hid_t dset) {
    silence();
    Handle ftype(H5Dget_type(dset));
    return H5Tequal(ftype.get(), half_type()) > 0;
}

void read_box_raw(const File& f, hid_t dset, const std::string& path, const std::vector<int64_t>& start,
                  const std::vector<int64_t>& count, bool half, void* out) {
    silence();
    read_box_as(f, dset, path, start, count, half ? half_type() : H5T_NATIVE_FLOAT, out);
}

bool read_box_raw(const File& f, hid_t dset, const std::string& path, const std::vector<int64_t>& start,
                  const std::vector<int64_t>& count, std::vector<uint8_t>& out) {
    size_t n = 1;
    for (int64_t x : count) n *= static_cast<size_t>(x);
    const bool half = stored_as_half(dset);
    out.resize(n * (half ? sizeof(uint16_t) : sizeof(float)));
    read_box_raw(f, dset, path, start, count, half, out.data());
    return half;
}

void read_box(const File& f, hid_t dset, const std::string& path, const std::vector<int64_t>& start,
              const std::vector<int64_t>& count, float* out) {
    std::vector<uint8_t> raw;
    if (!read_box_raw(f, dset, path, start, count, raw)) {
        std::memcpy(out, raw.data(), raw.size());
        return;
    }
    widen_halves(reinterpret_cast<const uint16_t*>(raw.data()), out, raw.size() / 2);
}

void read_box(const File& f, hid_t dset, const std::string& path, const std::vector<int64_t>& start,
              const std::vector<int64_t>& count, double* out) {
    if (!stored_as_half(dset)) return read_box_as(f, dset, path, start, count, H5T_NATIVE_DOUBLE, out);
    std::vector<uint8_t> raw;  // halves widened here: HDF5's own half conversion is slow
    read_box_raw(f, dset, path, start, count, raw);
    const auto* bits = reinterpret_cast<const uint16_t*>(raw.data());
    std::transform(bits, bits + raw.size() / 2, out, [](uint16_t h) { return double(half_to_float(h)); });
}

std::vector<double> read_all_double(const File& f, const std::string& path) {
    return read_all<double>(f, path, H5T_NATIVE_DOUBLE);
}
uint64_t stored_bytes(hid_t dset) { return static_cast<uint64_t>(H5Dget_storage_size(dset)); }

std::vector<int64_t> read_all_int(const File& f, const std::string& path) {
    return read_all<int64_t>(f, path, H5T_NATIVE_INT64);
}
std::vector<uint8_t> read_all_u8(const File& f, const std::string& path) {
    return read_all<uint8_t>(f, path, H5T_NATIVE_UINT8);
}
std::vector<float> read_all_float(const File& f, const std::string& path) {
    return read_all<float>(f, path, H5T_NATIVE_FLOAT);
}

Handle create_dataset(hid_t loc, const std::string& name, const std::vector<int64_t>& shape, StoreType store,
                      const WriteOptions& opt) {
    silence();
    Handle space = make_space(shape);
    Handle dcpl = make_dcpl(opt);
    Handle d(H5Dcreate2(loc, name.c_str(), file_type(store), space.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT));
    check_written(bool(d), loc, "dataset " + name);
    return d;
}

namespace {
// Bytes per chunk when each chunk of shape is one contiguous run of the row-major data (chunk
// dims 1 up to some axis, whole extents after it), else 0.
size_t contiguous_chunk_bytes(const std::vector<int64_t>& shape, const std::vector<int64_t>& chunk) {
    if (chunk.size() != shape.size()) return 0;
    size_t k = chunk.size(), bytes = 1;
    while (k > 0 && chunk[k - 1] == shape[k - 1]) bytes *= static_cast<size_t>(shape[--k]);
    for (size_t i = 0; i < k; ++i)
        if (chunk[i] != 1) return 0;
    return bytes;
}

// Deflated byte datasets (the pattern's masks): HDF5 compresses chunk after chunk on one core;
// here the chunks are compressed on all cores and written as they are (H5Dwrite_chunk). With one
// byte per value the shuffle filter is the identity, so a plain zlib stream is the stored chunk.
bool write_deflated_bytes(hid_t dset, const std::vector<int64_t>& shape, const std::vector<int64_t>& chunk,
                          const uint8_t* data, int level) {
    const size_t chunk_bytes = contiguous_chunk_bytes(shape, chunk);
    if (chunk_bytes == 0) return false;
    size_t chunks = 1;
    for (int64_t x : shape) chunks *= static_cast<size_t>(x);
    chunks /= chunk_bytes;
    std::vector<std::vector<uint8_t>> packed(chunks);
    std::vector<int> status(chunks, Z_OK);
    const size_t workers = std::max<size_t>(1, std::min<size_t>(chunks, std::thread::hardware_concurrency()));
    std::atomic<size_t> next{0};
    auto work = [&] {
        for (size_t c; (c = next.fetch_add(1)) < chunks;) {
            uLongf out = compressBound(static_cast<uLong>(chunk_bytes));
            packed[c].resize(out);
            status[c] = compress2(packed[c].data(), &out, data + c * chunk_bytes, static_cast<uLong>(chunk_bytes), level);
            packed[c].resize(out);
        }
    };
    std::vector<std::thread> pool;
    for (size_t w = 1; w < workers; ++w) pool.emplace_back(work);
    work();
    for (std::thread& t : pool) t.join();
    std::vector<hsize_t> offset(shape.size(), 0);
    for (size_t c = 0; c < chunks; ++c) {
        PARO_ASSERT(status[c] == Z_OK);
        // The chunk's first element, from its index over the leading (chunk dim 1) axes.
        size_t rest = c;
        for (size_t i = shape.size(); i-- > 0;) {
            if (chunk[i] != 1 || shape[i] == 1) continue;
            offset[i] = rest % static_cast<size_t>(shape[i]);
            rest /= static_cast<size_t>(shape[i]);
        }
        check_written(H5Dwrite_chunk(dset, H5P_DEFAULT, 0, offset.data(), packed[c].size(), packed[c].data()) >= 0,
                      dset, "a dataset chunk");
    }
    return true;
}
}  // namespace

Handle write_dataset(hid_t loc, const std::string& name, const std::vector<int64_t>& shape, StoreType store,
                     const void* data, StoreType memory, const WriteOptions& opt) {
    Handle d = create_dataset(loc, name, shape, store, opt);
    int64_t n = 1;
    for (auto s : shape) n *= s;
    if (n == 0) return d;
    if (store == StoreType::u8 && memory == StoreType::u8 && opt.deflate > 0 &&
        write_deflated_bytes(d.get(), shape, opt.chunk, static_cast<const uint8_t*>(data), opt.deflate))
        return d;
    check_written(H5Dwrite(d.get(), memory_type(memory), H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0, loc, "dataset " + name);
    return d;
}

namespace {
void write_box_as(hid_t dset, const std::vector<int64_t>& start, const std::vector<int64_t>& count, hid_t memory,
                  const void* data) {
    Handle fspace(H5Dget_space(dset));
    std::vector<hsize_t> s(start.begin(), start.end()), c(count.begin(), count.end());
    PARO_ASSERT(H5Sselect_hyperslab(fspace.get(), H5S_SELECT_SET, s.data(), nullptr, c.data(), nullptr) >= 0);
    Handle mspace = make_space(count);
    check_written(H5Dwrite(dset, memory, mspace.get(), fspace.get(), H5P_DEFAULT, data) >= 0, dset, "a dataset box");
}
}  // namespace

void write_box(hid_t dset, const std::vector<int64_t>& start, const std::vector<int64_t>& count, const float* data) {
    write_box_as(dset, start, count, H5T_NATIVE_FLOAT, data);
}

void write_box(hid_t dset, const std::vector<int64_t>& start, const std::vector<int64_t>& count,
               const uint16_t* halves) {
    write_box_as(dset, start, count, half_type(), halves);
}

std::string format_name(const File& f) {
    if (!has_attr(f.id(), "paro_format") || attr_type(f.id(), "paro_format") != TypeClass::string) return "";
    return read_string_attr(f, f.id(), "/", "paro_format");
}

std::string probe_format_name(const std::string& path) {
    try {
        return format_name(File::open_read(path));
    } catch (const InputError&) {
        return "";
    }
}

std::string format_hint(const std::string& found) {
    return found == "paro-partial" ? " (a part of a calibration, from --layers or a checkpoint: paro merge PART... -o "
                                     "PATTERN makes the pattern)"
                                   : "";
}

int64_t expect_format(const File& f, const std::string& format, int64_t min_version, int64_t max_version) {
    const std::string found = format_name(f);
    if (found.empty()) throw InputError(f.path(), "attribute paro_format", "missing (not a " + format + " file)");
    if (found != format)
        throw InputError(f.path(), "attribute paro_format",
                         fmt::format("is '{}', expected '{}'{}", found, format, format_hint(found)));
    const int64_t v = read_scalar_int_attr(f, f.id(), "/", "paro_version");
    if (v < min_version || v > max_version)
        throw InputError(f.path(), "attribute paro_version",
                         min_version == max_version
                             ? fmt::format("unknown version {} (this paro reads {})", v, max_version)
                             : fmt::format("unknown version {} (this paro reads {} to {})", v, min_version, max_version));
    return v;
}

hid_t half_type() {
    // Built once and kept for the life of the process, as h5py describes float16.
    static const hid_t t = [] {
        hid_t h = H5Tcopy(H5T_IEEE_F32LE);
        H5Tset_fields(h, 15, 10, 5, 0, 10);
        H5Tset_size(h, 2);
        H5Tset_ebias(h, 15);
        return h;
    }();
    return t;
}

}  // namespace paro::h5
