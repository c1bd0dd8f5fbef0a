// The CUDA runtime against the fp32 references. "[.gpu]" tests are hidden (CI has no GPU); run them
// on a GPU machine with `paro_gpu_tests "[gpu]"`. The others run everywhere.
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "catch.hpp"
#include "test_helpers.hpp"
#include "paro/attention_reference.hpp"
#include "paro/axis_order.hpp"
#include "paro/block_mask.hpp"
#include "paro/pattern.hpp"
#include "paro/pv_format.hpp"
#include "paro/token_layout.hpp"
#include "gpu_helpers.hpp"
#include "paro_runtime.h"
#include "plan_from_pattern.hpp"

using namespace paro;
using paro::gpu::DeviceBuffer;

namespace {

bool have_gpu() {
    int n = 0;
    return paro_device_check(&n) == PARO_OK && n > 0;
}

// Whether the runtime runs the Hopper kernels here (FP8 PV and 16-bit QK exist only there).
bool hopper_kernels() { return std::string(paro_attention_kernel_name()).rfind("wgmma", 0) == 0; }

// split_pairs: adjacent tile rows keep disjoint tiles: rows 4i and 4i + 1 the first and second half
// of the columns, rows 4i + 2 and 4i + 3 alternate columns (what a kernel that shares K/V between
// rows must get right: bench/gpu/NOTES.md, v19). dense_heads: heads 4i and 4i + 1 full, the others
// random50 (a layer whose dense triples run ahead of its other rows, attention_sm90.cu; with mixed
// PV formats, dense heads of both). dense_edges: where a head's tail triple (runtime.cpp,
// schedule_items) is formed and where not: heads 4i full; 4i + 1 full but the last row random50;
// 4i + 2 full but row nb - 3 random50; 4i + 3 random50 but the last three rows full. same_triples:
// in even heads rows 3j .. 3j + 2 keep the same random tiles (sparse triples, runtime.cpp) and the
// last nb % 3 rows those of the row before them (a sparse tail triple); in odd heads rows 3j + 1 ..
// 3j + 3 do (runs that do not start at a multiple of 3; row 0 alone, no tail triple).
enum class MaskKind { full, empty, random50, random20, one_per_row, split_pairs, dense_heads, dense_edges, same_triples };

struct Config {
    TokenLayout layout;
    int heads = 6, batch = 1, head_dim = 64;
    MaskKind mask = MaskKind::random50;
    paro_dtype dtype = PARO_FLOAT16;
    float q_sigma = 1.f, k_sigma = 1.f;
    paro_pv_format pv = PARO_PV_INT8;  // every head's (paro_plan_set_pv_format)
    bool mixed_pv = false;  // odd heads mixed_with, even heads INT8 PV (per-head array)
    paro_pv_format mixed_with = PARO_PV_FP16;
    int legacy_pv_bits = 0;  // nonzero: every head set by the deprecated paro_plan_set_pv_bits, not pv
    int qk_bits = 8;         // every head's (paro_plan_set_qk_bits; 16: 16-bit QK, Hopper only)
    bool mixed_qk = false;   // heads 2, 3 (mod 4) qk_bits 16, the others 8 (per-head array; with mixed_pv: 4 variants)
    bool via_pattern = false;  // the plan from an in-memory pattern file's data (plan_from_pattern), not the C API
    // Adversarial V: one token (a third of the way in) x v_outlier in every channel, and the text
    // tokens x v_text_scale (attention sinks and text tokens of another norm); 1 = plain N(0, 1).
    float v_outlier = 1.f, v_text_scale = 1.f;
    float qk_text_scale = 1.f;  // text tokens' q and k x this (text of another norm than the video)
    // K plus +-k_channel_offset in every channel (sign by head and channel): the common offset that
    // smooth_k removes before INT8 quantization.
    float k_channel_offset = 0.f;
    bool smooth_k = true;
};

std::string describe(const Config& c) {
    const char* mk[] = {"full",        "empty",       "random50",   "random20",
                        "one per row", "split pairs", "dense heads", "dense edges", "same triples"};
    static_assert(std::size(mk) == size_t(MaskKind::same_triples) + 1);
    const char* dt[] = {"fp32", "fp16", "bf16"};
    return c.layout.describe() + " D" + std::to_string(c.head_dim) + " B" + std::to_string(c.batch) + " " +
           mk[int(c.mask)] + " " + dt[int(c.dtype)] + " qsigma " + std::to_string(c.q_sigma) +
           " ksigma " + std::to_string(c.k_sigma) +
           (c.mixed_pv ? std::string(" PV int8/") + to_string(static_cast<PvFormat>(c.mixed_with)) + " by head"
            : c.legacy_pv_bits ? " pv_bits " + std::to_string(c.legacy_pv_bits)
                               : std::string(" PV ") + to_string(static_cast<PvFormat>(c.pv))) +
           (c.v_outlier != 1.f || c.v_text_scale != 1.f
                ? " V outlier x" + std::to_string(c.v_outlier) + " text x" + std::to_string(c.v_text_scale)
                : "") +
           (c.qk_text_scale != 1.f ? " qk text x" + std::to_string(c.qk_text_scale) : "") +
           (c.mixed_qk ? " QK 8/16 by head" : c.qk_bits != 8 ? " QK " + std::to_string(c.qk_bits) + " bits" : "") +
           (c.k_channel_offset != 0.f ? " K offset " + std::to_string(c.k_channel_offset) : "") +
           (c.smooth_k ? "" : " smooth_k off") + (c.via_pattern ? " (plan from a pattern)" : "");
}

// Host-side plan data: every head gets order (head % 6), masks per head.
struct HostPlan {
    std::vector<uint8_t> orders, masks;
    int64_t nb = 0;
    size_t mask_bytes = 0;
    paro_plan_desc desc{};
    bool get(int h, int64_t r, int64_t c) const {
        const int64_t t = r * nb + c;
        return (masks[size_t(h) * mask_bytes + size_t(t >> 3)] >> (t & 7)) & 1u;
    }
};

HostPlan make_host_plan(const Config& c, unsigned seed) {
    HostPlan p;
    p.nb = (c.layout.tokens() + 63) / 64;
    p.mask_bytes = size_t((p.nb * p.nb + 7) / 8);
    p.orders.resize(size_t(c.heads));
    for (int h = 0; h < c.heads; ++h) p.orders[h] = uint8_t(h % 6);
    p.masks.assign(p.mask_bytes * c.heads, 0);
    std::mt19937 rng(seed);
    std::uniform_real_distribution<double> U(0, 1);
    for (int h = 0; h < c.heads; ++h)
        for (int64_t r = 0; r < p.nb; ++r)
            for (int64_t col = 0; col < p.nb; ++col) {
                bool keep = false;
                switch (c.mask) {
                    case MaskKind::full: keep = true; break;
                    case MaskKind::empty: keep = false; break;
                    case MaskKind::random50: keep = r == col || U(rng) < 0.5; break;
                    case MaskKind::random20: keep = (r != 1) && U(rng) < 0.2; break;  // row 1 empty, others may be
                    case MaskKind::one_per_row: keep = false; break;  // below
                    case MaskKind::split_pairs:
                        keep = r % 4 < 2 ? (2 * col < p.nb) == (r % 2 == 0) : col % 2 == r % 2;
                        break;
                    case MaskKind::dense_heads: keep = h % 4 < 2 || r == col || U(rng) < 0.5; break;
                    case MaskKind::dense_edges: {
                        const int64_t random_row[] = {-1, p.nb - 1, p.nb - 3, -1};
                        const bool dense = h % 4 == 3 ? r >= p.nb - 3 : r != random_row[h % 4];
                        keep = dense || r == col || U(rng) < 0.5;
                        break;
                    }
                    case MaskKind::same_triples: {
                        const int64_t first = h % 2;  // of the run that row r is in
                        const bool tail = h % 2 == 0 && r >= 3 && r >= p.nb - p.nb % 3;
                        keep = ((r - first) % 3 != 0 && r > first) || tail ? p.get(h, r - 1, col)
                                                                          : col % 7 == (r / 3) % 7 || U(rng) < 0.3;
                        break;
                    }
                }
                if (keep) {
                    const int64_t t = r * p.nb + col;
                    p.masks[size_t(h) * p.mask_bytes + size_t(t >> 3)] |= uint8_t(1u << (t & 7));
                }
            }
    if (c.mask == MaskKind::one_per_row)  // one kept tile per row, anywhere in it
        for (int h = 0; h < c.heads; ++h)
            for (int64_t r = 0; r < p.nb; ++r) {
                const int64_t t = r * p.nb + std::uniform_int_distribution<int64_t>(0, p.nb - 1)(rng);
                p.masks[size_t(h) * p.mask_bytes + size_t(t >> 3)] |= uint8_t(1u << (t & 7));
            }
    p.desc.grid[0] = c.layout.grid[0];
    p.desc.grid[1] = c.layout.grid[1];
    p.desc.grid[2] = c.layout.grid[2];
    p.desc.text_tokens = c.layout.text_tokens;
    p.desc.text_suffix = c.layout.text_position == TextPosition::suffix;
    p.desc.block = 64;
    p.desc.layers = 1;
    p.desc.slots = 1;
    p.desc.heads = c.heads;
    p.desc.orders = p.orders.data();
    p.desc.masks = p.masks.data();
    return p;
}

gpu::PlanPtr upload(const HostPlan& hp) {
    paro_plan* p = nullptr;
    gpu::check(paro_plan_create(&hp.desc, &p), "paro_plan_create");
    return gpu::PlanPtr(p);
}

// Head h's PV format and QK bits under c (not legacy_pv_bits).
paro_pv_format head_pv(const Config& c, int h) { return c.mixed_pv && h % 2 ? c.mixed_with : c.mixed_pv ? PARO_PV_INT8 : c.pv; }
int head_qk_bits(const Config& c, int h) { return c.mixed_qk ? ((h / 2) % 2 ? 16 : 8) : c.qk_bits; }

// The plan of c: through the C API (paro_plan_create, then the per-head formats), or from a pattern
// holding the same orders, masks and formats (paro_plan_load's path).
gpu::PlanPtr make_plan(const Config& c, const HostPlan& hp) {
    if (c.via_pattern) {
        Pattern p;
        p.layout = c.layout;
        p.layers.resize(1);
        for (int h = 0; h < c.heads; ++h) {
            HeadPattern head;
            head.order = kAllOrders[hp.orders[size_t(h)]];
            BlockMask m(hp.nb);
            for (int64_t r = 0; r < hp.nb; ++r)
                for (int64_t col = 0; col < hp.nb; ++col)
                    if (hp.get(h, r, col)) m.set(r, col);
            head.masks.push_back(std::move(m));
            head.qk_bits = head_qk_bits(c, h);
            head.pv_format = static_cast<PvFormat>(head_pv(c, h));
            p.layers[0].heads.push_back(std::move(head));
        }
        paro_plan* plan = nullptr;
        gpu::check(gpu::plan_from_pattern(p, &plan), "plan_from_pattern");
        return gpu::PlanPtr(plan);
    }
    auto plan = upload(hp);
    std::vector<uint8_t> pv(size_t(c.heads)), qk(size_t(c.heads));
    for (int h = 0; h < c.heads; ++h) pv[size_t(h)] = uint8_t(head_pv(c, h)), qk[size_t(h)] = uint8_t(head_qk_bits(c, h));
    if (c.legacy_pv_bits)
        gpu::check(paro_plan_set_pv_bits(plan.get(), nullptr, c.legacy_pv_bits), "paro_plan_set_pv_bits");
    else if (c.mixed_pv)
        gpu::check(paro_plan_set_pv_format(plan.get(), pv.data(), PARO_PV_INT8), "paro_plan_set_pv_format");
    else if (c.pv != PARO_PV_INT8)
        gpu::check(paro_plan_set_pv_format(plan.get(), nullptr, c.pv), "paro_plan_set_pv_format");
    if (c.mixed_qk)
        gpu::check(paro_plan_set_qk_bits(plan.get(), qk.data(), 8), "paro_plan_set_qk_bits");
    else if (c.qk_bits != 8)
        gpu::check(paro_plan_set_qk_bits(plan.get(), nullptr, c.qk_bits), "paro_plan_set_qk_bits");
    return plan;
}

struct RunResult {
    std::vector<float> kernel, masked_ref;
};

// Runs the runtime and the GPU fp32 masked reference on the same random inputs.
RunResult run_config(const Config& c, unsigned seed, bool bnhd = false) {
    const int64_t n = c.layout.tokens(), D = c.head_dim;
    const size_t count = size_t(c.batch) * c.heads * n * D;
    const auto hp = make_host_plan(c, seed);
    auto plan = make_plan(c, hp);
    auto q = test::random_normal(count, seed + 1, c.q_sigma), k = test::random_normal(count, seed + 2, c.k_sigma);
    auto v = test::random_normal(count, seed + 3);
    if (c.qk_text_scale != 1.f) {
        const int64_t text0 = c.layout.text_position == TextPosition::suffix ? n - c.layout.text_tokens : 0;
        for (int64_t bh = 0; bh < int64_t(c.batch) * c.heads; ++bh)
            for (int64_t t = text0; t < text0 + c.layout.text_tokens; ++t)
                for (int64_t d = 0; d < D; ++d) {
                    q[size_t((bh * n + t) * D + d)] *= c.qk_text_scale;
                    k[size_t((bh * n + t) * D + d)] *= c.qk_text_scale;
                }
    }
    if (c.k_channel_offset != 0.f) {
        for (int64_t bh = 0; bh < int64_t(c.batch) * c.heads; ++bh)
            for (int64_t t = 0; t < n; ++t)
                for (int64_t d = 0; d < D; ++d)
                    k[size_t((bh * n + t) * D + d)] += ((bh * 7 + d * 3) % 5 < 2 ? -1.f : 1.f) * c.k_channel_offset;
    }
    if (c.v_outlier != 1.f || c.v_text_scale != 1.f) {
        const int64_t text0 = c.layout.text_position == TextPosition::suffix ? n - c.layout.text_tokens : 0;
        for (int64_t bh = 0; bh < int64_t(c.batch) * c.heads; ++bh)
            for (int64_t t = 0; t < n; ++t) {
                const bool text = t >= text0 && t < text0 + c.layout.text_tokens;
                const float f = (t == n / 3 ? c.v_outlier : 1.f) * (text ? c.v_text_scale : 1.f);
                for (int64_t d = 0; d < D; ++d) v[size_t((bh * n + t) * D + d)] *= f;
            }
    }
    DeviceBuffer dq(count * 4), dk(count * 4), dv(count * 4), dref(count * 4), dout32(count * 4);
    dq.upload(q.data(), count * 4);
    dk.upload(k.data(), count * 4);
    dv.upload(v.data(), count * 4);
    dref.fill_byte(0xff);
    gpu::check(paro_reference_attention(plan.get(), 0, 0, c.batch, c.heads, int(n), int(D), dq.as<float>(),
                                        dk.as<float>(), dv.as<float>(), dref.as<float>(), 0.f, nullptr),
               "reference");
    const size_t eb = c.dtype == PARO_FLOAT32 ? 4 : 2;
    DeviceBuffer tq(count * eb), tk(count * eb), tv(count * eb), to(count * eb);
    // Contiguous [B, H, N, D] in fp32 -> the runtime's dtype. For the BNHD case, the runtime reads
    // the same buffers through [B, N, H, D] strides, so the reference must see them transposed.
    gpu::convert_from_f32(dq.as<float>(), tq.get(), c.dtype, count);
    gpu::convert_from_f32(dk.as<float>(), tk.get(), c.dtype, count);
    gpu::convert_from_f32(dv.as<float>(), tv.get(), c.dtype, count);
    to.fill_byte(0xff);
    paro_attention_args a{};
    a.batch = c.batch;
    a.heads = c.heads;
    a.tokens = int(n);
    a.head_dim = int(D);
    a.dtype = c.dtype;
    int64_t sb = c.heads * n * D, sh = n * D, st = D;
    if (bnhd) {
        sh = D;
        st = c.heads * D;
    }
    a.q = {tq.get(), sb, sh, st};
    a.k = {tk.get(), sb, sh, st};
    a.v = {tv.get(), sb, sh, st};
    a.out = {to.get(), sb, sh, st};
    a.smooth_k = c.smooth_k ? 1 : 0;
    REQUIRE(paro_can_implement(plan.get(), &a) == PARO_OK);
    size_t ws = 0;
    REQUIRE(paro_workspace_size(&a, &ws) == PARO_OK);
    DeviceBuffer w(ws);
    w.fill_byte(0x7f);
    gpu::check(paro_attention(plan.get(), &a, w.get(), ws, nullptr), "paro_attention");
    gpu::convert_to_f32(to.get(), c.dtype, dout32.as<float>(), count);
    gpu::check(paro_stream_check(nullptr), "kernels");
    RunResult r;
    r.kernel.resize(count);
    r.masked_ref.resize(count);
    dout32.download(r.kernel.data(), count * 4);
    dref.download(r.masked_ref.data(), count * 4);
    if (bnhd) {  // kernel output is [B, N, H, D]: bring it to [B, H, N, D]
        std::vector<float> t(count);
        for (int b = 0; b < c.batch; ++b)
            for (int h = 0; h < c.heads; ++h)
                for (int64_t i = 0; i < n; ++i)
                    std::memcpy(&t[((size_t(b) * c.heads + h) * n + i) * D],
                                &r.kernel[((size_t(b) * n + i) * c.heads + h) * D], D * 4);
        // ...and the reference saw the buffer as [B, H, N, D] although it holds [B, N, H, D] data:
        // recompute the reference on the transposed inputs.
        std::vector<float> tq2(count), tk2(count), tv2(count);
        for (int b = 0; b < c.batch; ++b)
            for (int h = 0; h < c.heads; ++h)
                for (int64_t i = 0; i < n; ++i) {
                    const size_t dst = ((size_t(b) * c.heads + h) * n + i) * D;
                    const size_t src = ((size_t(b) * n + i) * c.heads + h) * D;
                    std::memcpy(&tq2[dst], &q[src], D * 4);
                    std::memcpy(&tk2[dst], &k[src], D * 4);
                    std::memcpy(&tv2[dst], &v[src], D * 4);
                }
        dq.upload(tq2.data(), count * 4);
        dk.upload(tk2.data(), count * 4);
        dv.upload(tv2.data(), count * 4);
        gpu::check(paro_reference_attention(plan.get(), 0, 0, c.batch, c.heads, int(n), int(D), dq.as<float>(),
                                            dk.as<float>(), dv.as<float>(), dref.as<float>(), 0.f, nullptr),
                   "reference");
        gpu::check(paro_stream_check(nullptr), "reference");
        dref.download(r.masked_ref.data(), count * 4);
        r.kernel = std::move(t);
    }
    return r;
}

// The worst errors check_accuracy has seen, for the tests that report them.
struct WorstError {
    double cosine = 1, rel_l1 = 0;
    void add(double cos, double l1) { cosine = std::min(cosine, cos), rel_l1 = std::max(rel_l1, l1); }
};

WorstError check_accuracy(const Config& c, const RunResult& r, double min_cos = 0.9995, double max_l1 = 0.03) {
    const int64_t n = c.layout.tokens(), D = c.head_dim;
    WorstError worst;
    for (int b = 0; b < c.batch; ++b)
        for (int h = 0; h < c.heads; ++h) {
            const size_t off = (size_t(b) * c.heads + h) * n * D, cnt = size_t(n * D);
            const auto e = compare_outputs(r.kernel.data() + off, r.masked_ref.data() + off, cnt);
            INFO(describe(c) << " batch " << b << " head " << h << " order " << to_string(AxisOrder(h % 6))
                             << ": cosine " << e.cosine << " rel L1 " << e.rel_l1 << " max abs " << e.max_abs);
            REQUIRE(e.finite);
            if (c.mask == MaskKind::empty) {
                for (size_t i = 0; i < cnt; ++i) REQUIRE(r.kernel[off + i] == 0.f);
                continue;
            }
            CHECK(e.cosine >= min_cos);
            CHECK(e.rel_l1 <= max_l1);
            worst.add(e.cosine, e.rel_l1);
        }
    return worst;
}

}  // namespace

