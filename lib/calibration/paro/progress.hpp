#pragma once
// A progress line on stderr for long runs: "calibrate  12/96 heads  3.4 heads/s  0:25 left".
// Drawn only when enabled and stderr is a terminal; redrawn at most 5 times a second.
#include <chrono>
#include <cstdint>
#include <string>

namespace paro {

class ProgressLine {
public:
    ProgressLine(std::string label, std::string unit, bool enabled);
    void update(int64_t done, int64_t total);
    void finish();  // clears the line

private:
    std::string label_, unit_;
    bool enabled_;
    bool drawn_ = false;
    std::chrono::steady_clock::time_point start_, last_;
};

}  // namespace paro
