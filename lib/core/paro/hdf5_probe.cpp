#include "paro/hdf5_probe.hpp"

#include <fmt/format.h>
#include <fcntl.h>
#include <hdf5.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "paro/error.hpp"
#include "paro/hdf5_header_check.hpp"
#include "paro/hdf5_io.hpp"

// A sanitizer's hook, present only in sanitized builds (weak: null otherwise).
extern "C" void __sanitizer_set_death_callback(void (*callback)()) __attribute__((weak));

namespace paro::h5 {

namespace {

// Large enough for any metadata paro reads; a larger claim is left to the readers to refuse.
constexpr hssize_t kMaxAttrPoints = 1 << 20;
constexpr size_t kMaxAttrBytes = size_t(64) << 20;
constexpr size_t kMaxVlenBytes = kMaxStringBytes;
constexpr uint64_t kUnreadable = ~uint64_t(0);  // a record's count: HDF5 failed to read the values
constexpr uint64_t kStringsRecord = 0, kNumbersRecord = 1, kOverrunRecord = 2;
constexpr hssize_t kMaxReportedNumbers = 4096;  // numeric attributes the walk reports (the readers' are small)
constexpr int kSanitizerExit = 86;                // the child's exit status after a sanitizer's report
constexpr int kIncompleteExit = 87;               // ... when part of the file could not be walked
constexpr int kOverrunExit = 88;                  // ... when an attribute message claims more than it holds

// The child's report to the parent, as records (kind, object, attribute, payload): every
// variable-length string attribute's values (count, then count x (length, bytes); longer values
// send their length only), and every small numeric attribute's values as the readers convert them
// (whether each read succeeded, count, the doubles, the int64s).
struct Report {
    int fd;
    const RawFile* raw;  // the file's bytes, for the attribute messages' bounds (null: not checked)
    std::string object;  // the object being walked ("" = the root group)
    bool incomplete = false;  // an object, link or attribute table could not be walked
    unsigned long fileno = 0;  // the walked file's number (HDF5's), whose objects `raw` holds
    void write_all(const void* p, size_t n) const {
        const char* c = static_cast<const char*>(p);
        while (n > 0) {
            const ssize_t w = ::write(fd, c, n);
            if (w <= 0) _exit(0);  // the parent is gone
            c += w;
            n -= size_t(w);
        }
    }
    void string(const std::string& s) const {
        const uint64_t n = s.size();
        write_all(&n, sizeof n);
        write_all(s.data(), s.size());
    }
    void header(uint64_t kind, const char* name) const {
        write_all(&kind, sizeof kind);
        string(object);
        string(name);
    }
    void values(const char* name, char* const* v, uint64_t n) const {
        header(kStringsRecord, name);
        write_all(&n, sizeof n);
        for (uint64_t i = 0; i < n && v; ++i) {
            const uint64_t len = v[i] ? std::strlen(v[i]) : 0;
            write_all(&len, sizeof len);
            if (len <= kMaxVlenBytes) write_all(v[i], len);
        }
    }
    void unreadable(const char* name) const { values(name, nullptr, kUnreadable); }
    void numbers(const char* name, const WalkedNumbers& w) const {
        header(kNumbersRecord, name);
        const uint64_t ok[2] = {w.doubles_read, w.ints_read}, n = w.doubles.size();
        write_all(ok, sizeof ok);
        write_all(&n, sizeof n);
        write_all(w.doubles.data(), n * sizeof(double));
        write_all(w.ints.data(), n * sizeof(int64_t));
    }
};

// H5Aiterate's state: the report, and the names seen (looked up again by name below).
struct AttributeWalk {
    const Report* report;
    std::vector<std::string> names;
};

herr_t read_attribute(hid_t obj, const char* name, const H5A_info_t*, void* walk) {
    static_cast<AttributeWalk*>(walk)->names.emplace_back(name);
    const Report* report = static_cast<AttributeWalk*>(walk)->report;
    const hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0) return 0;
    const hid_t type = H5Aget_type(a), space = H5Aget_space(a);
    const hssize_t n = space >= 0 ? H5Sget_simple_extent_npoints(space) : -1;
    if (type >= 0 && n >= 0 && n <= kMaxAttrPoints) {
        if (H5Tget_class(type) == H5T_STRING && H5Tis_variable_str(type) > 0) {
            const hid_t mem = H5Tcopy(H5T_C_S1);
            H5Tset_size(mem, H5T_VARIABLE);
            H5Tset_cset(mem, H5Tget_cset(type));  // else the read stops at the conversion, before the heap
            std::vector<char*> values(size_t(n) + 1, nullptr);
            if (H5Aread(a, mem, values.data()) >= 0) {
                report->values(name, values.data(), uint64_t(n));
#if H5_VERSION_GE(1, 12, 0)
                H5Treclaim(mem, space, H5P_DEFAULT, values.data());
#else
                H5Dvlen_reclaim(mem, space, H5P_DEFAULT, values.data());
#endif
            } else {
                report->unreadable(name);
            }
            H5Tclose(mem);
        } else {
            const size_t bytes = H5Tget_size(type) * size_t(n);
            if (bytes <= kMaxAttrBytes) {
                std::vector<char> buf(bytes + 16);
                H5Aread(a, type, buf.data());
            }
            // Converted only where the readers convert: a corrupt type's conversion reads past buffers.
            const TypeClass cls = type_class(type);
            if ((cls == TypeClass::integer || cls == TypeClass::floating) && n <= kMaxReportedNumbers) {
                WalkedNumbers w;
                w.doubles.resize(size_t(n));
                w.ints.resize(size_t(n));
                w.doubles_read = H5Aread(a, H5T_NATIVE_DOUBLE, w.doubles.data()) >= 0;
                w.ints_read = H5Aread(a, H5T_NATIVE_INT64, w.ints.data()) >= 0;
                report->numbers(name, w);
            }
        }
    }
    if (space >= 0) H5Sclose(space);
    if (type >= 0) H5Tclose(type);
    H5Aclose(a);
    return 0;
}

// The object's header address, and the number of the file that holds it (an external link leads
// to another file, whose addresses say nothing about this one's bytes); HADDR_UNDEF where they
// cannot be told.
haddr_t header_address(hid_t obj, unsigned long& fileno) {
#if H5_VERSION_GE(1, 12, 0)
    H5O_info2_t info;
    haddr_t addr = HADDR_UNDEF;
    if (H5Oget_info3(obj, &info, H5O_INFO_BASIC) < 0 || H5VLnative_token_to_addr(obj, info.token, &addr) < 0)
        return HADDR_UNDEF;
    fileno = info.fileno;
    return addr;
#else
    H5O_info_t info;
    if (H5Oget_info2(obj, &info, H5O_INFO_BASIC) < 0) return HADDR_UNDEF;
    fileno = info.fileno;
    return info.addr;
#endif
}

void walk_object(hid_t obj, Report& report) {
    // First the bounds libhdf5 1.10 does not check, before any attribute is decoded; the child
    // ends there (the parent turns the record into the error line).
    unsigned long fileno = 0;
    const haddr_t header = report.raw ? header_address(obj, fileno) : HADDR_UNDEF;
    if (header != HADDR_UNDEF && fileno == report.fileno) {
        if (const auto overrun = attribute_message_overrun(*report.raw, header)) {
            const std::string claims =
                overrun->claims == ~uint64_t(0) ? std::string("past 2^64") : fmt::to_string(overrun->claims);
            const std::string what =
                fmt::format("attribute '{}' of {}: its message holds {} bytes, its fields claim {}", overrun->name,
                            report.object.empty() ? "/" : report.object, overrun->holds, claims);
            report.header(kOverrunRecord, what.c_str());
            _exit(kOverrunExit);
        }
    }
    // The readers' first touch of an object's attributes is a lookup by name, which decodes the
    // attribute messages on another path than the iteration, and a message is decoded once (then
    // cached): so the walk looks up first, a name no file has taking that path over all of them
    // (corrupt headers that overflow there would pass an iteration-first walk and crash the reader;
    // the fuzzers found such files), then iterates, then looks up each name present.
    if (H5Aexists(obj, "paro: no such attribute") < 0) report.incomplete = true;
    hsize_t idx = 0;
    AttributeWalk walk{&report, {}};
    if (H5Aiterate2(obj, H5_INDEX_NAME, H5_ITER_NATIVE, &idx, read_attribute, &walk) < 0) report.incomplete = true;
    for (const std::string& name : walk.names)
        if (H5Aexists(obj, name.c_str()) < 0) report.incomplete = true;
}

void walk_dataset(hid_t d) {
    const hid_t type = H5Dget_type(d), space = H5Dget_space(d), dcpl = H5Dget_create_plist(d);
    if (space >= 0) H5Sget_simple_extent_npoints(space);
    if (type >= 0) H5Tget_size(type);
    H5Dget_storage_size(d);
    if (dcpl >= 0 && space >= 0 && H5Pget_layout(dcpl) == H5D_CHUNKED) {
        // The chunk index (a B-tree), where corrupted files also fail.
        hsize_t chunks = 0;
        if (H5Dget_num_chunks(d, space, &chunks) >= 0) {
            std::vector<hsize_t> offset(32);
            unsigned mask = 0;
            haddr_t addr = 0;
            hsize_t size = 0;
            for (hsize_t i : {hsize_t(0), chunks / 2, chunks - 1})
                if (i < chunks) H5Dget_chunk_info(d, space, i, offset.data(), &mask, &addr, &size);
        }
    }
    // One element through the type conversion the readers use (corrupted type fields crash there).
    if (type >= 0 && space >= 0 && H5Sget_simple_extent_npoints(space) > 0 && H5Tget_size(type) <= 64) {
        const H5T_class_t cls = H5Tget_class(type);
        if (cls == H5T_INTEGER || cls == H5T_FLOAT) {
            const int rank = H5Sget_simple_extent_ndims(space);
            if (rank >= 0 && rank <= 32) {
                std::vector<hsize_t> start(size_t(rank), 0), count(size_t(rank), 1);
                const hid_t file_sel = H5Scopy(space);
                const hsize_t one = 1;
                const hid_t mem_sel = H5Screate_simple(1, &one, nullptr);
                if (rank == 0 || H5Sselect_hyperslab(file_sel, H5S_SELECT_SET, start.data(), nullptr, count.data(),
                                                     nullptr) >= 0) {
                    double value[8];
                    for (const hid_t mem : {H5T_NATIVE_DOUBLE, H5T_NATIVE_FLOAT, H5T_NATIVE_INT64, H5T_NATIVE_UINT8})
                        H5Dread(d, mem, rank == 0 ? H5S_ALL : mem_sel, rank == 0 ? H5S_ALL : file_sel, H5P_DEFAULT,
                                value);
                }
                H5Sclose(mem_sel);
                H5Sclose(file_sel);
            }
        }
    }
    if (dcpl >= 0) H5Pclose(dcpl);
    if (space >= 0) H5Sclose(space);
    if (type >= 0) H5Tclose(type);
}

// H5Lvisit's callback; its info type differs between HDF5 1.10 and 1.12+, hence the template.
template <typename LinkInfo>
herr_t visit_link(hid_t group, const char* name, const LinkInfo*, void* report) {
    Report& r = *static_cast<Report*>(report);
    const hid_t obj = H5Oopen(group, name, H5P_DEFAULT);
    if (obj < 0) {
        r.incomplete = true;
        return 0;
    }
    r.object = name;
    walk_object(obj, r);
    if (H5Iget_type(obj) == H5I_DATASET) walk_dataset(obj);
    H5Oclose(obj);
    return 0;
}

// The child's whole job; its exit status is not used (errors are the readers' to report).
void walk_file(const char* path, int fd) {
    h5::silence();
    Report report{fd, nullptr, ""};
    const hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    const int bytes = ::open(path, O_RDONLY | O_CLOEXEC);
    RawFile raw;
    if (f >= 0 && bytes >= 0) {
        // Addresses count from the base address, which is the user block's size in files libhdf5 makes.
        const hid_t fcpl = H5Fget_create_plist(f);
        hsize_t base = 0;
        size_t sizeof_addr = 0, sizeof_size = 0;
        if (fcpl >= 0 && H5Pget_userblock(fcpl, &base) >= 0 && H5Pget_sizes(fcpl, &sizeof_addr, &sizeof_size) >= 0 &&
            sizeof_addr >= 1 && sizeof_addr <= 8 && sizeof_size >= 1 && sizeof_size <= 8) {
            raw.sizeof_addr = unsigned(sizeof_addr);
            raw.sizeof_size = unsigned(sizeof_size);
            raw.read = [bytes, base](uint64_t addr, void* out, size_t n) {
                const uint64_t at = addr + base;
                if (at < addr || at > uint64_t(std::numeric_limits<off_t>::max())) return false;
                size_t got = 0;
                while (got < n) {
                    const ssize_t r = ::pread(bytes, static_cast<char*>(out) + got, n - got, off_t(at + got));
                    if (r <= 0) return false;
                    got += size_t(r);
                }
                return true;
            };
            if (header_address(f, report.fileno) != HADDR_UNDEF) report.raw = &raw;
        }
        if (fcpl >= 0) H5Pclose(fcpl);
    }
    if (f >= 0) {
        walk_object(f, report);
        if (H5Lvisit(f, H5_INDEX_NAME, H5_ITER_NATIVE, visit_link, &report) < 0) report.incomplete = true;
        H5Fclose(f);
    }
    if (bytes >= 0) ::close(bytes);
    // Objects the walk could not reach are not known to be safe to read.
    if (report.incomplete) _exit(kIncompleteExit);
}

bool probe_enabled() {
    const char* e = std::getenv("PARO_HDF5_PROBE");
    return !(e && std::strcmp(e, "0") == 0);
}

// Fractions allowed: the fuzzers walk thousands of small files a second and give each 0.25 s.
double probe_seconds() {
    const char* e = std::getenv("PARO_HDF5_PROBE_SECONDS");
    if (!e || !*e) return 20.0;
    char* end = nullptr;
    const double s = std::strtod(e, &end);
    if (*end != '\0' || !(s > 0) || !std::isfinite(s))  // a typo must not silently mean the default
        throw ParameterError("PARO_HDF5_PROBE_SECONDS", fmt::format("'{}' is not a positive number of seconds", e));
    return s;
}

// Whether this process runs a single thread (Linux: /proc/self/status).
bool single_threaded() {
    std::ifstream status("/proc/self/status");
    std::string line;
    while (std::getline(status, line))
        if (line.rfind("Threads:", 0) == 0) return std::atoi(line.c_str() + 8) == 1;
    return false;
}

// The strings of a walked file, by (object, attribute).
using Strings = std::map<std::pair<std::string, std::string>, WalkedStrings>;
using Numbers = std::map<std::pair<std::string, std::string>, WalkedNumbers>;

// A file as it is now: its path and identity (device, inode, size, modification and change
// times), so a file rewritten in place (a pattern recalibrated while a process runs) is walked again.
std::string identity(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return path;
    return fmt::format("{}\n{}:{}:{}:{}.{}:{}.{}", path, st.st_dev, st.st_ino, st.st_size, st.st_mtim.tv_sec,
                       st.st_mtim.tv_nsec, st.st_ctim.tv_sec, st.st_ctim.tv_nsec);
}

// The last walks, newest last: a result (the strings, or why the walk failed) per file identity.
// Bounded, for processes that read many files (a fuzzer, a long-running service).
struct Walk {
    std::string key, failure;  // failure: the error line's text; empty when the walk succeeded
    Strings strings;
    Numbers numbers;
};
constexpr size_t kRememberedWalks = 64;
std::mutex walked_mutex;
std::vector<Walk> walks;

Walk* find_walk(const std::string& key) {
    for (Walk& w : walks)
        if (w.key == key) return &w;
    return nullptr;
}
void remember(Walk w) {
    if (walks.size() >= kRememberedWalks) walks.erase(walks.begin());
    walks.push_back(std::move(w));
}

std::string object_key(const std::string& object) {
    size_t b = 0;
    while (b < object.size() && object[b] == '/') ++b;
    return object.substr(b);
}

// Parses the child's records into w (a truncated tail, from a crashed child, is ignored).
void parse_report(const std::string& data, Walk& w) {
    size_t at = 0;
    auto u64 = [&](uint64_t& v) {
        if (data.size() - at < sizeof v) return false;
        std::memcpy(&v, data.data() + at, sizeof v);
        at += sizeof v;
        return true;
    };
    auto str = [&](std::string& s, uint64_t n) {
        if (data.size() - at < n) return false;
        s.assign(data, at, n);
        at += n;
        return true;
    };
    auto raw = [&](void* p, uint64_t n) {
        if (data.size() - at < n) return false;
        if (n > 0) std::memcpy(p, data.data() + at, n);  // an empty attribute's vectors have no storage
        at += n;
        return true;
    };
    for (;;) {
        uint64_t kind = 0, n = 0, count = 0;
        std::string object, name;
        if (!u64(kind) || !u64(n) || !str(object, n) || !u64(n) || !str(name, n)) break;
        if (kind == kOverrunRecord) {
            w.failure = fmt::format("corrupt HDF5 metadata: {} (libhdf5 1.10 would read the value from past the "
                                    "message; nothing was read)",
                                    name);
            break;
        }
        if (kind == kNumbersRecord) {
            WalkedNumbers v;
            uint64_t doubles_read = 0, ints_read = 0;
            if (!u64(doubles_read) || !u64(ints_read) || !u64(count) || count > uint64_t(kMaxReportedNumbers)) break;
            v.doubles_read = doubles_read != 0;
            v.ints_read = ints_read != 0;
            v.doubles.resize(count);
            v.ints.resize(count);
            if (!raw(v.doubles.data(), count * sizeof(double)) || !raw(v.ints.data(), count * sizeof(int64_t))) break;
            w.numbers[{object_key(object), name}] = std::move(v);
            continue;
        }
        if (!u64(count)) break;
        WalkedStrings v;
        v.readable = count != kUnreadable;
        bool complete = true;
        for (uint64_t i = 0; v.readable && i < count && complete; ++i) {
            WalkedString e;
            complete = u64(e.length) && (e.length > kMaxVlenBytes || str(e.bytes, e.length));
            if (complete) v.values.push_back(std::move(e));
        }
        if (!complete) break;
        w.strings[{object_key(object), name}] = std::move(v);
    }
}

}  // namespace