// ---------------------------------------------------------------- runs everywhere (CI)

TEST_CASE("runtime: compiled, and reports the GPU state cleanly", "[runtime]") {
    CHECK(paro_runtime_api_version() == PARO_RUNTIME_API_VERSION);
    CHECK(std::string(paro_status_string(PARO_ERROR_NO_GPU)) == "no GPU");
    int n = -1;
    const paro_status s = paro_device_check(&n);
    REQUIRE((s == PARO_OK || s == PARO_ERROR_NO_GPU));
    const std::string message = paro_last_error();
    // Argument checks need no device.
    paro_attention_args a{};
    a.batch = 1;
    a.heads = 1;
    a.tokens = 100;
    a.head_dim = 96;
    size_t ws = 0;
    CHECK(paro_workspace_size(&a, &ws) == PARO_ERROR_UNSUPPORTED);  // as paro_can_implement says it
    a.head_dim = 64;
    a.tokens = 65535 * 64 + 1;  // past 65535 tiles a side: refused before any size arithmetic
    CHECK(paro_workspace_size(&a, &ws) == PARO_ERROR_INVALID_ARGUMENT);
    a.tokens = 100;
    CHECK(paro_workspace_size(&a, &ws) == PARO_OK);
    CHECK(ws >= size_t(3 * 128 * 64));
    CHECK(paro_can_implement(nullptr, &a) == PARO_ERROR_INVALID_ARGUMENT);
    CHECK(paro_attention(nullptr, &a, nullptr, 0, nullptr) == PARO_ERROR_INVALID_ARGUMENT);
    CHECK(paro_plan_set_pv_bits(nullptr, nullptr, 16) == PARO_ERROR_INVALID_ARGUMENT);
    CHECK(paro_plan_set_pv_format(nullptr, nullptr, PARO_PV_FP16) == PARO_ERROR_INVALID_ARGUMENT);
    {
        // A bad in-memory description is an argument error naming the field, whether or not there is a GPU.
        const uint8_t orders[1] = {0};
        paro_plan_desc d{};
        d.grid[0] = 0, d.grid[1] = 1, d.grid[2] = 100;
        d.block = 64;
        d.layers = d.slots = d.heads = 1;
        d.orders = orders;
        paro_plan* p = nullptr;
        CHECK(paro_plan_create(&d, &p) == PARO_ERROR_INVALID_ARGUMENT);
        const std::string why = paro_last_error();
        CHECK(why.find("paro_plan_desc: grid") != std::string::npos);
        CHECK(why.find("file") == std::string::npos);
        d.grid[0] = 1;
        d.heads = 0;
        CHECK(paro_plan_create(&d, &p) == PARO_ERROR_INVALID_ARGUMENT);
        CHECK(std::string(paro_last_error()).find("heads 0") != std::string::npos);
        CHECK(p == nullptr);
    }
    if (s == PARO_ERROR_NO_GPU) {
        CHECK(message.find("no CUDA device") != std::string::npos);
        const uint8_t orders[1] = {0};
        paro_plan_desc d{};
        d.grid[0] = 1, d.grid[1] = 1, d.grid[2] = 100;
        d.block = 64;
        d.layers = d.slots = d.heads = 1;
        d.orders = orders;
        paro_plan* p = nullptr;
        CHECK(paro_plan_create(&d, &p) == PARO_ERROR_NO_GPU);
        CHECK(p == nullptr);
        float dummy = 0;
        CHECK(paro_reference_attention(nullptr, 0, 0, 1, 1, 100, 64, &dummy, &dummy, &dummy, &dummy, 0.f, nullptr) ==
              PARO_ERROR_NO_GPU);
        CHECK(paro_plan_load("/nonexistent.h5", &p) == PARO_ERROR_NO_GPU);
    }
}

