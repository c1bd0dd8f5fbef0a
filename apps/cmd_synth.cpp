// paro synth -o DUMP: a synthetic paro-dump with planted head kinds (examples, tests, benchmarks).
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <sstream>

#include "cli_docs.hpp"
#include "commands.hpp"
#include "option_names.hpp"
#include "paro/error.hpp"
#include "paro/runtime_limits.hpp"
#include "paro/synth.hpp"

namespace paro::cli {

namespace {
struct SynthArgs {
    SynthOptions opt;
    std::string output, grid = "4x12x16", text_position = "prefix", dtype = "float16", kinds = "spatial,temporal,row,column";
    int64_t text = 32;
    bool no_v = false;
};

std::array<int64_t, 3> parse_grid(const std::string& s) {
    std::array<int64_t, 3> g{};
    char x1 = 0, x2 = 0;
    std::istringstream in(s);
    if (!(in >> g[0] >> x1 >> g[1] >> x2 >> g[2]) || x1 != 'x' || x2 != 'x' || !in.eof())
        throw InputError("", "option --grid", "expected FxHxW, e.g. 13x30x45, got '" + s + "'");
    return g;
}

int run_synth(const SynthArgs& a, const GlobalOptions& g) {
    SynthOptions opt = a.opt;
    opt.layout.grid = parse_grid(a.grid);
    opt.layout.text_tokens = a.text;
    opt.layout.text_position = parse_text_position(a.text_position, "", "option --text-position");
    if (a.dtype != "float16" && a.dtype != "float32")
        throw InputError("", "option --dtype", "expected float16 or float32, got '" + a.dtype + "'");
    opt.float16 = a.dtype == "float16";
    opt.with_v = !a.no_v;
    opt.kinds.clear();
    std::stringstream ks(a.kinds);
    for (std::string k; std::getline(ks, k, ',');) opt.kinds.push_back(parse_head_kind(k));
    write_synthetic_dump(opt, a.output);
    if (!g.quiet)
        std::printf("wrote %s: %s, %d layers x %d heads, %d samples, N = %lld\n", a.output.c_str(),
                    opt.layout.describe().c_str(), opt.layers, opt.heads, opt.samples,
                    static_cast<long long>(opt.layout.tokens()));
    return 0;
}

}  // namespace

void add_synth(CLI::App& app, Runner& run, const GlobalOptions& g) {
    auto a = std::make_shared<SynthArgs>();
    auto* sub = app.add_subcommand("synth", "Write a synthetic paro-dump with planted spatial/temporal/row/column heads");
    sub->add_option("-o,--output", a->output, "dump file to write")->required();
    sub->add_option("--grid", a->grid, "video token grid FxHxW")->capture_default_str();
    sub->add_option("--text", a->text, "text tokens")->capture_default_str();
    sub->add_option("--text-position", a->text_position, "where the text tokens are")
        ->type_name(choice_type({"prefix", "suffix"}))
        ->capture_default_str();
    sub->add_option("--layers", a->opt.layers, "layers")->capture_default_str();
    sub->add_option("--heads", a->opt.heads, "heads per layer")->capture_default_str();
    sub->add_option("--samples", a->opt.samples, "calibration samples (spread over the steps)")->capture_default_str();
    sub->add_option("--prompts", a->opt.prompts, "distinct prompts among the samples")->capture_default_str();
    sub->add_option("--steps", a->opt.num_steps, "sampling steps of the run (num_steps)")->capture_default_str();
    sub->add_option("--head-dim", a->opt.head_dim,
                    fmt::format("head dimension, one the runtime serves: {}", fmt::join(kRuntimeHeadDims, " or ")))
        ->capture_default_str();
    sub->add_option("--dtype", a->dtype, "q/k/v element type")->type_name(choice_type({"float16", "float32"}))->capture_default_str();
    sub->add_option("--kinds", a->kinds, "head kinds to cycle through")->capture_default_str();
    // Bounded so that q and k stay finite in float16 (amplitude sqrt(sharpness * sqrt(D)), noise on top).
    sub->add_option("--sharpness", a->opt.sharpness, "logit gap of a matching key")
        ->check(number_in(0, 1e4))
        ->capture_default_str();
    sub->add_option("--noise", a->opt.noise, "per-sample noise on q/k")->check(number_in(0, 10))->capture_default_str();
    sub->add_option("--seed", a->opt.seed, "random seed")->capture_default_str();
    sub->add_flag("--maps", a->opt.maps, "write post-softmax attention maps instead of q/k (small N)");
    sub->add_flag("--no-v", a->no_v, "do not write v");
    sub->callback([a, &run, &g] {
        run = with_option_names({{"layers", "--layers"},
                                 {"heads", "--heads"},
                                 {"samples", "--samples"},
                                 {"prompts", "--prompts"},
                                 {"num_steps", "--steps"},
                                 {"head_dim", "--head-dim"},
                                 {"kinds", "--kinds"},
                                 {"maps", "--maps"},
                                 {"path", "-o"}},
                                [a, &g] { return run_synth(*a, g); });
    });
}

}  // namespace paro::cli
