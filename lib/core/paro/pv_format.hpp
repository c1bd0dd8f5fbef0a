#pragma once
// PvFormat: how a head's P (probabilities) and V enter the PV product. One per head in a pattern
// file (schema v2: /layers/{l}/pv_format, codes named by the root attribute pv_format_names), in
// the C API (paro_pv_format) and in the kernels' head grouping. docs/formats.md says how each is
// stored. The codes are part of the file format: append, never renumber.
#include <array>
#include <cstdint>
#include <string>

namespace paro {

enum class PvFormat : uint8_t {
    int8 = 0,      // P as u8 per tile and row, V as s8 per tile and channel; int32 MMA
    fp16 = 1,      // P and V in fp16, fp32 accumulation
    fp8_e4m3 = 2,  // P and V in FP8 e4m3, fp32 accumulation per tile (Hopper only; elsewhere the runtime refuses such heads)
};

constexpr int kNumPvFormats = 3;
// What `paro calibrate` writes, and `paro bench` runs on its random plans, unless told otherwise:
// the fastest PV format on Hopper and the most accurate everywhere (docs/runtime.md).
constexpr PvFormat kDefaultPvFormat = PvFormat::fp16;
constexpr std::array<PvFormat, kNumPvFormats> kAllPvFormats = {PvFormat::int8, PvFormat::fp16, PvFormat::fp8_e4m3};

const char* to_string(PvFormat f);  // "int8", "fp16", "fp8_e4m3"
inline int index_of(PvFormat f) { return static_cast<int>(f); }
// Throws InputError naming file and `where` for anything but the names above.
PvFormat parse_pv_format(const std::string& name, const std::string& file = "",
                         const std::string& where = "PV format");
// Pattern files of version 1 stored a bit width: 16 ran fp16, 8 and 4 ran INT8 (there never was
// an INT4 path), so they read as what the runtime ran. Throws InputError for other widths.
PvFormat pv_format_from_v1_bits(int bits, const std::string& file, const std::string& where);

}  // namespace paro