// ---------------------------------------------------------------- GPU only

TEST_CASE("gpu: argument checks before launch", "[.gpu][small]") {
    REQUIRE(have_gpu());
    Config c;
    c.layout.grid = {2, 3, 20};
    c.layout.text_tokens = 5;
    const auto hp = make_host_plan(c, 1);
    auto plan = upload(hp);
    paro_plan_info info{};
    REQUIRE(paro_plan_get_info(plan.get(), &info) == PARO_OK);
    CHECK(info.tokens == 125);
    CHECK(info.tiles_per_side == 2);
    DeviceBuffer buf(1 << 20);
    paro_attention_args a{};
    a.batch = 1;
    a.heads = c.heads;
    a.tokens = 125;
    a.head_dim = 64;
    a.dtype = PARO_FLOAT16;
    a.q = a.k = a.v = a.out = {buf.get(), 0, 125 * 64, 64};
    CHECK(paro_can_implement(plan.get(), &a) == PARO_OK);
    a.tokens = 126;
    CHECK(paro_can_implement(plan.get(), &a) == PARO_ERROR_INVALID_ARGUMENT);
    a.tokens = 125;
    a.head_dim = 80;
    CHECK(paro_can_implement(plan.get(), &a) == PARO_ERROR_UNSUPPORTED);
    a.head_dim = 64;
    a.layer = 1;
    CHECK(paro_can_implement(plan.get(), &a) == PARO_ERROR_INVALID_ARGUMENT);
    a.layer = 0;
    a.q.data = static_cast<char*>(buf.get()) + 2;
    CHECK(paro_can_implement(plan.get(), &a) == PARO_ERROR_INVALID_ARGUMENT);
    a.q.data = buf.get();
    a.k.stride_token = 65;
    CHECK(paro_can_implement(plan.get(), &a) == PARO_ERROR_INVALID_ARGUMENT);
    a.k.stride_token = 64;
    CHECK(paro_attention(plan.get(), &a, buf.get(), 16, nullptr) == PARO_ERROR_INVALID_ARGUMENT);  // workspace
    // Output rows that overlap are refused (they would be written by several CTAs at once); inputs may
    // share memory, and q may be the output (the quantize kernel reads it before attention writes).
    REQUIRE(c.heads > 1);
    a.out.stride_token = 32;
    CHECK(paro_can_implement(plan.get(), &a) == PARO_ERROR_INVALID_ARGUMENT);
    CHECK(std::string(paro_last_error()).find("out: strides make rows overlap") != std::string::npos);
    a.out.stride_token = 0;
    CHECK(paro_can_implement(plan.get(), &a) == PARO_ERROR_INVALID_ARGUMENT);
    a.out = {buf.get(), 0, 0, 64};  // head-major rows: token t of head h at (t + h) * 64 would repeat ...
    a.out.stride_head = 64;         // ... rows of head 0 in head 1
    CHECK(paro_can_implement(plan.get(), &a) == PARO_ERROR_INVALID_ARGUMENT);
    a.out = {buf.get(), 0, 64, 125 * 64};  // [B, N, H, D]-like with the head stride outermost: no overlap
    a.out.stride_head = 64;
    a.out.stride_token = 64 * c.heads;
    CHECK(paro_can_implement(plan.get(), &a) == PARO_OK);
    a.k.stride_head = 0;  // inputs may repeat rows (a broadcast head)
    CHECK(paro_can_implement(plan.get(), &a) == PARO_OK);
    a.k.stride_head = 125 * 64;
    // paro_permute: the dtype, the row size and the two views are checked; in place is refused.
    const paro_tensor in{buf.get(), 0, 125 * 64, 64};
    const paro_tensor out{static_cast<char*>(buf.get()) + (1 << 19), 0, 125 * 64, 64};
    CHECK(paro_permute(plan.get(), 0, 0, PARO_FLOAT16, 1, c.heads, 125, 64, in, out, nullptr) == PARO_OK);
    CHECK(paro_permute(plan.get(), 0, 0, static_cast<paro_dtype>(7), 1, c.heads, 125, 64, in, out, nullptr) ==
          PARO_ERROR_INVALID_ARGUMENT);
    CHECK(paro_permute(plan.get(), 0, 0, PARO_FLOAT16, 1, c.heads, 125, 0, in, out, nullptr) ==
          PARO_ERROR_INVALID_ARGUMENT);
    CHECK(paro_permute(plan.get(), 0, 0, PARO_FLOAT16, 1, c.heads, 125, 64, in, in, nullptr) ==
          PARO_ERROR_INVALID_ARGUMENT);
    CHECK(std::string(paro_last_error()).find("overlap") != std::string::npos);
    const paro_tensor shifted{static_cast<char*>(buf.get()) + 16 * 64, 0, 125 * 64, 64};  // 8 rows later
    CHECK(paro_permute(plan.get(), 0, 0, PARO_FLOAT16, 1, c.heads, 125, 64, in, shifted, nullptr) ==
          PARO_ERROR_INVALID_ARGUMENT);
    gpu::check(paro_stream_check(nullptr), "permute");
}

