#pragma once
// libhdf5 (1.10, the version Debian ships) can crash or loop forever on corrupted metadata: a
// byte-flipped B-tree, heap or object header sends it into SIGSEGV, heap overflows or cycles,
// inside the library, before paro sees any value to check. No newer HDF5 is reachable here, and
// checksummed metadata would protect only the files paro writes, not the dumps users bring. So
// every file paro reads is first walked in a forked child process: every object, every
// attribute's value, every dataset's type, shape and chunk index, i.e. all the metadata the readers
// touch later, and one element of each numeric dataset through the readers' type conversion. A
// child killed by a signal, or not done within the time limit, becomes one InputError line naming
// the file; the parent never runs libhdf5 on metadata that crashed it. Variable-length strings,
// whose heap reads crash only when the overflow happens to leave mapped memory, travel from the
// child instead of being read again (walked_string).
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace paro::h5 {

// Longer string attributes are refused rather than echoed into error lines and reports.
constexpr size_t kMaxStringBytes = 16384;

// Walks `path` in a child process; throws InputError if the walk crashed or timed out. HDF5 errors
// (missing objects, wrong types) are not reported here: the readers name them precisely. Each path
// is walked once per process while it stays the same file (device, inode, size and times); the
// last 64 walks are remembered. Skipped where a fork is not safe or wanted: when the process already
// runs other threads (a lock held by one of them at the fork would stall the child), or
// PARO_HDF5_PROBE=0. The time limit is PARO_HDF5_PROBE_SECONDS (default 20: a sound file's
// walk takes milliseconds, a corrupted one that libhdf5 does not loop on, seconds at most).
void probe_in_child(const std::string& path);

// Runs `read` (a reader's whole pass over `path`) in a forked child first and throws InputError, as
// probe_in_child does, when it crashed or timed out there; the caller then reads for real. The
// child starts from this process's state and makes the same calls in the same order, so libhdf5
// meets there the metadata cache and (nearly) the heap the real read will: the walk alone misses
// crashes that depend on the order of the reads (one found by the pattern-reader fuzzer). For
// readers of small files or of metadata only: the read runs twice. Skipped where probe_in_child
// is, and inside the child itself.
void rehearse_in_child(const std::string& path, const std::function<void()>& read);

// A variable-length string attribute's values as the child read them: paro takes these from the
// child's report instead of running libhdf5's global-heap read (where corrupted files crash it) a
// second time. A value's `bytes` are empty when its `length` exceeds kMaxStringBytes. std::nullopt
// when the file was not walked (read it directly then). object: the HDF5 path ("/" = the root).
struct WalkedString {
    uint64_t length = 0;
    std::string bytes;
};
struct WalkedStrings {
    bool readable = true;  // false: HDF5 failed on it in the child, or the walk never got to it
    std::vector<WalkedString> values;
};
std::optional<WalkedStrings> walked_strings(const std::string& path, const std::string& object,
                                            const std::string& name);

// A small numeric attribute's values as the child read them (converted to double and to int64,
// as the readers convert them). libhdf5 1.10 decodes an attribute message whose field sizes are
// corrupt by reading past it, without an error: the value is whatever memory lies there, so it
// differs between the child and the parent (valgrind: uninitialised; found by the byte flips).
// The readers compare their read with the child's and refuse a value that is not the same twice.
// std::nullopt when the walk did not read it (not walked, or more than 4096 values).
struct WalkedNumbers {
    bool doubles_read = false, ints_read = false;
    std::vector<double> doubles;
    std::vector<int64_t> ints;
};
std::optional<WalkedNumbers> walked_numbers(const std::string& path, const std::string& object,
                                            const std::string& name);

}  // namespace paro::h5
