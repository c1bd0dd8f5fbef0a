// `paro validate PATTERN --dump DUMP`: run the pattern through the runtime and compare with dense
// fp32 attention, per (sample, layer, head). The error is split in two:
//   mask error          fp32 attention with the pattern's tile mask  vs  dense fp32 attention
//   quantization error  the runtime (QK and PV formats per the pattern) vs fp32 with the same mask
//   total               the runtime                                  vs  dense fp32
// The work lives in lib/validation/paro/validation (walk, statistics) and its backends: GPU
// (kernels/tools/gpu_validation) or CPU (--cpu: exact, slow, no quantization error). This file parses
// options and prints, and with --upgrade-qk writes the pattern with 16-bit QK for the heads whose
// quantization error missed the target (the quantization plan from measured errors).
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "calibration_output.hpp"
#include "cli_docs.hpp"
#include "commands.hpp"
#include "option_names.hpp"
#include "paro/atomic_output.hpp"
#include "paro/dump.hpp"
#include "paro/error.hpp"
#include "paro/json_text.hpp"
#include "paro/pattern.hpp"
#include "paro/progress.hpp"
#include "paro/summary.hpp"
#include "paro/validation.hpp"

#ifdef PARO_HAVE_CUDA
#include "gpu_validation.hpp"
#endif