TEST_CASE("gpu: permute then inverse permute is exact, and matches the CPU permutation", "[.gpu][small]") {
    REQUIRE(have_gpu());
    for (auto pos : {TextPosition::prefix, TextPosition::suffix})
        for (int D : {64, 128})
            for (paro_dtype dt : {PARO_FLOAT32, PARO_FLOAT16, PARO_BFLOAT16}) {
                Config c;
                c.layout.grid = {3, 5, 7};
                c.layout.text_tokens = 13;
                c.layout.text_position = pos;
                c.head_dim = D;
                c.batch = 2;
                const auto hp = make_host_plan(c, 7);
                auto plan = upload(hp);
                const int64_t n = c.layout.tokens();
                const size_t count = size_t(c.batch) * c.heads * n * D, eb = dt == PARO_FLOAT32 ? 4 : 2;
                DeviceBuffer in(count * eb), mid(count * eb), back(count * eb);
                gpu::fill_random(in.get(), dt, count, 11, 1.f);
                mid.fill_byte(0xff);
                back.fill_byte(0xff);
                const paro_tensor ti{in.get(), c.heads * n * D, n * D, D}, tm{mid.get(), c.heads * n * D, n * D, D},
                    tb{back.get(), c.heads * n * D, n * D, D};
                gpu::check(paro_permute(plan.get(), 0, 0, dt, c.batch, c.heads, int(n), D, ti, tm, nullptr), "fwd");
                gpu::check(paro_permute(plan.get(), 0, 1, dt, c.batch, c.heads, int(n), D, tm, tb, nullptr), "inv");
                gpu::check(paro_stream_check(nullptr), "permute");
                std::vector<uint8_t> hin(count * eb), hmid(count * eb), hback(count * eb);
                in.download(hin.data(), hin.size());
                mid.download(hmid.data(), hmid.size());
                back.download(hback.data(), hback.size());
                REQUIRE(std::memcmp(hin.data(), hback.data(), hin.size()) == 0);
                const size_t row = size_t(D) * eb;
                for (int b = 0; b < c.batch; ++b)
                    for (int h = 0; h < c.heads; ++h) {
                        const auto perm = make_permutation(c.layout, AxisOrder(h % 6));
                        const size_t base = (size_t(b) * c.heads + h) * n * row;
                        for (int64_t p = 0; p < n; ++p)
                            REQUIRE(std::memcmp(&hmid[base + p * row], &hin[base + perm.gather[p] * row], row) == 0);
                    }
            }
}

TEST_CASE("gpu: fp32 reference kernel matches the CPU reference", "[.gpu][small]") {
    REQUIRE(have_gpu());
    for (int D : {64, 128})
        for (MaskKind mk : {MaskKind::full, MaskKind::random50, MaskKind::random20}) {
            Config c;
            c.layout.grid = {3, 5, 7};
            c.layout.text_tokens = 13;
            c.layout.text_position = TextPosition::suffix;
            c.head_dim = D;
            c.mask = mk;
            const auto hp = make_host_plan(c, 3);
            auto plan = upload(hp);
            const int64_t n = c.layout.tokens();
            const size_t count = size_t(c.heads) * n * D;
            const auto q = test::random_normal(count, 21, 2.f), k = test::random_normal(count, 22), v = test::random_normal(count, 23);
            DeviceBuffer dq(count * 4), dk(count * 4), dv(count * 4), dm(count * 4), dd(count * 4);
            dq.upload(q.data(), count * 4);
            dk.upload(k.data(), count * 4);
            dv.upload(v.data(), count * 4);
            gpu::check(paro_reference_attention(plan.get(), 0, 0, 1, c.heads, int(n), D, dq.as<float>(), dk.as<float>(),
                                                dv.as<float>(), dm.as<float>(), 0.f, nullptr),
                       "masked");
            gpu::check(paro_reference_attention(nullptr, 0, 0, 1, c.heads, int(n), D, dq.as<float>(), dk.as<float>(),
                                                dv.as<float>(), dd.as<float>(), 0.f, nullptr),
                       "dense");
            gpu::check(paro_stream_check(nullptr), "reference");
            std::vector<float> gm(count), gd(count), cm(size_t(n * D)), cd(size_t(n * D));
            dm.download(gm.data(), count * 4);
            dd.download(gd.data(), count * 4);
            for (int h = 0; h < c.heads; ++h) {
                const size_t off = size_t(h) * n * D;
                const auto perm = make_permutation(c.layout, AxisOrder(h % 6));
                BlockMask bm;
                REQUIRE(BlockMask::from_bytes(hp.nb,
                                              std::vector<uint8_t>(hp.masks.begin() + h * hp.mask_bytes,
                                                                   hp.masks.begin() + (h + 1) * hp.mask_bytes),
                                              bm));
                attention_masked(q.data() + off, k.data() + off, v.data() + off, n, D, D, 1.0 / std::sqrt(D), perm, bm,
                                 64, cm.data());
                attention_dense(q.data() + off, k.data() + off, v.data() + off, n, D, D, 1.0 / std::sqrt(D), cd.data());
                const auto em = compare_outputs(gm.data() + off, cm.data(), cm.size());
                const auto ed = compare_outputs(gd.data() + off, cd.data(), cd.size());
                INFO("D " << D << " head " << h << " masked rel_l2 " << em.rel_l2 << " dense rel_l2 " << ed.rel_l2);
                CHECK(em.rel_l2 < 1e-5);
                CHECK(ed.rel_l2 < 1e-5);
            }
        }
}

TEST_CASE("gpu: runtime vs fp32 masked reference, small", "[.gpu][small][race]") {
    REQUIRE(have_gpu());
    Config c;
    c.layout.grid = {3, 5, 7};
    c.layout.text_tokens = 13;  // N = 118: ragged last tile
    for (int D : {64, 128}) {
        c.head_dim = D;
        check_accuracy(c, run_config(c, 5));
    }
}

