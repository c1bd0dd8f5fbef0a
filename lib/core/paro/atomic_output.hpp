#pragma once
// An output file written under a temporary name beside its final path and renamed over it by
// commit(), so a failed run never leaves a partial output. Destroyed uncommitted (an exception on
// the way), the temporary is removed.
#include <string>

namespace paro {

class AtomicOutput {
public:
    // Throws what check() throws.
    explicit AtomicOutput(const std::string& path);
    // Throws ParameterError ("path", naming the file) when the parent directory does not exist or
    // the path is a directory. Call it before long work so a typo fails at once.
    static void check(const std::string& path);
    AtomicOutput(const AtomicOutput&) = delete;
    AtomicOutput& operator=(const AtomicOutput&) = delete;
    ~AtomicOutput();

    const std::string& temp_path() const { return temp_; }
    const std::string& final_path() const { return final_; }
    // Renames the temporary over the final path (replacing a previous file).
    void commit();

private:
    std::string final_, temp_;
    bool committed_ = false;
};

}  // namespace paro
