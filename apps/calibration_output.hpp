#pragma once
// What calibrate and merge print once the pattern is written: the summary (text, or one JSON object
// with --json, schemas/calibrate-summary.schema.json) and, on stderr, the low-recall warning.
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "commands.hpp"
#include "paro/calibrator.hpp"
#include "paro/pattern.hpp"

namespace CLI {
class App;
}

namespace paro::cli {

struct CalibrationOutput {
    const Pattern* pattern = nullptr;
    std::string output;
    bool partial = false;                     // a calibrate --layers shard
    int64_t bytes = 0;
    double seconds = 0;                       // from the command's start
    const CalibrationTimes* times = nullptr;  // where statistics ran and the time went, when known
    double write_seconds = 0;
    std::vector<std::string> notes;           // further summary lines (resumed layers, ranks, parts)
    nlohmann::json extra = nlohmann::json::object();  // the same facts for --json
};

// The --json and --warn-recall options calibrate and merge share.
struct SummaryOptions {
    bool json = false;
    double warn_recall = 0;
    void add_to(CLI::App& sub);
};

void print_calibration(const CalibrationOutput& out, const SummaryOptions& s, const GlobalOptions& g);

// "paro: warning: TEXT" on stderr (bold yellow where colors are on); not silenced by --quiet.
void warn(const GlobalOptions& g, const std::string& text);

}  // namespace paro::cli