namespace {

struct SweepLayout {
    std::array<int64_t, 3> grid;
    int64_t text;
    TextPosition pos;
};

// Layouts every accuracy sweep covers: ragged tiles, text prefix/suffix/none, exactly one tile.
const std::vector<SweepLayout> kSweepLayouts = {{{3, 5, 7}, 13, TextPosition::prefix},     // 118
                                                {{4, 12, 16}, 32, TextPosition::suffix},   // 800
                                                {{2, 9, 11}, 0, TextPosition::prefix},     // 198
                                                {{5, 16, 16}, 226, TextPosition::prefix},  // 1506
                                                {{3, 10, 22}, 40, TextPosition::prefix},   // 700: 11 tiles
                                                {{1, 1, 64}, 0, TextPosition::prefix}};    // one tile

// Every layout x head dim x mask kind x dtype against the fp32 masked reference.
WorstError accuracy_sweep(const std::vector<SweepLayout>& layouts, std::initializer_list<paro_dtype> dtypes,
                          paro_pv_format pv, unsigned seed, double min_cos = 0.9995, double max_l1 = 0.03,
                          int qk_bits = 8) {
    WorstError worst;
    for (const auto& l : layouts)
        for (int D : {64, 128})
            for (MaskKind mk : {MaskKind::full, MaskKind::empty, MaskKind::random50, MaskKind::random20,
                                MaskKind::split_pairs, MaskKind::dense_heads, MaskKind::dense_edges,
                                MaskKind::same_triples})
                for (paro_dtype dt : dtypes) {
                    Config c;
                    c.layout.grid = l.grid;
                    c.layout.text_tokens = l.text;
                    c.layout.text_position = l.pos;
                    c.head_dim = D;
                    c.mask = mk;
                    c.dtype = dt;
                    c.pv = pv;
                    c.qk_bits = qk_bits;
                    const WorstError w = check_accuracy(c, run_config(c, seed++), min_cos, max_l1);
                    worst.add(w.cosine, w.rel_l1);
                }
    return worst;
}

}  // namespace

TEST_CASE("gpu: runtime vs fp32 masked reference, every order/layout/mask/dtype/head dim", "[.gpu][sweep]") {
    REQUIRE(have_gpu());
    accuracy_sweep(kSweepLayouts, {PARO_FLOAT16, PARO_BFLOAT16, PARO_FLOAT32}, PARO_PV_INT8, 100);
}

TEST_CASE("gpu: runtime with peaked attention, batch 2 and [B, N, H, D] strides", "[.gpu][sweep]") {
    REQUIRE(have_gpu());
    Config c;
    c.layout.grid = {4, 12, 16};
    c.layout.text_tokens = 32;
    c.batch = 2;
    for (float sigma : {1.f, 3.f}) {
        c.q_sigma = sigma;
        for (int D : {64, 128}) {
            c.head_dim = D;
            check_accuracy(c, run_config(c, 900 + D, false));
            check_accuracy(c, run_config(c, 950 + D, true));
        }
    }
}

// Large Q and K make the score step (q_scale * k_scale) large, and with it the rounding of the
// exponent's bias (~0.75 * step, log2 units): without a guard the largest P' of a tile can round past
// 255 and wrap as a byte (measured on H100 without the guard: NaN outputs for the first seed below,
// D 64, full mask). At such steps the INT8 QK product itself costs accuracy (cosine ~0.997 against
// fp32 with either PV), so the INT8-PV result is held to the fp16-PV one on the same inputs: P' and V
// may add little to the QK error.
namespace {

// c against the same inputs with fp16 PV: every head finite, cosine >= 0.99, and rel L1 within 1.5x
// the fp16-PV one plus 0.005, with `own_l1` added in quadrature: the PV format's own rounding error,
// independent of the QK error (0 for INT8 PV; FP8's e4m3 P' and V cost up to ~4% rel L1 on ordinary
// inputs, which a bound relative to fp16 PV must allow once fp16 PV's error is small). Returns c's
// worst error.
WorstError held_to_fp16_pv(const Config& c, unsigned seed, double own_l1 = 0) {
    Config c16 = c;
    c16.pv = PARO_PV_FP16;
    const RunResult r = run_config(c, seed), r16 = run_config(c16, seed);
    const int64_t cnt = c.layout.tokens() * c.head_dim;
    WorstError worst;
    for (int h = 0; h < c.heads; ++h) {
        const size_t off = size_t(h * cnt);
        const auto e = compare_outputs(r.kernel.data() + off, r.masked_ref.data() + off, size_t(cnt));
        const auto e16 = compare_outputs(r16.kernel.data() + off, r16.masked_ref.data() + off, size_t(cnt));
        INFO(describe(c) << " seed " << seed << " head " << h << ": cosine " << e.cosine << " rel L1 " << e.rel_l1
                         << ", fp16 PV cosine " << e16.cosine << " rel L1 " << e16.rel_l1);
        REQUIRE(e.finite);
        REQUIRE(e16.finite);
        CHECK(e.cosine >= 0.99);
        CHECK(e.rel_l1 <= std::hypot(1.5 * e16.rel_l1, own_l1) + 0.005);
        worst.add(e.cosine, e.rel_l1);
    }
    return worst;
}

}  // namespace

TEST_CASE("gpu: runtime with large-magnitude Q and K", "[.gpu][sweep]") {
    REQUIRE(have_gpu());
    for (int D : {64, 128})
        for (MaskKind mk : {MaskKind::full, MaskKind::random50})
            for (unsigned seed : {2308u + D + unsigned(mk), 2358u + D + unsigned(mk)}) {
                Config c;
                c.layout.grid = {4, 12, 16};
                c.layout.text_tokens = 32;
                c.head_dim = D;
                c.mask = mk;
                c.q_sigma = c.k_sigma = 6.f;
                held_to_fp16_pv(c, seed);
            }
}

// ---------------------------------------------------------------- fp16-PV path (PARO_PV_FP16)

// Token-localized V outliers must cost only their own tiles' precision (a quantization whose V scale
// is shared across tiles, e.g. a per-channel abs max over all tokens, fails this).
static Config outlier_v_config(int D, paro_pv_format pv) {
    Config c;
    c.layout.grid = {4, 12, 16};
    c.layout.text_tokens = 32;
    c.head_dim = D;
    c.pv = pv;
    c.mask = MaskKind::full;
    c.v_outlier = 50.f;
    c.v_text_scale = 8.f;
    return c;
}

TEST_CASE("gpu: runtime with outlier V tokens", "[.gpu][sweep]") {
    REQUIRE(have_gpu());
    for (int D : {64, 128})
        for (paro_pv_format pv : {PARO_PV_INT8, PARO_PV_FP16}) {
            const Config c = outlier_v_config(D, pv);
            INFO(describe(c));
            check_accuracy(c, run_config(c, 2100 + D + (pv == PARO_PV_FP16 ? 16 : 8)));
        }
}

// smooth_k at a length where the K mean is taken over every other token only (N 5,026: stride 2,
// prep.cu): K with a common offset of 8 standard deviations per channel must come out about as
// accurate as the same K without the offset (a mean off by a fraction of the offset would leave it
// in the quantization range), and clearly more accurate than with smooth_k off.
TEST_CASE("gpu: smooth_k's sampled K mean centres K at long sequences", "[.gpu]") {
    REQUIRE(have_gpu());
    Config c;
    c.layout.grid = {4, 30, 40};
    c.layout.text_tokens = 226;
    c.heads = 2;
    for (paro_pv_format pv : {PARO_PV_INT8, PARO_PV_FP16}) {
        c.pv = pv;
        for (int D : {64, 128}) {
            c.head_dim = D;
            c.k_channel_offset = 0.f;
            c.smooth_k = true;
            const WorstError plain = check_accuracy(c, run_config(c, 20));
            c.k_channel_offset = 8.f;
            const WorstError centred = check_accuracy(c, run_config(c, 20));
            const std::string what = describe(c);
            c.smooth_k = false;
            const WorstError raw = check_accuracy(c, run_config(c, 20), -1.0, 1.0);
            WARN(what << ": rel L1 " << plain.rel_l1 << " without the offset, " << centred.rel_l1
                      << " with it and smooth_k, " << raw.rel_l1 << " without smooth_k");
            CHECK(centred.rel_l1 < 1.25 * plain.rel_l1);
            CHECK(raw.rel_l1 > 1.5 * centred.rel_l1);
        }
    }
}

TEST_CASE("gpu: fp16-PV runtime vs fp32 masked reference, small", "[.gpu][small][race]") {
    REQUIRE(have_gpu());
    Config c;
    c.layout.grid = {3, 5, 7};
    c.layout.text_tokens = 13;  // N = 118: ragged last tile
    c.pv = PARO_PV_FP16;
    for (int D : {64, 128}) {
        c.head_dim = D;
        check_accuracy(c, run_config(c, 7));
    }
    c.pv = PARO_PV_INT8;
    c.mixed_pv = true;  // both kernels in one call, each over its own heads
    for (int D : {64, 128}) {
        c.head_dim = D;
        check_accuracy(c, run_config(c, 8));
    }
    // Dense triples on shared stages (fp16 PV), then the other rows behind them (13 tile rows: 4 triples
    // and a tail triple per dense head; ragged last tile). Rows this long wrap every ring, so
    // each stage, its tile meta and v scales are refilled after consumers read them: fp16 PV, then
    // INT8 and fp16 PV heads in one call (on Hopper with both QK formats too: four variants).
    c.layout.grid = {4, 12, 16};
    c.layout.text_tokens = 35;
    c.mask = MaskKind::dense_heads;
    for (bool mixed : {false, true}) {
        c.mixed_pv = mixed;
        c.mixed_qk = mixed && hopper_kernels();
        c.pv = mixed ? PARO_PV_INT8 : PARO_PV_FP16;
        for (int D : {64, 128}) {
            c.head_dim = D;
            check_accuracy(c, run_config(c, mixed ? 10 : 9));
        }
    }
}

