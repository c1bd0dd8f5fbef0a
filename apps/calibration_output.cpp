#include "calibration_output.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>

#include "option_names.hpp"
#include "paro/json_text.hpp"
#include "paro/summary.hpp"

namespace paro::cli {

void SummaryOptions::add_to(CLI::App& sub) {
    warn_recall = kDefaultWarnRecall;
    sub.add_flag("--json", json,
                 "print the summary as one JSON object (schemas/calibrate-summary.schema.json; merged statistics: "
                 "merge-stats-summary.schema.json)");
    sub.add_option("--warn-recall", warn_recall,
                   "warn when a mask keeps less than this share of the attention mass (0 turns the warning off)")
        ->check(number_in(0, 1))
        ->capture_default_str();
}

void warn(const GlobalOptions& g, const std::string& text) {
    const bool color = g.color_on(STDERR_FILENO);
    std::fprintf(stderr, "%sparo: warning:%s %s\n", color ? "\033[1;33m" : "", color ? "\033[0m" : "", text.c_str());
}

void print_calibration(const CalibrationOutput& out, const SummaryOptions& s, const GlobalOptions& g) {
    const RecallWarning warning = recall_warning(*out.pattern, s.warn_recall);
    if (s.json) {
        nlohmann::json j = calibration_summary_json(*out.pattern, out.bytes, out.seconds, warning);
        j["output"] = out.output;
        j["partial"] = out.partial;
        if (out.times) j["timing"] = calibration_timing_json(*out.times, out.write_seconds);
        j.update(out.extra);
        std::printf("%s\n", json_text(j, 2).c_str());
    } else if (!g.quiet) {
        std::fputs(calibration_summary(*out.pattern, out.bytes, out.seconds, g.color_on(STDOUT_FILENO), warning).c_str(),
                   stdout);
        if (out.times) std::fputs(calibration_timing(*out.times, out.write_seconds).c_str(), stdout);
        for (const std::string& n : out.notes) std::printf("  %s\n", n.c_str());
        std::printf("  wrote %s%s\n", out.output.c_str(), out.partial ? " (a partial: paro merge stitches the parts)" : "");
        std::fflush(stdout);
    }
    if (warning.any()) warn(g, out.output + ": " + warning.text());
}

}  // namespace paro::cli
