#pragma once
// Human and machine summaries of dumps and patterns (`paro inspect`, the end of `paro calibrate`).
// pattern_json's keys are a contract (docs/formats.md): format, version, grid, text_tokens,
// block_size, layers[].heads[].order, layers[].heads[].density (one value per slot).
#include <nlohmann/json.hpp>
#include <string>

#include "paro/calibrator.hpp"
#include "paro/dump.hpp"
#include "paro/pattern.hpp"

namespace paro {

nlohmann::json pattern_json(const Pattern& p, int64_t file_bytes);
nlohmann::json dump_json(const DumpInfo& d);

// Aligned text; color adds ANSI colors (callers pass isatty(stdout)).
std::string pattern_text(const Pattern& p, int64_t file_bytes, bool color);
std::string dump_text(const DumpInfo& d, bool color);
// The few lines calibrate ends with: orders per layer, mean density and recall, file size.
std::string calibration_summary(const Pattern& p, int64_t file_bytes, double seconds, bool color);

// Where statistics ran and where the time went: read (with its rate), tile statistics, scoring,
// write; the stages overlap, so they may add up to more than the wall time.
std::string calibration_timing(const CalibrationTimes& t, double write_seconds);

std::string human_bytes(int64_t bytes);

}  // namespace paro