namespace paro::cli {

namespace {

struct ValidateOptions {
    std::string pattern, dump;
    bool json = false, cpu = false;
    double min_cosine = -1, max_rel_l1 = -1, min_psnr = -1e300;
    bool min_psnr_set = false;
    double warn_recall = kDefaultWarnRecall, warn_cosine = 0.99;
    std::string against = "dense";
    std::string dtype = "fp16";
    int slot = -1;
    std::vector<int> samples, layers;
    std::string upgrade_qk;  // output pattern ("": none)
    double upgrade_cosine = 0.9995, upgrade_rel_l1 = 0.03;
};

nlohmann::json stats_json(const ErrorStats& e) {
    auto num = [](double x) -> nlohmann::json {
        if (std::isnan(x)) return nullptr;
        if (std::isinf(x)) return x > 0 ? 1e300 : -1e300;
        return x;
    };
    return {{"cosine", num(e.cosine)}, {"rel_l1", num(e.rel_l1)}, {"rel_l2", num(e.rel_l2)},
            {"max_abs", num(e.max_abs)}, {"psnr", num(e.psnr)}, {"finite", e.finite}};
}

std::string fmt_psnr(double p) { return std::isinf(p) ? "inf" : fmt::format("{:.1f}", p); }

// Compares the checked stats against thresholds; returns true on pass.
bool passes(const ValidateOptions& o, const ErrorStats& e) {
    if (!e.finite) return false;
    if (o.min_cosine >= 0 && !(e.cosine >= o.min_cosine)) return false;
    if (o.max_rel_l1 >= 0 && !(e.rel_l1 <= o.max_rel_l1)) return false;
    if (o.min_psnr_set && !(e.psnr >= o.min_psnr)) return false;
    return true;
}

struct HeadResult {
    HeadValidation v;
    bool pass = true;
};

// --upgrade-qk: the (layer, head)s whose quantization error misses the upgrade target on some
// sample: those 16-bit QK brings within it (upgraded), those it does not (not_helped: their PV
// format or inputs limit them), and those already at 16 bits. Off Hopper 16-bit QK cannot run here:
// every INT8-QK head that missed is upgraded, unverified.
struct QkUpgrade {
    std::vector<std::pair<int, int>> upgraded, not_helped, already_16;
    bool verified = false;
};

bool meets_upgrade_target(const ValidateOptions& o, const ErrorStats& e) {
    return e.finite && e.cosine >= o.upgrade_cosine && e.rel_l1 <= o.upgrade_rel_l1;
}

Pattern with_qk16(Pattern p, const std::vector<std::pair<int, int>>& heads) {
    for (const auto& [l, h] : heads) p.layers[size_t(l)].heads[size_t(h)].qk_bits = 16;
    return p;
}

// rerun(trial, layers): the validation of a pattern over those layers; empty when 16-bit QK cannot run.
using Rerun = std::function<std::vector<HeadValidation>(const Pattern&, const std::vector<int>&)>;

QkUpgrade plan_qk_upgrade(const ValidateOptions& o, const Pattern& pat, const std::vector<HeadValidation>& vs,
                          const Rerun& rerun) {
    QkUpgrade u;
    std::vector<std::pair<int, int>> candidates;
    std::vector<int> layers;
    for (const HeadWorst& w : worst_over_samples(vs)) {
        if (!w.has_quant || meets_upgrade_target(o, w.quant)) continue;
        if (pat.layers[size_t(w.layer)].heads[size_t(w.head)].qk_bits == 16) {
            u.already_16.emplace_back(w.layer, w.head);
        } else {
            candidates.emplace_back(w.layer, w.head);
            if (layers.empty() || layers.back() != w.layer) layers.push_back(w.layer);
        }
    }
    if (candidates.empty() || !rerun) {
        u.upgraded = candidates;
        return u;
    }
    u.verified = true;
    const std::vector<HeadWorst> trial = worst_over_samples(rerun(with_qk16(pat, candidates), layers));
    for (const auto& c : candidates) {
        const auto w = std::find_if(trial.begin(), trial.end(),
                                    [&](const HeadWorst& t) { return t.layer == c.first && t.head == c.second; });
        PARO_ASSERT(w != trial.end());
        (meets_upgrade_target(o, w->quant) ? u.upgraded : u.not_helped).push_back(c);
    }
    return u;
}

// Writes the pattern with qk_bits 16 for the upgraded heads (atomically), and says what it did.
void write_qk_upgrade(const ValidateOptions& o, const Pattern& pat, const QkUpgrade& u, const GlobalOptions& g) {
    write_pattern_file(with_qk16(pat, u.upgraded), o.upgrade_qk);
    if (o.json || g.quiet) return;
    const size_t missed = u.upgraded.size() + u.not_helped.size();
    std::printf("16-bit QK: %zu INT8-QK head(s) missed the quantization target (cosine >= %g, rel L1 <= %g); ", missed,
                o.upgrade_cosine, o.upgrade_rel_l1);
    if (u.verified)
        std::printf("%zu meet it with 16-bit QK and get qk_bits 16 in %s, %zu do not (their PV format or inputs "
                    "limit them) and keep INT8 QK\n",
                    u.upgraded.size(), o.upgrade_qk.c_str(), u.not_helped.size());
    else
        std::printf("%s has qk_bits 16 for them, not run here (16-bit QK runs on Hopper only: validate it there)\n",
                    o.upgrade_qk.c_str());
    if (!u.already_16.empty())
        std::printf("16-bit QK: %zu head(s) already at 16-bit QK miss it too (their PV format or inputs)\n",
                    u.already_16.size());
}

int run_validate(const ValidateOptions& o, const GlobalOptions& g) {
    const Pattern pat = read_pattern_file(o.pattern);
    DumpReader reader(o.dump);
    if (o.against != "dense" && o.against != "masked")
        throw InputError("", "option --against", "must be 'dense' or 'masked'");
    if (o.cpu && o.against == "masked")
        throw InputError("", "option --against",
                         "'masked' checks the quantization error, which needs the GPU runtime (--cpu has none)");
    if (o.cpu && !o.upgrade_qk.empty())
        throw InputError("", "option --upgrade-qk",
                         "chooses by the quantization error, which needs the GPU runtime (--cpu has none)");
    if (!o.upgrade_qk.empty()) {  // a typo fails before the work; never overwrite an input
        AtomicOutput::check(o.upgrade_qk);
        std::error_code ec;
        for (const std::string& in : {o.pattern, o.dump})
            if (std::filesystem::equivalent(in, o.upgrade_qk, ec))
                throw InputError(o.upgrade_qk, "option --upgrade-qk", "is an input file; name another file");
    }
    const ValidationScope scope{o.samples, o.layers, o.slot};
    check_validation_inputs(pat, reader.info(), scope, o.pattern);

    std::unique_ptr<ValidationBackend> backend;
    if (o.cpu) {
        backend = std::make_unique<CpuValidationBackend>();
    } else {
#ifdef PARO_HAVE_CUDA
        backend = std::make_unique<gpu::GpuValidationBackend>(pat, gpu::parse_dtype(o.dtype));
#else
        throw NoDeviceError("GPU: this paro was built without the CUDA runtime; run with --cpu for the CPU reference");
#endif
    }
    ProgressLine progress("validate", "layers", !g.quiet && !o.json);
    const auto validations = validate_pattern(pat, reader, scope, *backend,
                                              [&](int64_t done, int64_t total) { progress.update(done, total); });
    progress.finish();
    std::vector<HeadResult> results;
    for (const auto& v : validations) results.push_back({v, passes(o, o.against == "masked" ? v.quant : v.total)});
    QkUpgrade upgrade;
    if (!o.upgrade_qk.empty()) {
        Rerun rerun;
#ifdef PARO_HAVE_CUDA
        if (std::string(paro_attention_kernel_name()).rfind("wgmma", 0) == 0)
            rerun = [&](const Pattern& trial, const std::vector<int>& layers) {
                gpu::GpuValidationBackend with_16(trial, gpu::parse_dtype(o.dtype));
                ValidationScope s = scope;
                s.layers = layers;
                ProgressLine again("validate with 16-bit QK", "layers", !g.quiet && !o.json);
                auto r = validate_pattern(trial, reader, s, with_16,
                                          [&](int64_t done, int64_t total) { again.update(done, total); });
                again.finish();
                return r;
            };
#endif
        upgrade = plan_qk_upgrade(o, pat, validations, rerun);
    }

    const bool all_pass = std::all_of(results.begin(), results.end(), [](const HeadResult& r) { return r.pass; });
    // Warnings: not failures (thresholds are), but a pattern that visibly changes the output must
    // not pass in silence.
    std::vector<std::string> warnings;
    const RecallWarning low_recall = recall_warning(pat, o.warn_recall);
    if (low_recall.any()) warnings.push_back(o.pattern + ": " + low_recall.text());
    const HeadValidation* worst = nullptr;
    int64_t low_cosine = 0;
    for (const auto& r : results)
        if (!(r.v.total.cosine >= o.warn_cosine)) {
            ++low_cosine;
            if (!worst || !(r.v.total.cosine >= worst->total.cosine)) worst = &r.v;
        }
    if (worst)
        warnings.push_back(fmt::format("{}: {} of {} (sample, layer, head) have an output cosine below {} against dense "
                                       "attention (worst {:.4f}: sample {}, layer {}, head {}); this warning: --warn-cosine",
                                       o.pattern, low_cosine, results.size(), o.warn_cosine, worst->total.cosine,
                                       worst->sample, worst->layer, worst->head));
    const auto print_warnings = [&] {
        std::fflush(stdout);
        for (const auto& w : warnings) warn(g, w);
    };
    if (o.json) {
        nlohmann::json j;
        j["pattern"] = o.pattern;
        j["dump"] = o.dump;
        j["backend"] = o.cpu ? "cpu" : "gpu";
        j["backend_description"] = backend->describe();
        j["dtype"] = o.cpu ? "fp32" : o.dtype;
        j["checked"] = o.against;
        nlohmann::json th;
        if (o.min_cosine >= 0) th["min_cosine"] = o.min_cosine;
        if (o.max_rel_l1 >= 0) th["max_rel_l1"] = o.max_rel_l1;
        if (o.min_psnr_set) th["min_psnr"] = o.min_psnr;
        j["thresholds"] = th;
        j["pass"] = all_pass;
        j["warnings"] = warnings;
        if (!o.upgrade_qk.empty()) {
            auto heads = [](const std::vector<std::pair<int, int>>& v) {
                nlohmann::json a = nlohmann::json::array();
                for (const auto& [l, h] : v) a.push_back({{"layer", l}, {"head", h}});
                return a;
            };
            j["qk_upgrade"] = {{"output", o.upgrade_qk},
                               {"min_cosine", o.upgrade_cosine},
                               {"max_rel_l1", o.upgrade_rel_l1},
                               {"verified", upgrade.verified},
                               {"upgraded", heads(upgrade.upgraded)},
                               {"not_helped", heads(upgrade.not_helped)},
                               {"already_16", heads(upgrade.already_16)}};
        }
        auto& arr = j["heads"] = nlohmann::json::array();
        for (const auto& [v, pass] : results) {
            nlohmann::json x = {{"sample", v.sample}, {"layer", v.layer},   {"head", v.head},
                                {"slot", v.slot},     {"order", to_string(v.order)}, {"density", v.density},
                                {"mask", stats_json(v.mask)}, {"total", stats_json(v.total)}, {"pass", pass}};
            x["quantization"] = v.has_quant ? stats_json(v.quant) : nlohmann::json(nullptr);
            arr.push_back(x);
        }
        if (!o.upgrade_qk.empty()) write_qk_upgrade(o, pat, upgrade, g);
        std::printf("%s\n", json_text(j, 2).c_str());
        print_warnings();
        return all_pass ? 0 : 1;
    }

    // Per layer: one row per head, worst case over the samples.
    std::printf("paro validate: %s against %s (%s)\n", o.pattern.c_str(), o.dump.c_str(), backend->describe().c_str());
    std::printf("errors vs dense fp32 attention; 'mask' = fp32 with the mask, 'quant' = runtime vs fp32 with the mask\n");
    int layer = -1;
    for (const HeadWorst& w : worst_over_samples(validations)) {
        if (w.layer != layer) {
            layer = w.layer;
            std::printf("\nlayer %d\n", layer);
            std::printf("%5s %5s %8s | %9s %8s %7s | %9s %8s %7s | %9s %8s %9s %7s %s\n", "head", "order", "density",
                        "mask cos", "rel L1", "PSNR", "quant cos", "rel L1", "PSNR", "total cos", "rel L1", "max abs",
                        "PSNR", "");
        }
        // worst_of keeps NaN, so the worst passes exactly when every sample does.
        const bool pass = passes(o, o.against == "masked" ? w.quant : w.total);
        const std::string qc = w.has_quant ? fmt::format("{:9.6f} {:7.2f}% {:>7}", w.quant.cosine,
                                                         100 * w.quant.rel_l1, fmt_psnr(w.quant.psnr))
                                           : fmt::format("{:>9} {:>8} {:>7}", "-", "-", "-");
        std::printf("%5d %5s %8.3f | %9.6f %7.2f%% %7s | %s | %9.6f %7.2f%% %9.2e %7s %s\n", w.head,
                    to_string(w.order).c_str(), w.mean_density, w.mask.cosine, 100 * w.mask.rel_l1,
                    fmt_psnr(w.mask.psnr).c_str(), qc.c_str(), w.total.cosine, 100 * w.total.rel_l1, w.total.max_abs,
                    fmt_psnr(w.total.psnr).c_str(), pass ? "" : "FAIL");
    }
    const auto failed = std::count_if(results.begin(), results.end(), [](const HeadResult& r) { return !r.pass; });
    std::printf("\n%zu (sample, layer, head) checked, %lld failed the thresholds (checked: %s)\n", results.size(),
                static_cast<long long>(failed), o.against.c_str());
    if (!o.upgrade_qk.empty()) write_qk_upgrade(o, pat, upgrade, g);
    print_warnings();
    return all_pass ? 0 : 1;
}

}  // namespace

void add_validate(CLI::App& app, Runner& run, const GlobalOptions& g) {
    auto o = std::make_shared<ValidateOptions>();
    auto* sub = app.add_subcommand(
        "validate", "Run a pattern on the GPU runtime and compare with dense fp32 attention (needs v in the dump)");
    sub->add_option("pattern", o->pattern, "Pattern file (paro-pattern)")->required()->check(CLI::ExistingFile);
    sub->add_option("--dump", o->dump, "Dump with q, k, v (paro-dump)")->required()->check(CLI::ExistingFile);
    sub->add_flag("--json", o->json, "One JSON object with every (sample, layer, head)");
    sub->add_flag("--cpu", o->cpu, "CPU fp32 reference only (no GPU needed; exact, slow, no quantization error)");
    // Thresholds that NaN would turn into checks that never fail.
    const double inf = std::numeric_limits<double>::infinity();
    sub->add_option("--min-cosine", o->min_cosine, "Fail (exit 1) when a head's cosine similarity is below this")
        ->check(number_in(-1, 1));
    sub->add_option("--max-rel-l1", o->max_rel_l1, "Fail (exit 1) when a head's relative L1 error is above this")
        ->check(number_in(0, inf));
    sub->add_option("--min-psnr", o->min_psnr, "Fail (exit 1) when a head's PSNR (dB) is below this")
        ->check(number_in(-inf, inf));
    sub->add_option("--warn-recall", o->warn_recall,
                    "Warn when a mask of the pattern keeps less than this share of the attention mass (0: never)")
        ->check(number_in(0, 1))
        ->capture_default_str();
    sub->add_option("--warn-cosine", o->warn_cosine,
                    "Warn when a head's output cosine against dense attention is below this (0: never)")
        ->check(number_in(-1, 1))
        ->capture_default_str();
    sub->add_option("--against", o->against,
                    "What the thresholds check: 'dense' (total error, default) or 'masked' (quantization error only)")
        ->type_name(choice_type({"dense", "masked"}));
    sub->add_option("--dtype", o->dtype, "Input dtype fed to the runtime (default fp16)")
        ->type_name(choice_type({"fp16", "bf16", "fp32"}));
    sub->add_option("--slot", o->slot, "Use this timestep slot for every sample (default: from each sample's step)");
    sub->add_option("--samples", o->samples, "Only these samples (0-based)")->delimiter(',');
    sub->add_option("--layers", o->layers, "Only these layers (0-based)")->delimiter(',');
    auto* upgrade = sub->add_option("--upgrade-qk", o->upgrade_qk,
                    "Write this pattern: the input with qk_bits 16 (16-bit QK, Hopper) for every head whose "
                    "quantization error misses --upgrade-cosine / --upgrade-rel-l1 on some sample and meets them with "
                    "16-bit QK (GPU only; verified on Hopper)");
    sub->add_option("--upgrade-cosine", o->upgrade_cosine, "--upgrade-qk: the quantization error's minimum cosine")
        ->needs(upgrade)
        ->check(number_in(-1, 1))
        ->capture_default_str();
    sub->add_option("--upgrade-rel-l1", o->upgrade_rel_l1, "--upgrade-qk: the quantization error's maximum relative L1")
        ->needs(upgrade)
        ->check(number_in(0, inf))
        ->capture_default_str();
    sub->callback([&run, &g, o, sub] {
        o->min_psnr_set = sub->count("--min-psnr") > 0;
        run = with_option_names({{"slot", "--slot"}, {"samples", "--samples"}, {"layers", "--layers"}, {"dtype", "--dtype"}, {"path", "--upgrade-qk"}},
                                [o, &g] { return run_validate(*o, g); });
    });
}

}  // namespace paro::cli
