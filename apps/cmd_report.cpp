// `paro report PATTERN [--dump DUMP] -o DIR [--heads L:H,...]`: the HTML report (lib/report/paro/report.hpp).
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

#include "calibration_output.hpp"
#include "commands.hpp"
#include "option_names.hpp"
#include "paro/report.hpp"

namespace paro::cli {

namespace {
struct ReportArgs {
    std::string pattern, dump, out, heads;
    int each = 3;
    long long full_max = 1024;
    double warn_recall = kDefaultWarnRecall, cost = 1e-3;
};

int run_report(const ReportArgs& a, const GlobalOptions& g) {
    const auto t0 = std::chrono::steady_clock::now();
    ReportOptions o;
    o.pattern_path = a.pattern;
    o.dump_path = a.dump;
    o.out_dir = a.out;
    if (!a.heads.empty()) o.heads = parse_head_list(a.heads);
    o.default_heads_each = a.each;
    o.full_res_max_tokens = a.full_max;
    o.warn_recall = a.warn_recall;
    o.disagreement_cost = a.cost;
    if (!g.quiet) o.progress = [](const std::string& s) { std::fprintf(stderr, "report: %s\n", s.c_str()); };
    const ReportResult r = write_report(o);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!g.quiet)
        std::printf("wrote %s (%d images, %.0f KiB in all) in %.1f s\n", r.index_path.c_str(), r.images,
                    static_cast<double>(r.total_bytes) / 1024.0, secs);
    std::fflush(stdout);
    if (r.low_recall.any()) warn(g, a.pattern + ": " + r.low_recall.text());
    return 0;
}

}  // namespace

void add_report(CLI::App& app, Runner& run, const GlobalOptions& g) {
    auto args = std::make_shared<ReportArgs>();
    auto* sub = app.add_subcommand("report", "Write an HTML report (index.html + PNG images) of a pattern file");
    sub->add_option("pattern", args->pattern, "Pattern file (paro-pattern HDF5)")->required();
    sub->add_option("-o,--output", args->out, "Output directory (created; replaced if it holds an earlier report)")
        ->required();
    sub->add_option("--dump", args->dump, "The dump the pattern was calibrated on: adds attention maps and per-sample recall");
    sub->add_option("--heads", args->heads, "Heads shown in detail, LAYER:HEAD,... (default: worst and best by recall)");
    sub->add_option("--worst-best", args->each, "With no --heads: how many worst and best heads to show")
        ->check(CLI::Range(0, 1000));
    sub->add_option("--full-max-tokens", args->full_max,
                    "Token-level attention maps when the sequence has at most this many tokens")
        ->check(CLI::NonNegativeNumber);
    sub->add_option("--warn-recall", args->warn_recall,
                    "Warn at the top when a mask keeps less than this share of the attention mass (0: never)")
        ->check(number_in(0, 1))
        ->capture_default_str();
    sub->add_option("--disagreement-cost", args->cost,
                    "List a head whose samples disagree when the shared mask keeps at least this much less of a "
                    "disagreeing sample's attention mass")
        ->check(number_in(0, 1))
        ->capture_default_str();
    sub->callback([&run, &g, args] {
        run = with_option_names({{"heads", "--heads"}, {"out_dir", "-o"}},
                                [&g, args] { return run_report(*args, g); });
    });
}

}  // namespace paro::cli
