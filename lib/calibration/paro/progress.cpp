#include "paro/progress.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>

namespace paro {

ProgressLine::ProgressLine(std::string label, std::string unit, bool enabled)
    : label_(std::move(label)), unit_(std::move(unit)), enabled_(enabled && ::isatty(STDERR_FILENO)),
      start_(std::chrono::steady_clock::now()), last_(start_) {}

void ProgressLine::update(int64_t done, int64_t total) {
    if (!enabled_) return;
    const auto now = std::chrono::steady_clock::now();
    if (done < total && now - last_ < std::chrono::milliseconds(200)) return;
    last_ = now;
    const double secs = std::chrono::duration<double>(now - start_).count();
    const double rate = secs > 0 ? done / secs : 0.0;
    const int64_t left = rate > 0 ? static_cast<int64_t>((total - done) / rate) : 0;
    std::fprintf(stderr, "\r\033[K%s  %lld/%lld %s  %.2f %s/s  %lld:%02lld left", label_.c_str(),
                 static_cast<long long>(done), static_cast<long long>(total), unit_.c_str(), rate, unit_.c_str(),
                 static_cast<long long>(left / 60), static_cast<long long>(left % 60));
    std::fflush(stderr);
    drawn_ = true;
}

void ProgressLine::finish() {
    if (drawn_) std::fprintf(stderr, "\r\033[K");
    drawn_ = false;
}

}  // namespace paro
