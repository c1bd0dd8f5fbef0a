#pragma once
// Human and machine summaries of dumps and patterns (`paro inspect`, the end of `paro calibrate`).
// pattern_json's keys are a contract (docs/formats.md): format, version, grid, text_tokens,
// block_size, layers[].heads[].order, layers[].heads[].density (one value per slot).
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "paro/calibrator.hpp"
#include "paro/dump.hpp"
#include "paro/pattern.hpp"

namespace paro {

nlohmann::json pattern_json(const Pattern& p, int64_t file_bytes);
nlohmann::json dump_json(const DumpInfo& d);
class StatsReader;
// A statistics file: the dump's keys (format "paro-stats") plus the scoring options, what computed
// the statistics, whether all six orders' masses are kept, and per layer the heads' stored orders.
nlohmann::json stats_json(const StatsReader& r, int64_t file_bytes);

// Aligned text; color adds ANSI colors (callers pass isatty(stdout)).
std::string pattern_text(const Pattern& p, int64_t file_bytes, bool color);
std::string dump_text(const DumpInfo& d, bool color);
std::string stats_text(const StatsReader& r, int64_t file_bytes, bool color);
// Masks that keep less of the attention mass than a threshold: such a pattern changes the model's
// attention output visibly (synth's defaults at density 0.3: recall 0.3, output cosine 0.3), so
// calibrate, report, validate and inspect say so. The threshold is the commands' --warn-recall.
inline constexpr double kDefaultWarnRecall = 0.9;
struct RecallWarning {
    double threshold = kDefaultWarnRecall;
    int64_t masks = 0, below = 0;  // every (slot, layer, head) mask; those under the threshold
    double lowest = 1;             // the lowest recall of any mask
    bool any() const { return below > 0; }
    // One line, no trailing newline: "N of M masks keep less than T of the attention mass (lowest L)...".
    std::string text() const;
    nlohmann::json json() const;
};
RecallWarning recall_warning(const Pattern& p, double threshold);

// The few lines calibrate ends with: orders per layer, mean density and recall (marked when masks
// fall below the warning threshold), file size.
std::string calibration_summary(const Pattern& p, int64_t file_bytes, double seconds, bool color,
                                const RecallWarning& warning);
// The same as one JSON object (calibrate --json; schemas/calibrate-summary.schema.json); the
// caller adds what only it knows (output, timing, resumed layers, ranks).
nlohmann::json calibration_summary_json(const Pattern& p, int64_t file_bytes, double seconds,
                                        const RecallWarning& warning);

// Where statistics ran and where the time went: read (with its rate), tile statistics, scoring,
// write; the stages overlap, so they may add up to more than the wall time.
std::string calibration_timing(const CalibrationTimes& t, double write_seconds);
nlohmann::json calibration_timing_json(const CalibrationTimes& t, double write_seconds);

std::string human_bytes(int64_t bytes);

// Names in the order they first appear, each with how many times it does (the statistics backends
// of a run: a GPU runs two).
std::vector<std::pair<std::string, int>> distinct_names(const std::vector<std::string>& names);

}  // namespace paro
