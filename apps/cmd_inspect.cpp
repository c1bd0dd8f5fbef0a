// paro inspect FILE [--json]: summary of a dump, statistics or pattern file.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "calibration_output.hpp"
#include "commands.hpp"
#include "option_names.hpp"
#include "paro/dump.hpp"
#include "paro/error.hpp"
#include "paro/json_text.hpp"
#include "paro/pattern.hpp"
#include "paro/stats_file.hpp"
#include "paro/summary.hpp"

namespace paro::cli {

void add_inspect(CLI::App& app, Runner& run, const GlobalOptions& g) {
    struct Args {
        std::string file;
        bool json = false;
        double warn_recall = kDefaultWarnRecall;
    };
    auto a = std::make_shared<Args>();
    auto* sub = app.add_subcommand("inspect", "Summarize a dump, statistics or pattern file");
    sub->add_option("file", a->file, "paro-dump, paro-stats or paro-pattern file")->required();
    sub->add_flag("--json", a->json, "print one JSON object (keys documented in docs/formats.md)");
    sub->add_option("--warn-recall", a->warn_recall,
                    "patterns: warn when a mask keeps less than this share of the attention mass (0: never)")
        ->check(number_in(0, 1))
        ->capture_default_str();
    sub->callback([a, &run, &g] {
        run = [a, &g] {
            const bool color = g.color_on(STDOUT_FILENO);
            if (looks_like_pattern(a->file)) {
                const Pattern p = read_pattern_file(a->file);
                const auto bytes = static_cast<int64_t>(std::filesystem::file_size(a->file));
                std::fputs(a->json ? (json_text(pattern_json(p, bytes), 2) + "\n").c_str() : pattern_text(p, bytes, color).c_str(),
                           stdout);
                std::fflush(stdout);
                const RecallWarning w = recall_warning(p, a->warn_recall);
                if (w.any()) warn(g, a->file + ": " + w.text());
                return 0;
            }
            if (looks_like_stats(a->file)) {
                const StatsReader r(a->file);
                const auto bytes = static_cast<int64_t>(std::filesystem::file_size(a->file));
                std::fputs(a->json ? (json_text(stats_json(r, bytes), 2) + "\n").c_str() : stats_text(r, bytes, color).c_str(),
                           stdout);
                return 0;
            }
            // Neither a pattern nor statistics: read as a dump, which names what is wrong if it is none.
            const DumpReader d(a->file);
            std::fputs(a->json ? (json_text(dump_json(d.info()), 2) + "\n").c_str() : dump_text(d.info(), color).c_str(), stdout);
            return 0;
        };
    });
}

}  // namespace paro::cli
