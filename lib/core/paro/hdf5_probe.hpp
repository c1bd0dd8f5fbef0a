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

}  // namespace paro::h5
