#include "paro/memory_budget.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <cctype>
#include <cstdlib>

#include "paro/error.hpp"

namespace paro {

double memory_limit() {
    const char* env = std::getenv("PARO_MEMORY_LIMIT");
    if (!env || !*env)
        return 0.8 * static_cast<double>(::sysconf(_SC_PHYS_PAGES)) * static_cast<double>(::sysconf(_SC_PAGE_SIZE));
    char* end = nullptr;
    const double v = std::strtod(env, &end);
    double scale = 1;
    if (end && *end) {
        switch (std::toupper(static_cast<unsigned char>(*end))) {
            case 'K': scale = 1024.0; break;
            case 'M': scale = 1024.0 * 1024; break;
            case 'G': scale = 1024.0 * 1024 * 1024; break;
            case 'T': scale = 1024.0 * 1024 * 1024 * 1024; break;
            default: scale = 0;
        }
        if (end[1]) scale = 0;
    }
    if (!(v > 0) || scale == 0)
        throw ParameterError("PARO_MEMORY_LIMIT", fmt::format("'{}' is not a size (bytes, or with K, M, G or T)", env));
    return v * scale;
}

namespace {
std::string human_bytes(double b) {
    const char* units[] = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB"};
    int u = 0;
    while (b >= 1024.0 && u < 5) b /= 1024.0, ++u;
    return u == 0 ? fmt::format("{:.0f} bytes", b) : fmt::format("{:.1f} {}", b, units[u]);
}
}  // namespace

void require_memory(double bytes, const std::string& what, const std::string& file, const std::string& where) {
    const double limit = memory_limit();
    if (bytes <= limit) return;
    const bool set = std::getenv("PARO_MEMORY_LIMIT") && *std::getenv("PARO_MEMORY_LIMIT");
    throw InputError(file, where,
                     fmt::format("needs about {} for {}; the limit is {} ({}; set PARO_MEMORY_LIMIT to change it)",
                                 human_bytes(bytes), what, human_bytes(limit),
                                 set ? "PARO_MEMORY_LIMIT" : "80% of this machine's memory"));
}

}  // namespace paro