namespace {

// How a child ended: its exit, what it wrote to the pipe, and whether the time limit killed it.
struct ChildRun {
    bool started = false;  // false: no pipe or fork to spare (the caller reads without the child)
    bool timed_out = false;
    int status = 0;
    std::string output;
};

// Runs work(fd) in a forked child, quiet, whose crash kills only itself, collecting what it writes
// to fd until it exits or `limit` seconds pass (then it is killed).
ChildRun run_in_child(const std::function<void(int)>& work, double limit) {
    ChildRun run;
    int fds[2];
    if (pipe(fds) != 0) return run;
    std::fflush(nullptr);  // nothing buffered is written twice
    const pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return run;
    }
    if (pid == 0) {
        close(fds[0]);
        // Quiet, and a crash kills the child: handlers inherited from the parent (a test framework's,
        // a sanitizer's) would report it and exit normally instead (the parent says what happened).
        for (const int sig : {SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL}) std::signal(sig, SIG_DFL);
        // Likewise a memory error a sanitizer catches inside libhdf5 ends the child at once: a
        // fuzzer's death callback would otherwise save the input as a finding of its own.
        if (__sanitizer_set_death_callback) __sanitizer_set_death_callback([] { _exit(kSanitizerExit); });
        const rlimit no_core{0, 0};  // an expected crash writes no core file
        setrlimit(RLIMIT_CORE, &no_core);
        if (!std::freopen("/dev/null", "w", stdout) || !std::freopen("/dev/null", "w", stderr)) _exit(3);
        work(fds[1]);
        _exit(0);
    }
    run.started = true;
    close(fds[1]);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(limit);
    char buf[65536];
    bool eof = false;
    for (;;) {
        // Wake on the child's output or end, or at the deadline: no fixed tick (the fuzzers walk
        // hundreds of files a second, and a tick per file would be most of their time).
        const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (!eof) {
            pollfd p{fds[0], POLLIN, 0};
            if (poll(&p, 1, int(std::max<long long>(1, left.count()))) > 0) {
                const ssize_t r = read(fds[0], buf, sizeof buf);
                if (r > 0) run.output.append(buf, size_t(r));
                else eof = true;
            }
        } else {
            std::this_thread::sleep_for(std::chrono::microseconds(200));  // the child's exit, after its output
        }
        const pid_t r = waitpid(pid, &run.status, WNOHANG);
        if (r == pid && eof) break;
        if (r == pid) eof = true;  // exited; what it wrote is read below
        if (r < 0) break;
        if (std::chrono::steady_clock::now() >= deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &run.status, 0);
            run.timed_out = true;
            break;
        }
    }
    for (ssize_t r; !run.timed_out && (r = read(fds[0], buf, sizeof buf)) > 0;) run.output.append(buf, size_t(r));
    close(fds[0]);
    return run;
}

