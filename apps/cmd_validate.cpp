// `paro validate PATTERN --dump DUMP`: run the pattern through the runtime and compare with dense
// fp32 attention, per (sample, layer, head). The error is split in two:
//   mask error          fp32 attention with the pattern's tile mask  vs  dense fp32 attention
//   quantization error  the runtime (INT8 QK, INT8 PV)               vs  fp32 with the same mask
//   total               the runtime                                  vs  dense fp32
// On the GPU both fp32 references run on the device (kernels/reference.cu); with --cpu everything
// runs through lib/paro/attention_reference (exact, slow) and there is no quantization error.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "commands.hpp"
#include "paro/attention_reference.hpp"
#include "paro/dump.hpp"
#include "paro/error.hpp"
#include "paro/pattern.hpp"

#ifdef PARO_HAVE_CUDA
#include "paro_kernels.hpp"
#include "paro_runtime.h"
#endif

namespace paro::cli {

namespace {

struct ValidateOptions {
    std::string pattern, dump;
    bool json = false, cpu = false;
    double min_cosine = -1, max_rel_l1 = -1, min_psnr = -1e300;
    bool min_psnr_set = false;
    std::string against = "dense";
    std::string dtype = "fp16";
    int slot = -1;
    std::vector<int> samples, layers;
};

struct HeadResult {
    int sample, layer, head, slot;
    std::string order;
    double density;
    ErrorStats mask, quant, total;
    bool has_quant = false;
    bool pass = true;
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

template <typename T>
bool selected(const std::vector<T>& list, T x) {
    return list.empty() || std::find(list.begin(), list.end(), x) != list.end();
}

int run_validate(const ValidateOptions& o, const GlobalOptions& g) {
    const Pattern pat = read_pattern_file(o.pattern);
    DumpReader reader(o.dump);
    const DumpInfo& info = reader.info();
    if (!(info.layout == pat.layout))
        throw InputError(o.dump, "grid", fmt::format("token layout {} does not match the pattern's {}",
                                                     info.layout.describe(), pat.layout.describe()));
    if (!info.has_v())
        throw InputError(o.dump, "/layers/*/v", "validation needs v in every layer of the dump");
    if (info.layers.size() > pat.layers.size())
        throw InputError(o.dump, "/layers", fmt::format("dump has {} layers, the pattern {}", info.layers.size(),
                                                        pat.layers.size()));
    if (o.against != "dense" && o.against != "masked")
        throw InputError("", "--against", "must be 'dense' or 'masked'");
    if (o.cpu && o.against == "masked")
        throw InputError("", "--against", "'masked' checks the quantization error, which needs the GPU runtime (--cpu has none)");
    const int slots = pat.slots.count();
    if (o.slot >= slots) throw InputError("", "--slot", fmt::format("pattern has {} slots", slots));
    if (slots > 1 && o.slot < 0 && !info.has_steps())
        throw InputError(o.dump, "/samples/step",
                         "the pattern has several timestep slots but the dump records no step indices; pick one "
                         "with --slot");
    for (const auto& L : info.layers) {
        if (L.kind != DumpKind::qk) throw InputError(o.dump, "/layers", "validation needs q/k dumps, not attention maps");
        if (L.head_dim != L.value_dim)
            throw InputError(o.dump, "/layers/*/v", "the runtime needs the value dim equal to the head dim");
    }

#ifdef PARO_HAVE_CUDA
    paro_dtype dtype = PARO_FLOAT16;
    if (o.dtype == "fp32") dtype = PARO_FLOAT32;
    else if (o.dtype == "bf16") dtype = PARO_BFLOAT16;
    else if (o.dtype != "fp16") throw InputError("", "--dtype", "must be fp16, bf16 or fp32");
    gpu::PlanPtr plan;
    std::string device;
    if (!o.cpu) {
        int count = 0;
        if (paro_device_check(&count) != PARO_OK)
            throw InputError("", "GPU", std::string(paro_last_error()) + "; run with --cpu for the (slow) CPU reference");
        paro_plan* p = nullptr;
        gpu::check(gpu::plan_from_pattern(pat, &p), "loading the pattern onto the GPU");
        plan.reset(p);
        device = gpu::device_name();
    }
#else
    if (!o.cpu)
        throw InputError("", "GPU", "this paro was built without the CUDA runtime; run with --cpu for the CPU reference");
#endif

    std::vector<HeadResult> results;
    const int64_t n = info.tokens();
    for (int64_t s = 0; s < int64_t(info.samples.size()); ++s) {
        if (!selected(o.samples, int(s))) continue;
        const int slot = o.slot >= 0 ? o.slot : (slots == 1 ? 0 : pat.slots.slot_of(info.step_fraction(s)));
        for (int64_t l = 0; l < int64_t(info.layers.size()); ++l) {
            if (!selected(o.layers, int(l))) continue;
            const DumpLayer& L = info.layers[l];
            const int64_t H = L.heads, D = L.head_dim;
            if (int64_t(pat.layers[l].heads.size()) != H)
                throw InputError(o.dump, fmt::format("/layers/{}", l), "head count differs from the pattern");
            std::vector<float> q(size_t(H * n * D)), k(q.size()), v(q.size());
            for (int64_t h = 0; h < H; ++h) {
                const HeadSlice hs = reader.read(s, l, h, true);
                std::copy(hs.q.begin(), hs.q.end(), q.begin() + h * n * D);
                std::copy(hs.k.begin(), hs.k.end(), k.begin() + h * n * D);
                std::copy(hs.v.begin(), hs.v.end(), v.begin() + h * n * D);
            }
            std::vector<float> dense(q.size()), masked(q.size()), kernel;
            bool have_kernel = false;
            if (o.cpu) {
                for (int64_t h = 0; h < H; ++h) {
                    const HeadPattern& hp = pat.layers[l].heads[h];
                    const Permutation perm = make_permutation(pat.layout, hp.order);
                    const size_t off = size_t(h * n * D);
                    attention_dense(q.data() + off, k.data() + off, v.data() + off, n, D, D, L.scale, dense.data() + off);
                    attention_masked(q.data() + off, k.data() + off, v.data() + off, n, D, D, L.scale, perm,
                                     hp.masks[slot], pat.block_q, masked.data() + off);
                }
            } else {
#ifdef PARO_HAVE_CUDA
                if (D != 64 && D != 128)
                    throw InputError(o.dump, fmt::format("/layers/{}/q", l),
                                     fmt::format("head dim {} is not supported by the runtime (64, 128)", D));
                const size_t count = q.size(), fbytes = count * sizeof(float);
                gpu::DeviceBuffer dq(fbytes), dk(fbytes), dv(fbytes), dd(fbytes), dm(fbytes), dout(fbytes);
                dq.upload(q.data(), fbytes);
                dk.upload(k.data(), fbytes);
                dv.upload(v.data(), fbytes);
                gpu::check(paro_reference_attention(nullptr, 0, 0, 1, int(H), int(n), int(D), dq.as<float>(),
                                                    dk.as<float>(), dv.as<float>(), dd.as<float>(), float(L.scale),
                                                    nullptr),
                           "dense reference");
                gpu::check(paro_reference_attention(plan.get(), int(l), slot, 1, int(H), int(n), int(D),
                                                    dq.as<float>(), dk.as<float>(), dv.as<float>(), dm.as<float>(),
                                                    float(L.scale), nullptr),
                           "masked reference");
                const size_t eb = dtype == PARO_FLOAT32 ? 4 : 2;
                gpu::DeviceBuffer tq(count * eb), tk(count * eb), tv(count * eb), to(count * eb);
                gpu::convert_from_f32(dq.as<float>(), tq.get(), dtype, count);
                gpu::convert_from_f32(dk.as<float>(), tk.get(), dtype, count);
                gpu::convert_from_f32(dv.as<float>(), tv.get(), dtype, count);
                to.fill_byte(0xff);  // poison: every element must be written
                paro_attention_args a{};
                a.batch = 1;
                a.heads = int(H);
                a.tokens = int(n);
                a.head_dim = int(D);
                a.dtype = dtype;
                const int64_t sh = n * D, sb = H * n * D;
                a.q = {tq.get(), sb, sh, D};
                a.k = {tk.get(), sb, sh, D};
                a.v = {tv.get(), sb, sh, D};
                a.out = {to.get(), sb, sh, D};
                a.layer = int(l);
                a.slot = slot;
                a.scale = float(L.scale);
                a.smooth_k = 1;
                size_t ws_bytes = 0;
                gpu::check(paro_workspace_size(&a, &ws_bytes), "workspace size");
                gpu::DeviceBuffer ws(ws_bytes);
                gpu::check(paro_attention(plan.get(), &a, ws.get(), ws_bytes, nullptr), "paro_attention");
                gpu::convert_to_f32(to.get(), dtype, dout.as<float>(), count);
                gpu::check(paro_stream_check(nullptr), "running the kernels");
                kernel.resize(count);
                dd.download(dense.data(), fbytes);
                dm.download(masked.data(), fbytes);
                dout.download(kernel.data(), fbytes);
                have_kernel = true;
#endif
            }
            for (int64_t h = 0; h < H; ++h) {
                const HeadPattern& hp = pat.layers[l].heads[h];
                const size_t off = size_t(h * n * D), cnt = size_t(n * D);
                HeadResult r;
                r.sample = int(s);
                r.layer = int(l);
                r.head = int(h);
                r.slot = slot;
                r.order = to_string(hp.order);
                r.density = hp.masks[slot].density();
                r.mask = compare_outputs(masked.data() + off, dense.data() + off, cnt);
                if (have_kernel) {
                    r.has_quant = true;
                    r.quant = compare_outputs(kernel.data() + off, masked.data() + off, cnt);
                    r.total = compare_outputs(kernel.data() + off, dense.data() + off, cnt);
                } else {
                    r.total = r.mask;
                }
                const ErrorStats& checked = o.against == "masked" ? r.quant : r.total;
                r.pass = passes(o, checked);
                results.push_back(r);
            }
            if (!g.quiet && !o.json)
                std::fprintf(stderr, "\rvalidated sample %lld layer %lld", static_cast<long long>(s),
                             static_cast<long long>(l));
        }
    }
    if (!g.quiet && !o.json) std::fprintf(stderr, "\n");

    const bool all_pass = std::all_of(results.begin(), results.end(), [](const HeadResult& r) { return r.pass; });
    if (o.json) {
        nlohmann::json j;
        j["pattern"] = o.pattern;
        j["dump"] = o.dump;
        j["backend"] = o.cpu ? "cpu" : "gpu";
#ifdef PARO_HAVE_CUDA
        if (!o.cpu) j["device"] = gpu::device_name();
#endif
        j["dtype"] = o.cpu ? "fp32" : o.dtype;
        j["checked"] = o.against;
        nlohmann::json th;
        if (o.min_cosine >= 0) th["min_cosine"] = o.min_cosine;
        if (o.max_rel_l1 >= 0) th["max_rel_l1"] = o.max_rel_l1;
        if (o.min_psnr_set) th["min_psnr"] = o.min_psnr;
        j["thresholds"] = th;
        j["pass"] = all_pass;
        auto& arr = j["heads"] = nlohmann::json::array();
        for (const auto& r : results) {
            nlohmann::json x = {{"sample", r.sample}, {"layer", r.layer}, {"head", r.head}, {"slot", r.slot},
                                {"order", r.order}, {"density", r.density}, {"mask", stats_json(r.mask)},
                                {"total", stats_json(r.total)}, {"pass", r.pass}};
            x["quantization"] = r.has_quant ? stats_json(r.quant) : nlohmann::json(nullptr);
            arr.push_back(x);
        }
        std::printf("%s\n", j.dump(2).c_str());
        return all_pass ? 0 : 1;
    }

    // Per layer: one row per head, worst case over the samples.
    std::printf("paro validate: %s against %s (%s%s)\n", o.pattern.c_str(), o.dump.c_str(),
                o.cpu ? "CPU fp32 reference, no quantization" : "GPU runtime INT8 QK + INT8 PV, input ",
                o.cpu ? "" : o.dtype.c_str());
    std::printf("errors vs dense fp32 attention; 'mask' = fp32 with the mask, 'quant' = runtime vs fp32 with the mask\n");
    for (size_t l = 0; l < info.layers.size(); ++l) {
        if (!selected(o.layers, int(l))) continue;
        std::printf("\nlayer %zu\n", l);
        std::printf("%5s %5s %8s | %9s %8s %7s | %9s %8s %7s | %9s %8s %9s %7s %s\n", "head", "order", "density",
                    "mask cos", "rel L1", "PSNR", "quant cos", "rel L1", "PSNR", "total cos", "rel L1", "max abs",
                    "PSNR", "");
        for (size_t h = 0; h < pat.layers[l].heads.size(); ++h) {
            HeadResult w;
            bool any = false;
            double dens = 0;
            int cnt = 0;
            for (const auto& r : results) {
                if (r.layer != int(l) || r.head != int(h)) continue;
                dens += r.density;
                ++cnt;
                if (!any) {
                    w = r;
                    any = true;
                    continue;
                }
                auto worse = [](ErrorStats& a, const ErrorStats& b) {
                    a.cosine = std::min(a.cosine, b.cosine);
                    a.rel_l1 = std::max(a.rel_l1, b.rel_l1);
                    a.max_abs = std::max(a.max_abs, b.max_abs);
                    a.psnr = std::min(a.psnr, b.psnr);
                    a.finite = a.finite && b.finite;
                };
                worse(w.mask, r.mask);
                worse(w.quant, r.quant);
                worse(w.total, r.total);
                w.pass = w.pass && r.pass;
            }
            if (!any) continue;
            const std::string qc = w.has_quant ? fmt::format("{:9.6f} {:7.2f}% {:>7}", w.quant.cosine,
                                                             100 * w.quant.rel_l1, fmt_psnr(w.quant.psnr))
                                               : fmt::format("{:>9} {:>8} {:>7}", "-", "-", "-");
            std::printf("%5zu %5s %8.3f | %9.6f %7.2f%% %7s | %s | %9.6f %7.2f%% %9.2e %7s %s\n", h, w.order.c_str(),
                        dens / cnt, w.mask.cosine, 100 * w.mask.rel_l1, fmt_psnr(w.mask.psnr).c_str(), qc.c_str(),
                        w.total.cosine, 100 * w.total.rel_l1, w.total.max_abs, fmt_psnr(w.total.psnr).c_str(),
                        w.pass ? "" : "FAIL");
        }
    }
    const auto failed = std::count_if(results.begin(), results.end(), [](const HeadResult& r) { return !r.pass; });
    std::printf("\n%zu (sample, layer, head) checked, %lld failed the thresholds (checked: %s)\n", results.size(),
                static_cast<long long>(failed), o.against.c_str());
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
    sub->add_option("--min-cosine", o->min_cosine, "Fail (exit 1) when a head's cosine similarity is below this");
    sub->add_option("--max-rel-l1", o->max_rel_l1, "Fail (exit 1) when a head's relative L1 error is above this");
    sub->add_option("--min-psnr", o->min_psnr, "Fail (exit 1) when a head's PSNR (dB) is below this");
    sub->add_option("--against", o->against,
                    "What the thresholds check: 'dense' (total error, default) or 'masked' (quantization error only)");
    sub->add_option("--dtype", o->dtype, "Input dtype fed to the runtime: fp16 (default), bf16, fp32");
    sub->add_option("--slot", o->slot, "Use this timestep slot for every sample (default: from each sample's step)");
    sub->add_option("--samples", o->samples, "Only these samples (0-based)")->delimiter(',');
    sub->add_option("--layers", o->layers, "Only these layers (0-based)")->delimiter(',');
    sub->callback([&run, &g, o, sub] {
        o->min_psnr_set = sub->count("--min-psnr") > 0;
        run = [o, &g] { return run_validate(*o, g); };
    });
}

}  // namespace paro::cli
