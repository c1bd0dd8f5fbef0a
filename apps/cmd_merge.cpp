// paro merge PART... -o PATTERN: stitch partial calibrations (calibrate --layers) into the pattern
// one run over every layer makes.
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
#include "paro/summary.hpp"

namespace paro::cli {

namespace {
struct MergeArgs {
    std::vector<std::string> parts;
    std::string output;
    SummaryOptions summary;
};
}  // namespace

void add_merge(CLI::App& app, Runner& run, const GlobalOptions& g) {
    auto a = std::make_shared<MergeArgs>();
    auto* sub = app.add_subcommand("merge", "Stitch partial calibrations (calibrate --layers) into one pattern file");
    sub->add_option("parts", a->parts, "paro-partial files, together holding every layer once")->required();
    sub->add_option("-o,--output", a->output, "pattern file to write")->required();
    a->summary.add_to(*sub);
    sub->callback([a, &run, &g] {
        run = [a, &g] {
            const auto t0 = std::chrono::steady_clock::now();
            AtomicOutput::check(a->output);
            std::vector<PartialPattern> parts;
            for (const std::string& p : a->parts) {
                std::error_code ec;
                if (std::filesystem::equivalent(p, a->output, ec))
                    throw InputError(a->output, "option -o", "is one of the parts; name another file");
                parts.push_back(read_partial_file(p));
            }
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