// The error line for a child that did not exit 0 (empty when it did).
std::string child_failure(const ChildRun& run, double limit) {
    if (run.timed_out)
        return fmt::format("HDF5 metadata could not be read within {:g} s (corrupt file: the library loops on it; "
                           "limit: PARO_HDF5_PROBE_SECONDS)",
                           limit);
    const int status = run.status;
    if (WIFEXITED(status) && WEXITSTATUS(status) == kOverrunExit)  // parse_report says which attribute
        return "corrupt HDF5 metadata: an attribute message claims more bytes than it holds (nothing was read)";
    if (WIFEXITED(status) && WEXITSTATUS(status) == kIncompleteExit)
        return "corrupt HDF5 metadata: some of its objects, links or attributes cannot be listed or opened "
               "(nothing was read)";
    if (WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) != 0)) {
        const std::string how = WIFSIGNALED(status)                    ? std::string(strsignal(WTERMSIG(status)))
                                : WEXITSTATUS(status) == kSanitizerExit ? std::string("a memory error")
                                                                        : fmt::format("exit status {}", WEXITSTATUS(status));
        return fmt::format("corrupt HDF5 metadata: the HDF5 library crashed reading it ({}, in a child process; "
                           "nothing was read)",
                           how);
    }
    return "";
}

bool rehearsing = false;  // in a rehearsal's child: the reader runs for real there

}  // namespace

