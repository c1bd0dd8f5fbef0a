// `paro bench`: time the whole runtime op (K mean + fused permute/quantize + block-sparse INT8
// attention + scatter to original order) on random inputs, with masks from a pattern file or random
// at given densities; --pv-format int8,fp16 times INT8 PV and fp16 PV on the same plans (and
// --qk-bits 8,16 INT8 and 16-bit QK). Median of
// CUDA-event timings after warm-up; also each stage alone and the op with the permutation switched off
// (the permutation's cost).
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "cli_docs.hpp"
#include "commands.hpp"
#include "option_names.hpp"
#include "paro/block_mask.hpp"
#include "paro/error.hpp"
#include "paro/pattern.hpp"
#include "paro/pv_format.hpp"
#include "paro/runtime_limits.hpp"

#ifdef PARO_HAVE_CUDA
#include "gpu_helpers.hpp"
#include "paro_runtime.h"
#endif

namespace paro::cli {

namespace {

struct BenchOptions {
    std::string pattern;
    int layer = 0, slot = 0;
    int batch = 1, heads = 48, head_dim = 64;
    int64_t tokens = 17776;
    std::vector<int64_t> grid;  // F,H,W; default 13,30,45 for 17776 tokens
    int64_t text = -1;
    std::vector<double> densities{1.0, 0.5, 0.3, 0.2};
    int mask_rows = 1;  // random masks drawn per group of this many tile rows (2: 128 x 64 masks)
    std::string dtype = "bf16";
    int iters = 20, warmup = 5;
    uint64_t seed = 1;
    bool json = false;
    std::vector<std::string> pv_formats;  // empty: the plan's own (calibrate's default for random masks, the pattern's per head)
    std::vector<int> qk_bits;             // the same for QK bit widths
};

#ifdef PARO_HAVE_CUDA
struct Case {
    std::string label;
    paro_plan_desc desc{};
    std::vector<uint8_t> orders, masks;
};

int run_bench(const BenchOptions& o, const GlobalOptions& g) {
    int devices = 0;
    if (paro_device_check(&devices) != PARO_OK)
        throw NoDeviceError("GPU: " + std::string(paro_last_error()) + "; paro bench needs a CUDA GPU");
    const paro_dtype dtype = gpu::parse_dtype(o.dtype);
    if (!runtime_supports_head_dim(o.head_dim))
        throw InputError("", "--head-dim", fmt::format("{} is not supported by the runtime (64, 128)", o.head_dim));
    std::vector<PvFormat> pv_list;
    for (const auto& name : o.pv_formats) pv_list.push_back(parse_pv_format(name, "", "option --pv-format"));
    for (int bits : o.qk_bits)
        if (bits != 4 && bits != 8 && bits != 16)
            throw InputError("", "--qk-bits", fmt::format("{} is not a QK bit width (4, 8, 16)", bits));

    // Plans: one per density (random masks, random orders), or the pattern's (layer, slot).
    std::vector<std::pair<std::string, gpu::PlanPtr>> plans;
    int heads = o.heads, layer = 0, slot = 0;
    int64_t tokens = o.tokens;
    std::string layout_desc;
    if (!o.pattern.empty()) {
        const Pattern p = read_pattern_file(o.pattern);
        if (o.layer < 0 || o.layer >= int(p.layers.size())) throw InputError("", "--layer", "out of range");
        if (o.slot < 0 || o.slot >= p.slots.count()) throw InputError("", "--slot", "out of range");
        heads = int(p.layers[o.layer].heads.size());
        tokens = p.layout.tokens();
        layer = o.layer;
        slot = o.slot;
        layout_desc = p.layout.describe();
        paro_plan* pl = nullptr;
        gpu::check(gpu::plan_from_pattern(p, &pl), "loading the pattern");
        plans.emplace_back(fmt::format("pattern L{} S{}", layer, slot), gpu::PlanPtr(pl));
    } else {
        int64_t grid[3] = {1, 1, tokens};
        int64_t text = 0;
        if (!o.grid.empty()) {
            if (o.grid.size() != 3) throw InputError("", "--grid", "needs F,H,W");
            for (int i = 0; i < 3; ++i) grid[i] = o.grid[i];
            text = o.text >= 0 ? o.text : 0;
        } else if (tokens == 17776) {
            grid[0] = 13, grid[1] = 30, grid[2] = 45;
            text = o.text >= 0 ? o.text : 226;
        } else {
            text = 0;
        }
        if (grid[0] * grid[1] * grid[2] + text != tokens) {
            if (o.grid.empty()) tokens = grid[0] * grid[1] * grid[2] + text;
            else throw InputError("", "--grid", "F*H*W + text must equal --tokens");
        }
        const int64_t nb = tiles_per_side(tokens);
        layout_desc = fmt::format("{}x{}x{} + {} text", grid[0], grid[1], grid[2], text);
        if (o.mask_rows < 1 || o.mask_rows > 16) throw InputError("", "--mask-rows", "must be 1 to 16");
        std::mt19937_64 rng(o.seed);
        for (double d : o.densities) {
            if (!(d > 0 && d <= 1)) throw InputError("", "--densities", "each density must be in (0, 1]");
            Case c;
            c.orders.resize(size_t(heads));
            for (auto& x : c.orders) x = uint8_t(rng() % 6);
            std::uniform_real_distribution<double> U(0, 1);
            const int64_t g = o.mask_rows;
            for (int h = 0; h < heads; ++h) {
                BlockMask m(nb);
                for (int64_t r0 = 0; r0 < nb; r0 += g)  // one draw per group of tile rows, with their diagonals
                    for (int64_t cc = 0; cc < nb; ++cc)
                        if ((cc >= r0 && cc < r0 + g) || d >= 1.0 || U(rng) < d)
                            for (int64_t r = r0; r < std::min(r0 + g, nb); ++r) m.set(r, cc);
                c.masks.insert(c.masks.end(), m.bytes().begin(), m.bytes().end());  // the desc's layout
            }
            c.desc.grid[0] = grid[0], c.desc.grid[1] = grid[1], c.desc.grid[2] = grid[2];
            c.desc.text_tokens = text;
            c.desc.block = kRuntimeTile;
            c.desc.layers = c.desc.slots = 1;
            c.desc.heads = heads;
            c.desc.orders = c.orders.data();
            c.desc.masks = c.masks.data();
            paro_plan* pl = nullptr;
            gpu::check(paro_plan_create(&c.desc, &pl), "creating a random plan");
            gpu::check(paro_plan_set_pv_format(pl, nullptr, static_cast<paro_pv_format>(index_of(kDefaultPvFormat))),
                       "paro_plan_set_pv_format");  // what calibrate would write
            plans.emplace_back(fmt::format("random {:.2f}{}", d, o.mask_rows > 1 ? fmt::format(" {}x64", 64 * o.mask_rows) : ""),
                               gpu::PlanPtr(pl));
        }
    }

    const size_t eb = dtype == PARO_FLOAT32 ? 4 : 2;
    const size_t count = size_t(o.batch) * heads * size_t(tokens) * o.head_dim;
    gpu::DeviceBuffer q(count * eb), k(count * eb), v(count * eb), out(count * eb);
    gpu::fill_random(q.get(), dtype, count, o.seed * 3 + 0, 1.0f);
    gpu::fill_random(k.get(), dtype, count, o.seed * 3 + 1, 1.0f);
    gpu::fill_random(v.get(), dtype, count, o.seed * 3 + 2, 1.0f);
    paro_attention_args a{};
    a.batch = o.batch;
    a.heads = heads;
    a.tokens = int(tokens);
    a.head_dim = o.head_dim;
    a.dtype = dtype;
    const int64_t sh = tokens * o.head_dim, sb = heads * sh;
    a.q = {q.get(), sb, sh, o.head_dim};
    a.k = {k.get(), sb, sh, o.head_dim};
    a.v = {v.get(), sb, sh, o.head_dim};
    a.out = {out.get(), sb, sh, o.head_dim};
    a.layer = layer;
    a.slot = slot;
    a.smooth_k = 1;
    size_t ws_bytes = 0;
    gpu::check(paro_workspace_size(&a, &ws_bytes), "workspace size");
    gpu::DeviceBuffer ws(ws_bytes);

    const std::string dev = gpu::device_name();
    const double dense_flops = 4.0 * o.batch * heads * double(tokens) * double(tokens) * o.head_dim;
    nlohmann::json rows = nlohmann::json::array();
    if (!o.json) {
        std::time_t now = std::time(nullptr);
        char date[32];
        std::strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", std::gmtime(&now));
        std::printf("paro bench on %s, %s; batch %d, heads %d, tokens %lld (%s), head dim %d, %s, median of %d; "
                    "kernel %s\n",
                    dev.c_str(), date, o.batch, heads, static_cast<long long>(tokens), layout_desc.c_str(),
                    o.head_dim, o.dtype.c_str(), o.iters, paro_attention_kernel_name());
        std::printf("%-18s %4s %4s %7s %9s %9s %9s %9s %9s %8s %10s %10s\n", "masks", "QK", "PV", "density",
                    "total ms", "quant ms", "attn ms", "q id ms", "a id ms", "perm %", "TFLOP/s eq", "TFLOP/s");
    }
    const bool plan_formats = pv_list.empty(), plan_qk = o.qk_bits.empty();  // as the plan says
    if (plan_formats) pv_list.push_back(kDefaultPvFormat);  // one pass, not applied: the plans' own formats run
    const std::vector<int> qk_list = plan_qk ? std::vector<int>{0} : o.qk_bits;
    for (auto& [label, plan] : plans)
        for (const int qk : qk_list)
            for (const PvFormat pv : pv_list) {
                if (!plan_qk) gpu::check(paro_plan_set_qk_bits(plan.get(), nullptr, qk), "paro_plan_set_qk_bits");
                if (!plan_formats)
                    gpu::check(paro_plan_set_pv_format(plan.get(), nullptr, static_cast<paro_pv_format>(index_of(pv))),
                               "paro_plan_set_pv_format");
                const std::string pv_name = plan_formats ? "plan" : to_string(pv);
                const std::string qk_name = plan_qk ? "plan" : std::to_string(qk);
                paro_plan_info info{};
                gpu::check(paro_plan_get_info(plan.get(), &info), "plan info");
                const double density = info.density;
                auto run_with = [&](int stages, int identity) {
                    a.stages = stages;
                    a.identity_order = identity;
                    return [&, stages, identity] {
                        paro_attention_args b = a;
                        b.stages = stages;
                        b.identity_order = identity;
                        gpu::check(paro_attention(plan.get(), &b, ws.get(), ws_bytes, nullptr), "paro_attention");
                    };
                };
                const double t_all = gpu::median_ms(run_with(PARO_STAGE_ALL, 0), o.warmup, o.iters);
                const double t_q = gpu::median_ms(run_with(PARO_STAGE_QUANTIZE, 0), o.warmup, o.iters);
                const double t_a = gpu::median_ms(run_with(PARO_STAGE_ATTENTION, 0), o.warmup, o.iters);
                const double t_id = gpu::median_ms(run_with(PARO_STAGE_ALL, 1), o.warmup, o.iters);
                const double t_qid = gpu::median_ms(run_with(PARO_STAGE_QUANTIZE, 1), o.warmup, o.iters);
                const double t_aid = gpu::median_ms(run_with(PARO_STAGE_ATTENTION, 1), o.warmup, o.iters);
                // Cost of the permutation = what the gather (quantize) and the scatter (epilogue) add over the
                // same kernels in identity order, relative to the attention time.
                const double perm = 100.0 * ((t_q - t_qid) + (t_a - t_aid)) / t_a;
                const double tf_eq = dense_flops / (t_all * 1e-3) / 1e12;
                const double tf = tf_eq * density;
                if (o.json) {
                    rows.push_back({{"masks", label}, {"qk", qk_name}, {"pv", pv_name}, {"density", density},
                                    {"total_ms", t_all},
                                    {"quantize_ms", t_q}, {"attention_ms", t_a}, {"identity_order_total_ms", t_id},
                                    {"identity_order_quantize_ms", t_qid}, {"identity_order_attention_ms", t_aid},
                                    {"permutation_cost_pct_of_attention", perm}, {"tflops_dense_equivalent", tf_eq},
                                    {"tflops_effective", tf}});
                } else {
                    std::printf("%-18s %4s %4s %7.3f %9.3f %9.3f %9.3f %9.3f %9.3f %7.2f%% %10.1f %10.1f\n", label.c_str(),
                                qk_name.c_str(), pv_name.c_str(), density, t_all, t_q, t_a, t_qid, t_aid, perm, tf_eq, tf);
                }
                std::fflush(stdout);
            }
    if (o.json) {
        nlohmann::json j = {{"device", dev}, {"kernel", paro_attention_kernel_name()}, {"batch", o.batch}, {"heads", heads}, {"tokens", tokens},
                            {"head_dim", o.head_dim}, {"dtype", o.dtype}, {"iters", o.iters}, {"rows", rows}};
        std::printf("%s\n", j.dump(2).c_str());
    } else if (!g.quiet) {
        std::printf("QK / PV = the QK bit width and the PV product's format (--qk-bits, --pv-format; plan: as the "
                    "pattern / plan says); "
                    "total = whole op (K mean, fused permute+quantize, attention, scatter to original order); "
                    "q/a id = the quantize / attention stage with identity orders (no permutation); perm %% = (quant - q id + "
                    "attn - a id) / attn; TFLOP/s eq = 4*B*H*N^2*D / total\n");
    }
    return 0;
}
#endif

}  // namespace

void add_bench(CLI::App& app, Runner& run, const GlobalOptions& g) {
    auto o = std::make_shared<BenchOptions>();
    auto* sub = app.add_subcommand("bench", "Time the GPU runtime (whole op, random inputs) at several mask densities");
    sub->add_option("--pattern", o->pattern, "Take masks and orders from this pattern file")->check(CLI::ExistingFile);
    sub->add_option("--layer", o->layer, "Layer of the pattern (default 0)");
    sub->add_option("--slot", o->slot, "Timestep slot of the pattern (default 0)");
    sub->add_option("--batch", o->batch, "Batch size (default 1)");
    sub->add_option("--heads", o->heads, "Heads (default 48; ignored with --pattern)");
    sub->add_option("--tokens", o->tokens, "Sequence length (default 17776 = 226 text + 13x30x45 video)");
    sub->add_option("--grid", o->grid, "Video grid F,H,W (default 13,30,45 at 17776 tokens)")->delimiter(',');
    sub->add_option("--text", o->text, "Text tokens (default 226 at 17776 tokens, else 0)");
    sub->add_option("--head-dim", o->head_dim, "Head dim: 64 (default) or 128");
    sub->add_option("--densities", o->densities, "Random mask densities (default 1,0.5,0.3,0.2)")->delimiter(',');
    sub->add_option("--mask-rows", o->mask_rows,
                    "Random masks: one draw per group of this many 64-row tile rows (default 1; 2 gives 128 x 64 masks)");
    sub->add_option("--dtype", o->dtype, "Input dtype (default bf16)")->type_name(choice_type({"bf16", "fp16", "fp32"}));
    sub->add_option("--iters", o->iters, "Timed runs (median reported)");
    sub->add_option("--warmup", o->warmup, "Untimed runs first");
    sub->add_option("--seed", o->seed, "Seed for inputs, masks and orders");
    sub->add_option("--pv-format", o->pv_formats,
                    "PV format forced on every head: int8, fp16, fp8_e4m3 (Hopper), or a list (int8,fp16) to time each in one run "
                    "(default: the plan's own per-head formats)")
        ->delimiter(',');
    sub->add_option("--qk-bits", o->qk_bits,
                    "QK bit width forced on every head: 8 (INT8), 16 (16-bit QK, Hopper), or a list (8,16) to time each "
                    "(default: the plan's own per-head widths)")
        ->delimiter(',');
    sub->add_flag("--json", o->json, "One JSON object instead of the table");
    sub->callback([&run, &g, o] {
#ifdef PARO_HAVE_CUDA
        run = with_option_names({{"dtype", "--dtype"}}, [o, &g] { return run_bench(*o, g); });
#else
        (void)g;
        run = []() -> int {
            throw NoDeviceError("GPU: this paro was built without the CUDA runtime (no nvcc at build time); paro bench needs a CUDA GPU");
        };
#endif
    });
}

}  // namespace paro::cli
