#pragma once
// An output file written under a temporary name beside its final path and renamed over it by
// commit(), so a failed run never leaves a partial output. Destroyed uncommitted (an exception on
// the way), the temporary is removed; the temporaries of killed runs are removed by the next one.
#include <string>

namespace paro {

// The temporary name beside final_path for this process: .NAME.tmpPID in the same directory.
std::string temporary_path(const std::string& final_path);
// Removes the temporaries beside final_path (files or directories .NAME.tmpPID) whose process no
// longer runs: what a killed run left behind.
void remove_stale_temporaries(const std::string& final_path);
// Why nothing can be created in `dir` (an existing directory), e.g. "Permission denied"; empty when
// something can. (The temporary beside an output is created there.)
std::string why_unwritable(const std::string& dir);

class AtomicOutput {
public:
    // Throws what check() throws.
    explicit AtomicOutput(const std::string& path);
    // Throws ParameterError ("path", naming the file) when the parent directory does not exist or
    // cannot be written, or the path is a directory. Call it before long work so a typo fails at once.
    static void check(const std::string& path);
    AtomicOutput(const AtomicOutput&) = delete;
    AtomicOutput& operator=(const AtomicOutput&) = delete;
    ~AtomicOutput();

    const std::string& temp_path() const { return temp_; }
    const std::string& final_path() const { return final_; }
    // Flushes the temporary to disk, renames it over the final path (replacing a previous file) and
    // flushes the directory: after a crash, the old file or the complete new one.
    void commit();

private:
    std::string final_, temp_;
    bool committed_ = false;
};

}  // namespace paro
