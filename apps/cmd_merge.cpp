// paro merge PART... -o PATTERN: stitch partial calibrations (calibrate --layers) into the pattern
// one run over every layer makes. paro merge STATS... -o STATS: merge statistics files of more
// prompts into one (stats_merge.hpp).
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "calibration_output.hpp"
#include "commands.hpp"
#include "paro/atomic_output.hpp"
#include "paro/error.hpp"
#include "paro/layer_shards.hpp"
#include "paro/progress.hpp"
#include "paro/stats_file.hpp"
#include "paro/stats_merge.hpp"
#include "paro/summary.hpp"

namespace paro::cli {

namespace {
struct MergeArgs {
    std::vector<std::string> parts;
    std::string output;
    SummaryOptions summary;
};

// The statistics files' merge, and what it says: the same facts as text or one JSON object.
int merge_statistics(const MergeArgs& a, const GlobalOptions& g, std::chrono::steady_clock::time_point t0) {
    for (const std::string& p : a.parts)
        if (!looks_like_stats(p)) {
            std::error_code ec;
            if (!std::filesystem::exists(p, ec)) throw InputError(p, "", "no such file");
            throw InputError(p, "attribute paro_format", fmt::format("is not paro-stats, as {} is: merge statistics "
                                                                     "files or partial patterns, not both",
                                                                     a.parts.front()));
        }
    ProgressLine line("merge", "heads", !g.quiet && !a.summary.json);
    const StatsMergeResult r =
        merge_stats(a.parts, a.output, [&](int64_t done, int64_t total) { line.update(done, total); });
    line.finish();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (a.summary.json) {
        nlohmann::json j{{"format", "paro-merge-stats-summary"}, {"version", 1},      {"output", a.output},
                         {"inputs", a.parts.size()},
                         {"samples", r.samples},     {"layers", r.layers},       {"heads", r.heads},
                         {"reordered_heads", r.reordered}, {"all_orders", r.all_orders},
                         {"prompts_by_name", r.prompt_names}, {"seconds", seconds}};
        std::printf("%s\n", j.dump(2).c_str());
    } else if (!g.quiet) {
        std::printf("merged %zu statistics files: %lld samples, %lld heads in %lld layers in %.1f s\n", a.parts.size(),
                    static_cast<long long>(r.samples), static_cast<long long>(r.heads),
                    static_cast<long long>(r.layers), seconds);
        std::printf("  %lld heads choose another order than some input stored\n", static_cast<long long>(r.reordered));
        std::printf("  prompts %s\n", r.prompt_names ? "matched by name" : "renumbered (not every input names its prompts)");
        std::printf("  %s\n", r.all_orders ? "all six orders' masses kept: the file merges again exactly"
                                           : "the chosen order's masses only (an input has no other orders')");
        std::printf("  wrote %s, %s (paro calibrate %s -o PATTERN makes the pattern)\n", a.output.c_str(),
                    human_bytes(static_cast<int64_t>(std::filesystem::file_size(a.output))).c_str(), a.output.c_str());
    }
    return 0;
}
}  // namespace

void add_merge(CLI::App& app, Runner& run, const GlobalOptions& g) {
    auto a = std::make_shared<MergeArgs>();
    auto* sub = app.add_subcommand("merge", "Stitch partial calibrations (calibrate --layers) into one pattern file, "
                                            "or merge statistics files of more prompts into one");
    sub->add_option("parts", a->parts,
                    "paro-partial files, together holding every layer once; or paro-stats files of one model, "
                    "layout and scoring")
        ->required();
    sub->add_option("-o,--output", a->output, "pattern (or, from statistics, statistics) file to write")->required();
    a->summary.add_to(*sub);
    sub->callback([a, &run, &g] {
        run = [a, &g] {
            const auto t0 = std::chrono::steady_clock::now();
            AtomicOutput::check(a->output);
            for (const std::string& p : a->parts) {
                std::error_code ec;
                if (std::filesystem::equivalent(p, a->output, ec))
                    throw InputError(a->output, "option -o", "is one of the parts; name another file");
            }
            if (looks_like_stats(a->parts.front())) return merge_statistics(*a, g, t0);
            std::vector<PartialPattern> parts;
            for (const std::string& p : a->parts) parts.push_back(read_partial_file(p));
            const Pattern pattern = merge_partials(parts, a->parts);
            CalibrationOutput out;
            out.pattern = &pattern;
            out.output = a->output;
            out.bytes = write_pattern_file(pattern, a->output);
            out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            out.notes.push_back(fmt::format("merged {} parts", parts.size()));
            out.extra["parts"] = parts.size();
            print_calibration(out, a->summary, g);
            return 0;
        };
    });
}

}  // namespace paro::cli
