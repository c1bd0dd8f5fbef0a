#include "paro/pv_format.hpp"

#include <fmt/format.h>

#include "paro/error.hpp"

namespace paro {

namespace {
constexpr std::array<const char*, kNumPvFormats> kNames = {"int8", "fp16", "fp8_e4m3"};
}

const char* to_string(PvFormat f) { return kNames[index_of(f)]; }

PvFormat parse_pv_format(const std::string& name, const std::string& file, const std::string& where) {
    for (PvFormat f : kAllPvFormats)
        if (name == kNames[index_of(f)]) return f;
    throw InputError(file, where, fmt::format("unknown PV format '{}' (expected int8, fp16 or fp8_e4m3)", name));
}

PvFormat pv_format_from_v1_bits(int bits, const std::string& file, const std::string& where) {
    if (bits == 16) return PvFormat::fp16;
    if (bits == 8 || bits == 4) return PvFormat::int8;
    throw InputError(file, where, fmt::format("pv_bits {} (version 1 files hold 4, 8 or 16)", bits));
}

}  // namespace paro