void probe_in_child(const std::string& path) {
    std::lock_guard<std::mutex> lock(walked_mutex);
    const std::string key = identity(path);
    if (const Walk* w = find_walk(key)) {
        if (!w->failure.empty()) throw InputError(path, "", w->failure);  // the same file fails at once
        return;
    }
    if (!probe_enabled() || !single_threaded()) return;
    const double limit = probe_seconds();
    const ChildRun run = run_in_child([&](int fd) { walk_file(path.c_str(), fd); }, limit);
    if (!run.started) return;  // read without the walk
    Walk walk{key, child_failure(run, limit), {}, {}};
    const bool overrun = !run.timed_out && WIFEXITED(run.status) && WEXITSTATUS(run.status) == kOverrunExit;
    if (walk.failure.empty() || overrun) parse_report(run.output, walk);
    const std::string failure = walk.failure;
    remember(std::move(walk));
    if (!failure.empty()) throw InputError(path, "", failure);
}

void rehearse_in_child(const std::string& path, const std::function<void()>& read) {
    if (rehearsing || !probe_enabled() || !single_threaded()) return;
    const double limit = probe_seconds();
    const ChildRun run = run_in_child(
        [&](int) {
            rehearsing = true;
            try {
                read();
            } catch (...) {  // the parent's read throws the same, with its message
            }
        },
        limit);
    const std::string failure = run.started ? child_failure(run, limit) : "";
    if (!failure.empty()) throw InputError(path, "", failure);
}

std::optional<WalkedStrings> walked_strings(const std::string& path, const std::string& object,
                                            const std::string& name) {
    std::lock_guard<std::mutex> lock(walked_mutex);
    const Walk* w = find_walk(identity(path));
    if (!w || !w->failure.empty()) return std::nullopt;
    const auto it = w->strings.find({object_key(object), name});
    if (it == w->strings.end()) return WalkedStrings{false, {}};  // the walk did not get there
    return it->second;
}

std::optional<WalkedNumbers> walked_numbers(const std::string& path, const std::string& object,
                                            const std::string& name) {
    std::lock_guard<std::mutex> lock(walked_mutex);
    const Walk* w = find_walk(identity(path));
    if (!w || !w->failure.empty()) return std::nullopt;
    const auto it = w->numbers.find({object_key(object), name});
    if (it == w->numbers.end()) return std::nullopt;
    return it->second;
}

}  // namespace paro::h5