TEST_CASE("gpu: plan PV formats are checked", "[.gpu][small]") {
    REQUIRE(have_gpu());
    Config c;
    c.layout.grid = {1, 1, 100};
    auto plan = upload(make_host_plan(c, 1));
    for (paro_pv_format f : {PARO_PV_FP16, PARO_PV_FP8_E4M3, PARO_PV_INT8})
        CHECK(paro_plan_set_pv_format(plan.get(), nullptr, f) == PARO_OK);
    CHECK(paro_plan_set_pv_format(plan.get(), nullptr, static_cast<paro_pv_format>(3)) == PARO_ERROR_INVALID_ARGUMENT);
    std::vector<uint8_t> formats(size_t(c.heads), PARO_PV_FP16);
    formats[2] = 7;
    CHECK(paro_plan_set_pv_format(plan.get(), formats.data(), PARO_PV_INT8) == PARO_ERROR_INVALID_ARGUMENT);
    CHECK(std::string(paro_last_error()).find("layer 0 head 2") != std::string::npos);
}

// FP8 (e4m3) PV runs on Hopper (the wgmma kernels); elsewhere, and under the mma.sync override,
// the layers with FP8 heads are refused, never run with another format, and the plan's other
// layers still run. The same for 16-bit QK heads; setting QK bits keeps the PV formats and back.
TEST_CASE("gpu: fp8_e4m3 PV and 16-bit QK heads run on Hopper, are refused elsewhere", "[.gpu][small]") {
    REQUIRE(have_gpu());
    const bool hopper = hopper_kernels();
    const int heads = 4, tokens = 100;
    std::vector<uint8_t> orders(2 * heads, 0);
    paro_plan_desc d{};
    d.grid[0] = 1, d.grid[1] = 1, d.grid[2] = tokens;
    d.block = 64;
    d.layers = 2;
    d.slots = 1;
    d.heads = heads;
    d.orders = orders.data();
    paro_plan* p = nullptr;
    REQUIRE(paro_plan_create(&d, &p) == PARO_OK);
    gpu::PlanPtr plan(p);
    std::vector<uint8_t> formats(2 * heads, PARO_PV_INT8);
    formats[1] = PARO_PV_FP8_E4M3;  // layer 0, head 1
    REQUIRE(paro_plan_set_pv_format(plan.get(), formats.data(), PARO_PV_INT8) == PARO_OK);
    DeviceBuffer buf(1 << 20);
    paro_attention_args a{};
    a.batch = 1;
    a.heads = heads;
    a.tokens = tokens;
    a.head_dim = 64;
    a.dtype = PARO_FLOAT16;
    a.q = a.k = a.v = a.out = {buf.get(), 0, tokens * 64, 64};
    if (hopper) {
        CHECK(paro_can_implement(plan.get(), &a) == PARO_OK);
    } else {
        CHECK(paro_can_implement(plan.get(), &a) == PARO_ERROR_UNSUPPORTED);
        CHECK(std::string(paro_last_error()) ==
              "layer 0 has fp8_e4m3 PV heads; FP8 PV needs the Hopper kernels (compute capability 9.0, sm_90a code)");
        CHECK(paro_attention(plan.get(), &a, buf.get(), buf.bytes(), nullptr) == PARO_ERROR_UNSUPPORTED);
    }
    a.layer = 1;
    CHECK(paro_can_implement(plan.get(), &a) == PARO_OK);
    std::vector<uint8_t> bits(2 * heads, 8);
    bits[heads + 2] = 16;  // layer 1, head 2
    REQUIRE(paro_plan_set_qk_bits(plan.get(), bits.data(), 8) == PARO_OK);
    for (int layer : {0, 1}) {
        a.layer = layer;
        INFO("layer " << layer);
        if (hopper) {
            CHECK(paro_can_implement(plan.get(), &a) == PARO_OK);
        } else {
            CHECK(paro_can_implement(plan.get(), &a) == PARO_ERROR_UNSUPPORTED);
            CHECK(std::string(paro_last_error()) ==
                  (layer == 0 ? "layer 0 has fp8_e4m3 PV heads; FP8 PV needs the Hopper kernels (compute capability 9.0, sm_90a code)"
                              : "layer 1 has 16-bit QK heads; 16-bit QK needs the Hopper kernels (compute capability 9.0, sm_90a code)"));
        }
    }
    REQUIRE(paro_plan_set_pv_format(plan.get(), nullptr, PARO_PV_INT8) == PARO_OK);  // the QK bits stay
    a.layer = 0;
    CHECK(paro_can_implement(plan.get(), &a) == PARO_OK);
    a.layer = 1;
    CHECK(paro_can_implement(plan.get(), &a) == (hopper ? PARO_OK : PARO_ERROR_UNSUPPORTED));
}

TEST_CASE("gpu: plan QK bits are checked", "[.gpu][small]") {
    REQUIRE(have_gpu());
    Config c;
    c.layout.grid = {1, 1, 100};
    auto plan = upload(make_host_plan(c, 1));
    for (int bits : {16, 4, 8}) CHECK(paro_plan_set_qk_bits(plan.get(), nullptr, bits) == PARO_OK);
    for (int bits : {0, 12, 32, -8}) CHECK(paro_plan_set_qk_bits(plan.get(), nullptr, bits) == PARO_ERROR_INVALID_ARGUMENT);
    std::vector<uint8_t> bits(size_t(c.heads), 16);
    bits[3] = 7;
    CHECK(paro_plan_set_qk_bits(plan.get(), bits.data(), 8) == PARO_ERROR_INVALID_ARGUMENT);
    CHECK(std::string(paro_last_error()) == "qk_bits 7 of layer 0 head 3 (supported: 4, 8, 16)");
    CHECK(paro_plan_set_qk_bits(nullptr, nullptr, 16) == PARO_ERROR_INVALID_ARGUMENT);
}

// FP8 PV against the fp32 masked reference: every layout, head dim, mask and dtype; peaked
// attention, [B, N, H, D] strides, heads mixed with INT8; outlier V tokens; large Q and K. Prints
// the worst errors (bench/RESULTS.md). e4m3 keeps 4 significant bits of P' and V where INT8 P'
// keeps 8 of the large P that dominate a row: measured on H200, cosine >= 0.9991 and rel L1 <=
// 4.2% (INT8 PV: 0.9998, 1.7%), so FP8 is held to cosine 0.999 and rel L1 5%.
// kFp8OwnL1: e4m3's own rounding of P' and V, the sweep's worst rel L1 on ordinary inputs (4.01% on
// H200), which adds in quadrature to the QK error where that is large (held_to_fp16_pv).
constexpr double kFp8MinCos = 0.999, kFp8MaxL1 = 0.05, kFp8OwnL1 = 0.04;
TEST_CASE("gpu: fp8-PV runtime vs fp32 masked reference, sweeps and adversarial inputs", "[.gpu][sweep]") {
    REQUIRE(have_gpu());
    if (!hopper_kernels()) {
        WARN("FP8 PV runs on Hopper only: skipped here");
        return;
    }
    WorstError sweep = accuracy_sweep(kSweepLayouts, {PARO_FLOAT16, PARO_BFLOAT16, PARO_FLOAT32}, PARO_PV_FP8_E4M3, 500,
                                      kFp8MinCos, kFp8MaxL1);
    WorstError peaked, outlier, large;
    Config c;
    c.layout.grid = {4, 12, 16};
    c.layout.text_tokens = 32;
    c.batch = 2;
    for (bool mixed : {false, true}) {
        c.mixed_pv = mixed;
        c.mixed_with = PARO_PV_FP8_E4M3;
        c.pv = mixed ? PARO_PV_INT8 : PARO_PV_FP8_E4M3;
        for (float sigma : {1.f, 3.f})
            for (int D : {64, 128}) {
                c.q_sigma = sigma;
                c.head_dim = D;
                for (bool bnhd : {false, true}) {
                    const WorstError w =
                        check_accuracy(c, run_config(c, 2500 + D + (bnhd ? 50 : 0), bnhd), kFp8MinCos, kFp8MaxL1);
                    peaked.add(w.cosine, w.rel_l1);
                }
            }
    }
    for (int D : {64, 128}) {
        const Config o = outlier_v_config(D, PARO_PV_FP8_E4M3);
        const WorstError w = check_accuracy(o, run_config(o, 2600 + D), kFp8MinCos, kFp8MaxL1);
        outlier.add(w.cosine, w.rel_l1);
        // Large Q and K: held to fp16 PV on the same inputs, as INT8 PV is, plus e4m3's own rounding.
        Config l = o;
        l.v_outlier = l.v_text_scale = 1.f;
        l.q_sigma = l.k_sigma = 6.f;
        const WorstError wl = held_to_fp16_pv(l, 2700 + D, kFp8OwnL1);
        large.add(wl.cosine, wl.rel_l1);
    }
    WARN("FP8 PV worst vs fp32 masked reference: sweep cosine " << sweep.cosine << " rel L1 " << sweep.rel_l1
                                                                << "; peaked/strided/mixed cosine " << peaked.cosine
                                                                << " rel L1 " << peaked.rel_l1 << "; outlier V cosine "
                                                                << outlier.cosine << " rel L1 " << outlier.rel_l1
                                                                << "; large Q/K cosine " << large.cosine << " rel L1 "
                                                                << large.rel_l1);
}

// The adversarial suite, for every PV format this device runs, on sequence lengths that are no
// multiple of 64 or 128. Variants and the bound each is held to (default target: cosine 0.9995, rel
// L1 3%; FP8: kFp8MinCos / kFp8MaxL1):
//   0 one kept tile per row (anywhere in it), fp16 in                       target
//   1 text q/k x4 and v x8 (another norm than the video), a fully masked row a known gap: cosine
//                                                                            0.9993 (measured on H200
//                                                                            0.99950 fp16 PV, 0.99944
//                                                                            INT8)
//   2 peaked rows (q sigma 3) with an outlier V token x50                    a known gap, held as
//                                                                            measured: cosine 0.995,
//                                                                            rel L1 8% (INT8 worst
//                                                                            0.9973 / 6.1%, fp16
//                                                                            0.99934 / 2.4%)
//   3 one kept tile per row, text q/k x0.25, outlier V token x50, bf16 in   target
// (Large-norm Q/K is held to fp16 PV on the same inputs in its own tests above.) What is left of the
// gaps: in 2, INT8 PV's per-(tile, channel) V scale set by the outlier coarsens its tile's other
// tokens; in 1 and 2, INT8 QK's own error on rows of large scores (one Q scale per row since the
// session of 2026-11-30: 0.99900 -> 0.99950 fp16 PV in 1; bench/qk_quant_error.py simulates INT8
// QK alone on these inputs: even a scale per row and per key leaves worst cosines of 0.9994-0.9996).
// 16-bit QK (qk_bits 16) with fp16 PV meets the target on 1, 2 and large Q/K: "gpu: 16-bit QK meets
// the accuracy target on large scores".
namespace {

const std::vector<SweepLayout> kAdversarialLayouts = {{{3, 5, 7}, 13, TextPosition::prefix},    // 118
                                                      {{3, 7, 11}, 2, TextPosition::suffix},    // 233
                                                      {{4, 12, 16}, 32, TextPosition::suffix}}; // 800

// Adversarial variant v (0-3 as listed above; 4: large-norm Q and K, sigma 6, full mask) on layout l.
Config adversarial_config(const SweepLayout& l, int D, int variant) {
    Config c;
    c.layout.grid = l.grid;
    c.layout.text_tokens = l.text;
    c.layout.text_position = l.pos;
    c.head_dim = D;
    c.dtype = variant == 3 ? PARO_BFLOAT16 : PARO_FLOAT16;
    switch (variant) {
        case 0: c.mask = MaskKind::one_per_row; break;
        case 1: c.mask = MaskKind::random20, c.qk_text_scale = 4.f, c.v_text_scale = 8.f; break;
        case 2: c.mask = MaskKind::random50, c.q_sigma = 3.f, c.v_outlier = 50.f; break;
        case 3: c.mask = MaskKind::one_per_row, c.qk_text_scale = 0.25f, c.v_outlier = 50.f; break;
        case 4: c.mask = MaskKind::full, c.q_sigma = c.k_sigma = 6.f; break;
    }
    return c;
}

}  // namespace

TEST_CASE("gpu: adversarial inputs for every PV format", "[.gpu][sweep]") {
    REQUIRE(have_gpu());
    std::vector<paro_pv_format> formats = {PARO_PV_INT8, PARO_PV_FP16};
    if (hopper_kernels()) formats.push_back(PARO_PV_FP8_E4M3);
    unsigned seed = 3100;
    for (paro_pv_format pv : formats) {
        const bool fp8 = pv == PARO_PV_FP8_E4M3;
        std::array<WorstError, 4> worst;
        for (const auto& l : kAdversarialLayouts)
            for (int D : {64, 128})
                for (int variant = 0; variant < 4; ++variant) {
                    Config c = adversarial_config(l, D, variant);
                    c.pv = pv;
                    double min_cos = fp8 ? kFp8MinCos : 0.9995, max_l1 = fp8 ? kFp8MaxL1 : 0.03;
                    if (variant == 1) min_cos = std::min(min_cos, 0.9993);  // one Q scale per 16 rows gave 0.99900
                    if (variant == 2) min_cos = 0.995, max_l1 = 0.08;
                    const WorstError w = check_accuracy(c, run_config(c, seed++), min_cos, max_l1);
                    worst[size_t(variant)].add(w.cosine, w.rel_l1);
                }
        for (int v = 0; v < 4; ++v)
            WARN("adversarial variant " << v << ", PV " << to_string(static_cast<PvFormat>(pv)) << ": worst cosine "
                                        << worst[size_t(v)].cosine << ", rel L1 " << worst[size_t(v)].rel_l1);
    }
}

// The deprecated bit-width entry point: 16 runs fp16 PV, 8 and 4 INT8 (bitwise the same outputs as
// the formats), anything else is an argument error.
TEST_CASE("gpu: deprecated paro_plan_set_pv_bits maps widths to PV formats", "[.gpu][small]") {
    REQUIRE(have_gpu());
    Config c;
    c.layout.grid = {3, 5, 7};
    c.layout.text_tokens = 13;
    for (const auto& [bits, pv] : {std::pair{16, PARO_PV_FP16}, std::pair{8, PARO_PV_INT8}, std::pair{4, PARO_PV_INT8}}) {
        Config legacy = c, modern = c;
        legacy.legacy_pv_bits = bits;
        modern.pv = pv;
        INFO("pv_bits " << bits);
        CHECK(run_config(legacy, 11).kernel == run_config(modern, 11).kernel);
    }
    auto plan = upload(make_host_plan(c, 1));
    CHECK(paro_plan_set_pv_bits(plan.get(), nullptr, 12) == PARO_ERROR_INVALID_ARGUMENT);
    std::vector<uint8_t> bits(size_t(c.heads), 16);
    bits[2] = 7;
    CHECK(paro_plan_set_pv_bits(plan.get(), bits.data(), 0) == PARO_ERROR_INVALID_ARGUMENT);
}

TEST_CASE("gpu: fp16-PV runtime vs fp32 masked reference, every order/layout/mask/head dim", "[.gpu][sweep]") {
    REQUIRE(have_gpu());
    std::vector<SweepLayout> layouts = kSweepLayouts;
    layouts.push_back({{3, 7, 11}, 2, TextPosition::suffix});  // 233: odd N, text suffix
    accuracy_sweep(layouts, {PARO_BFLOAT16, PARO_FLOAT32}, PARO_PV_FP16, 300);
}

TEST_CASE("gpu: fp16-PV and mixed per-head PV with peaked attention, batch 2, [B, N, H, D] strides", "[.gpu][sweep]") {
    REQUIRE(have_gpu());
    Config c;
    c.layout.grid = {4, 12, 16};
    c.layout.text_tokens = 32;
    c.batch = 2;
    c.dtype = PARO_FLOAT16;
    c.mask = MaskKind::dense_heads;  // dense triples in batch 2, and behind an INT8-PV run
    for (bool mixed : {false, true}) {
        c.mixed_pv = mixed;
        c.pv = mixed ? PARO_PV_INT8 : PARO_PV_FP16;
        for (float sigma : {1.f, 3.f}) {
            c.q_sigma = sigma;
            for (int D : {64, 128}) {
                c.head_dim = D;
                check_accuracy(c, run_config(c, 1900 + D, false));
                check_accuracy(c, run_config(c, 1950 + D, true));
            }
        }
    }
}

// ---------------------------------------------------------------- 16-bit QK (qk_bits 16, Hopper)

// 16-bit QK against the fp32 masked reference, every layout, mask, dtype and PV format: Q and K in
// fp16 with power-of-two scales are exact for fp16 and bf16 inputs, so only P and V (and fp32 inputs'
// rounding) are left: fp16 PV is held to cosine 0.9999 and rel L1 1%, the 8-bit PV formats to their
// own bounds. Then layers whose heads mix both QK formats with two PV formats (four launches), and a
// plan from a pattern's qk_bits runs bit for bit what paro_plan_set_qk_bits gives.
constexpr double kQk16Fp16PvMinCos = 0.9999, kQk16Fp16PvMaxL1 = 0.01;
TEST_CASE("gpu: 16-bit QK vs fp32 masked reference, every layout/mask/dtype/PV format", "[.gpu][sweep]") {
    REQUIRE(have_gpu());
    if (!hopper_kernels()) {
        WARN("16-bit QK runs on Hopper only: skipped here");
        return;
    }
    const auto dtypes = {PARO_FLOAT16, PARO_BFLOAT16, PARO_FLOAT32};
    const WorstError fp16 = accuracy_sweep(kSweepLayouts, dtypes, PARO_PV_FP16, 4000, kQk16Fp16PvMinCos,
                                           kQk16Fp16PvMaxL1, 16);
    const WorstError int8 = accuracy_sweep(kSweepLayouts, dtypes, PARO_PV_INT8, 4200, 0.9995, 0.03, 16);
    const WorstError fp8 = accuracy_sweep(kSweepLayouts, dtypes, PARO_PV_FP8_E4M3, 4400, kFp8MinCos, kFp8MaxL1, 16);
    WARN("16-bit QK worst vs fp32 masked reference: fp16 PV cosine " << fp16.cosine << " rel L1 " << fp16.rel_l1
                                                                    << "; INT8 PV cosine " << int8.cosine << " rel L1 "
                                                                    << int8.rel_l1 << "; FP8 PV cosine " << fp8.cosine
                                                                    << " rel L1 " << fp8.rel_l1);
    Config c;
    c.layout.grid = {4, 12, 16};
    c.layout.text_tokens = 32;
    c.batch = 2;
    c.heads = 8;
    c.mixed_qk = true;
    c.mixed_pv = true;  // heads 0, 4: INT8 QK + INT8 PV; 1, 5: INT8 QK + fp16 PV; 2, 6: 16-bit QK + INT8 PV; 3, 7
    for (int D : {64, 128})
        for (bool bnhd : {false, true}) {
            c.head_dim = D;
            check_accuracy(c, run_config(c, 4600 + D + (bnhd ? 1 : 0), bnhd));
        }
    // At most 256 tokens: the K mean is one CTA's sum per channel, so two runs agree bit for bit (above,
    // its CTAs' partial sums meet in float atomics in any order).
    c.layout.grid = {3, 7, 11};
    c.layout.text_tokens = 2;
    c.layout.text_position = TextPosition::suffix;
    c.batch = 1;
    c.mixed_pv = true;
    for (int D : {64, 128}) {
        c.head_dim = D;
        Config from_pattern = c;
        from_pattern.via_pattern = true;
        INFO(describe(c));
        CHECK(run_config(c, 4700 + D).kernel == run_config(from_pattern, 4700 + D).kernel);
    }
}

// Where INT8 QK cannot reach the target (cosine 0.9995, rel L1 3%) whatever its scales (rows of
// large scores: bench/qk_quant_error.py), 16-bit QK with fp16 PV does: large-norm Q and K, and the
// adversarial suite's variants 1 and 2 (text q/k x4 beside v x8; peaked rows with an outlier V token).
TEST_CASE("gpu: 16-bit QK meets the accuracy target on large scores", "[.gpu][sweep]") {
    REQUIRE(have_gpu());
    if (!hopper_kernels()) {
        WARN("16-bit QK runs on Hopper only: skipped here");
        return;
    }
    const std::array<int, 3> variants = {4, 1, 2};
    const char* names[] = {"large Q/K (sigma 6)", "text q/k x4, v x8", "peaked rows + V outlier x50"};
    std::array<WorstError, 3> worst;
    unsigned seed = 4800;
    for (const auto& l : kAdversarialLayouts)
        for (int D : {64, 128})
            for (size_t i = 0; i < variants.size(); ++i) {
                Config c = adversarial_config(l, D, variants[i]);
                c.pv = PARO_PV_FP16;
                c.qk_bits = 16;
                const WorstError w = check_accuracy(c, run_config(c, seed++));
                worst[i].add(w.cosine, w.rel_l1);
            }
    for (size_t i = 0; i < variants.size(); ++i)
        WARN("16-bit QK, fp16 PV, " << names[i] << ": worst cosine " << worst[i].cosine << ", rel L1 " << worst[i].rel_l1);
    // INT8 PV beside 16-bit QK on large scores: P' per tile and row from fp32 scores, whose tiles must
    // keep their relative weights (no guard scaled by the tile's k scale, softmax.cuh).
    WorstError int8;
    for (const auto& l : kAdversarialLayouts)
        for (int D : {64, 128})
            for (int variant : {4, 1}) {
                Config c = adversarial_config(l, D, variant);
                c.qk_bits = 16;
                const WorstError w = check_accuracy(c, run_config(c, seed++));
                int8.add(w.cosine, w.rel_l1);
            }
    WARN("16-bit QK, INT8 PV, large Q/K and text q/k x4: worst cosine " << int8.cosine << ", rel L1 " << int8.rel_l1);
}

// The fp16-PV Hopper kernel takes a tile's exponentials against the row's running max before the
// tile's own max is known (softmax_tile_fp16_exp_ahead): a later tile whose max is higher by more
// than the lazy bound rescales them, and one higher by 120 log2 units or more (where they may
// overflow, or their scale flush to zero) leaves the warp's rows to a last grid that computes them
// again. Rows here start on a tile of text tokens whose scores are ~0 (q and k x 0.02, 64 text
// tokens: the first tile is text only) and then meet video tiles of scores up to ~10 (sigma 2), ~45
// (sigma 3) and ~180 (sigma 6) log2 units: each path, in both batch entries, dense and sparse rows, a
// ragged last tile (784 tokens). 16-bit QK, held to the target against fp32; then INT8 QK at D 128
// (three consumers: the dense triples' grid, then the rows' grid or none, then the redo grid), whose
// QK error misses the target on such scores (bench/qk_quant_error.py), held to INT8 PV on the same
// inputs instead, which never takes the shortcut: a lost or dropped tile would put fp16 PV far
// behind it.
TEST_CASE("gpu: fp16-PV rows whose max jumps after their first tile", "[.gpu][sweep]") {
    REQUIRE(have_gpu());
    if (!hopper_kernels()) {
        WARN("the exponentials ahead of the row max are the Hopper kernel's: skipped here");
        return;
    }
    const auto jump_config = [](float sigma, int D, MaskKind mk) {
        Config c;
        c.layout.grid = {4, 12, 15};
        c.layout.text_tokens = 64;
        c.batch = 2;
        c.head_dim = D;
        c.mask = mk;
        c.pv = PARO_PV_FP16;
        c.qk_bits = 16;
        c.q_sigma = c.k_sigma = sigma;
        c.qk_text_scale = 0.02f;
        return c;
    };
    unsigned seed = 5000;
    for (float sigma : {2.f, 3.f, 6.f}) {
        WorstError worst;
        for (int D : {64, 128})
            for (MaskKind mk : {MaskKind::full, MaskKind::random50}) {
                const Config c = jump_config(sigma, D, mk);
                const WorstError w = check_accuracy(c, run_config(c, seed++));
                worst.add(w.cosine, w.rel_l1);
            }
        WARN("16-bit QK, q, k sigma " << sigma << " after a text tile: worst cosine " << worst.cosine << ", rel L1 "
                                      << worst.rel_l1);
    }
    // 13 tiles (4 triples and a tail triple over the last row: rows 10 and 11 computed twice), 14 (4
    // triples and a tail triple over the last two rows) and 12 (triples only); no rows' grid. Both
    // head dims run triples for fp16 PV.
    for (int D : {64, 128})
        for (int video_w : {15, 17, 14}) {
            Config c = jump_config(6.f, D, MaskKind::full);
            c.qk_bits = 8;
            c.layout.grid[2] = video_w;
            Config c8 = c;
            c8.pv = PARO_PV_INT8;
            const RunResult r = run_config(c, seed), r8 = run_config(c8, seed);
            ++seed;
            const int64_t cnt = c.layout.tokens() * c.head_dim;
            for (int bh = 0; bh < c.batch * c.heads; ++bh) {
                const size_t off = size_t(bh * cnt);
                const auto e = compare_outputs(r.kernel.data() + off, r.masked_ref.data() + off, size_t(cnt));
                const auto e8 = compare_outputs(r8.kernel.data() + off, r8.masked_ref.data() + off, size_t(cnt));
                INFO(describe(c) << " batch x head " << bh << ": cosine " << e.cosine << " rel L1 " << e.rel_l1
                                 << ", INT8 PV cosine " << e8.cosine << " rel L1 " << e8.rel_l1);
                REQUIRE(e.finite);
                CHECK(e.cosine >= e8.cosine - 0.001);
                CHECK(e.rel_l1 <= e8.rel_l1 + 0.005);
            }
        }
}
