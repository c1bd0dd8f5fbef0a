// Host side of the paro CUDA runtime: plans (pattern -> device CSR), argument checks, the C API.
#include <cuda_runtime.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <exception>
#include <memory>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include "capi_boundary.hpp"
#include "launch.hpp"
#include "paro/axis_order.hpp"
#include "paro/error.hpp"
#include "paro/pattern.hpp"
#include "paro/pv_format.hpp"
#include "paro/runtime_limits.hpp"
#include "paro/token_layout.hpp"
#include "plan_from_pattern.hpp"
#include "paro_runtime.h"

using paro::PvFormat;
using paro::gpu::DType;
using paro::gpu::QkFormat;

static_assert(PARO_PV_INT8 == int(PvFormat::int8) && PARO_PV_FP16 == int(PvFormat::fp16) &&
                  PARO_PV_FP8_E4M3 == int(PvFormat::fp8_e4m3) && paro::kNumPvFormats == 3,
              "paro_pv_format codes are PvFormat's");
static_assert(paro::gpu::kTile == 64, "the C API documents 64-token tiles");

namespace {

thread_local std::string g_last_error;

paro_status fail(paro_status s, const std::string& msg) { return paro::capi::fail(g_last_error, s, msg); }

paro_status cuda_fail(cudaError_t e, const char* what) {
    if (e == cudaErrorMemoryAllocation)
        return fail(PARO_ERROR_OUT_OF_MEMORY, std::string(what) + ": out of device memory");
    if (e == cudaErrorNoDevice || e == cudaErrorInsufficientDriver)
        return fail(PARO_ERROR_NO_GPU, std::string(what) + ": " + cudaGetErrorString(e));
    return fail(PARO_ERROR_CUDA, std::string(what) + ": " + cudaGetErrorName(e) + ": " + cudaGetErrorString(e));
}

#define PARO_CUDA_TRY(call)                                          \
    do {                                                             \
        cudaError_t paro_e_ = (call);                                \
        if (paro_e_ != cudaSuccess) return cuda_fail(paro_e_, #call); \
    } while (0)

// Tiles per side are uint16 in the plan (column indices) and a grid dimension.
constexpr int64_t kMaxTokens = int64_t(65535) * paro::kRuntimeTile;

size_t align256(size_t x) { return (x + 255) & ~size_t(255); }

struct Workspace {
    size_t q, k, vt, qs, ks, vs, km, ctr, redo, total;
};
Workspace workspace_layout(int64_t bh, int64_t npad, int64_t nb, int64_t d) {
    Workspace w{};
    size_t off = 0;
    auto take = [&](size_t bytes) {
        const size_t at = off;
        off += align256(bytes);
        return at;
    };
    w.q = take(size_t(bh) * paro::gpu::qk_head_bytes(int(npad), int(d)));  // fp16 Q and K fit (16-bit-QK heads)
    w.k = take(size_t(bh) * paro::gpu::qk_head_bytes(int(npad), int(d)));
    w.vt = take(size_t(bh) * paro::gpu::vt_head_bytes(int(nb), int(d)));  // fp16 V fits (fp16-PV heads)
    w.qs = take(sizeof(float) * size_t(bh * npad));
    w.ks = take(sizeof(float) * size_t(bh * nb));
    w.vs = take(sizeof(float) * size_t(bh * nb * d * 2));
    w.km = take(sizeof(float) * size_t(bh * d));
    w.ctr = take(4 * sizeof(uint32_t));
    // + 2 rows per (batch, head): a tail triple computes (and may push) up to two rows a second time
    w.redo = take(sizeof(uint2) * size_t(bh * (nb + 2)) * paro::gpu::kRedoEntriesPerTile);
    w.total = off;
    return w;
}

}  // namespace

namespace {
// Makes `device` current for the scope of a call that allocates or frees a plan's memory (the caller
// may have another device current) and gives the caller's back.
class DeviceScope {
  public:
    explicit DeviceScope(int device) {
        if (cudaGetDevice(&caller_) == cudaSuccess && caller_ != device) switched_ = cudaSetDevice(device) == cudaSuccess;
    }
    ~DeviceScope() {
        if (switched_) cudaSetDevice(caller_);
    }
    DeviceScope(const DeviceScope&) = delete;
    DeviceScope& operator=(const DeviceScope&) = delete;

  private:
    int caller_ = 0;
    bool switched_ = false;
};
}  // namespace

struct paro_plan {
    int device = 0;
    int64_t tokens = 0, nb = 0;
    int layers = 0, slots = 0, heads = 0;
    double density = 0;
    size_t device_bytes = 0;
    int32_t* gathers = nullptr;   // [6][N]
    uint8_t* orders = nullptr;    // [layers][heads]
    uint32_t* row_ptr = nullptr;  // [slots][layers][heads][nb+1], relative to col_base
    uint16_t* cols = nullptr;
    uint8_t* kernels = nullptr;  // [layers][heads] head_kernel codes; nullptr while every head is INT8 QK and PV
    // [slots][layers][heads * nb]: per (slot, layer), each kernel variant's (head << 16 | row) items,
    // triples first, then rows longest first (schedule_items); one launch per variant takes its
    // run of them.
    uint32_t* schedule = nullptr;
    std::vector<uint32_t> triples;       // [slots][layers][variants]: the triples opening each run
    std::vector<uint32_t> tail_triples;  // [slots][layers][variants]: the tail triples after them (schedule_items)
    std::vector<size_t> col_base;  // [slots * layers]
    std::vector<uint8_t> host_orders;
    std::vector<uint16_t> row_len;  // [slots][layers][heads][nb]: kept tiles per row (host, to rebuild the schedule)
    std::vector<uint8_t> row_same;  // [slots][layers][heads][nb]: row r keeps row r - 1's tiles (1) or not (0)
    // [layers][heads], the formats set so far (set_head_formats); empty while every head is INT8
    std::vector<PvFormat> host_pv;
    std::vector<QkFormat> host_qk;
    // [layers]: variant v's heads come at begin[v] .. begin[v + 1] of the schedule's order; empty
    // while every head is INT8 QK and PV
    std::vector<std::array<uint16_t, paro::gpu::kNumHeadKernels + 1>> kernel_begin;

    ~paro_plan() {
        cudaFree(gathers);
        cudaFree(orders);
        cudaFree(row_ptr);
        cudaFree(cols);
        cudaFree(kernels);
        cudaFree(schedule);
    }
    paro::gpu::PlanView view(int layer, int slot, bool identity) const {
        paro::gpu::PlanView v{};
        v.gathers = gathers;
        v.orders = identity ? nullptr : orders + size_t(layer) * heads;
        v.row_ptr = row_ptr + (size_t(slot) * layers + layer) * size_t(heads) * size_t(nb + 1);
        v.cols = cols + col_base[size_t(slot) * layers + layer];
        v.schedule = schedule + (size_t(slot) * layers + layer) * size_t(heads) * size_t(nb);
        for (int k = 0; k < paro::gpu::kNumHeadKernels; ++k) {
            const size_t at = (size_t(slot) * layers + layer) * paro::gpu::kNumHeadKernels + size_t(k);
            v.triples_of[k] = triples[at];
            v.tail_triples_of[k] = tail_triples[at];
        }
        if (!kernel_begin.empty() && heads_of(layer, kInt8) < heads) {  // else the INT8-only path
            v.kernels = kernels + size_t(layer) * heads;
            for (int k = 0; k <= paro::gpu::kNumHeadKernels; ++k) v.kernel_begin[k] = kernel_begin[size_t(layer)][k];
        }
        return v;
    }
    static constexpr int kInt8 = paro::gpu::head_kernel(QkFormat::int8, PvFormat::int8);
    int heads_of(int layer, int kernel) const {  // of variant `kernel` (head_kernel)
        if (kernel_begin.empty()) return kernel == kInt8 ? heads : 0;
        const auto& b = kernel_begin[size_t(layer)];
        return b[kernel + 1] - b[kernel];
    }
};

namespace {

paro_status device_check(int* count) {
    int n = 0;
    const cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n == 0) {
        cudaGetLastError();  // clear the sticky-free error state
        return fail(PARO_ERROR_NO_GPU, std::string("no CUDA device available (") +
                                           (e != cudaSuccess ? cudaGetErrorString(e) : "0 devices") + ")");
    }
    if (count) *count = n;
    return PARO_OK;
}

// Plan dimensions every entry point accepts: heads and batch are grid dimensions (< 65536).
paro_status check_plan_dims(int layers, int slots, int heads) {
    if (layers < 1 || slots < 1 || heads < 1 || heads > 65535)
        return fail(PARO_ERROR_INVALID_ARGUMENT, "layers " + std::to_string(layers) + ", slots " +
                                                     std::to_string(slots) + ", heads " + std::to_string(heads) +
                                                     " (each must be >= 1, heads <= 65535)");
    return PARO_OK;
}

struct Schedule {
    std::vector<uint32_t> items;         // paro_plan::schedule
    std::vector<uint32_t> triples;       // paro_plan::triples
    std::vector<uint32_t> tail_triples;  // paro_plan::tail_triples
};
Schedule schedule_items(const paro_plan& plan, const std::vector<uint8_t>& kernels);
paro_status upload_schedule(paro_plan* plan, Schedule schedule);

// Builds the device plan from host data. masks may be null (dense).
paro_status build_plan(const paro::TokenLayout& layout, int layers, int slots, int heads, const uint8_t* orders,
                       const std::vector<const uint8_t*>& masks /* [slots][layers][heads] or empty */,
                       paro_plan** out) {
    if (paro_status st = check_plan_dims(layers, slots, heads); st != PARO_OK) return st;
    if (paro_status st = device_check(nullptr); st != PARO_OK) return st;
    auto plan = std::make_unique<paro_plan>();
    PARO_CUDA_TRY(cudaGetDevice(&plan->device));
    const int64_t n = layout.tokens();
    const int64_t nb = paro::tiles_per_side(n);
    if (n < 1 || n > kMaxTokens)
        return fail(PARO_ERROR_INVALID_ARGUMENT, std::to_string(n) + " tokens (supported: 1 to " +
                                                     std::to_string(kMaxTokens) + ", 65535 tiles of 64)");
    if (int64_t(heads) * nb > INT32_MAX)
        return fail(PARO_ERROR_UNSUPPORTED, "heads x tiles per side above 2^31 (the rows of one launch)");
    plan->tokens = n;
    plan->nb = nb;
    plan->layers = layers;
    plan->slots = slots;
    plan->heads = heads;

    // Permutations of the six orders.
    std::vector<int32_t> gathers(size_t(paro::kNumOrders) * size_t(n));
    for (auto o : paro::kAllOrders) {
        const auto p = paro::make_permutation(layout, o);
        std::memcpy(gathers.data() + size_t(paro::index_of(o)) * n, p.gather.data(), sizeof(int32_t) * n);
    }
    plan->host_orders.assign(orders, orders + size_t(layers) * heads);
    for (uint8_t o : plan->host_orders)
        if (o >= paro::kNumOrders)
            return fail(PARO_ERROR_INVALID_ARGUMENT, "order " + std::to_string(o) + " is not a paro_order");

    // CSR per (slot, layer, head, tile row).
    const size_t rows_per_head = size_t(nb + 1);
    std::vector<uint32_t> row_ptr(size_t(slots) * layers * heads * rows_per_head);
    std::vector<uint16_t> cols;
    plan->col_base.resize(size_t(slots) * layers);
    plan->row_len.resize(size_t(slots) * layers * heads * size_t(nb));
    plan->row_same.assign(size_t(slots) * layers * heads * size_t(nb), 0);
    const size_t mask_bytes = size_t((nb * nb + 7) / 8);
    int64_t kept = 0;
    for (int s = 0; s < slots; ++s)
        for (int l = 0; l < layers; ++l) {
            const size_t base = cols.size();
            plan->col_base[size_t(s) * layers + l] = base;
            for (int h = 0; h < heads; ++h) {
                const size_t idx = (size_t(s) * layers + l) * heads + h;
                const uint8_t* bits = masks.empty() ? nullptr : masks[idx];
                uint32_t* rp = row_ptr.data() + idx * rows_per_head;
                uint16_t* len = plan->row_len.data() + idx * size_t(nb);
                for (int64_t r = 0; r < nb; ++r) {
                    rp[r] = uint32_t(cols.size() - base);
                    for (int64_t c = 0; c < nb; ++c) {
                        const int64_t t = r * nb + c;
                        if (!bits || ((bits[t >> 3] >> (t & 7)) & 1u)) cols.push_back(uint16_t(c));
                    }
                    len[r] = uint16_t(cols.size() - base - rp[r]);
                    plan->row_same[idx * size_t(nb) + size_t(r)] =
                        r > 0 && len[r] == len[r - 1] &&
                        std::equal(cols.begin() + ptrdiff_t(base + rp[r - 1]), cols.begin() + ptrdiff_t(base + rp[r]),
                                   cols.begin() + ptrdiff_t(base + rp[r]));
                }
                rp[nb] = uint32_t(cols.size() - base);
                if (cols.size() - base > 0xffffffffull)
                    return fail(PARO_ERROR_UNSUPPORTED, "more than 2^32 kept tiles in one layer");
            }
            (void)mask_bytes;
        }
    kept = int64_t(cols.size());
    plan->density = double(kept) / (double(slots) * layers * heads * double(nb) * double(nb));
    if (cols.empty()) cols.push_back(0);  // keep the allocation non-empty

    PARO_CUDA_TRY(cudaMalloc(&plan->gathers, sizeof(int32_t) * gathers.size()));
    PARO_CUDA_TRY(cudaMalloc(&plan->orders, plan->host_orders.size()));
    PARO_CUDA_TRY(cudaMalloc(&plan->row_ptr, sizeof(uint32_t) * row_ptr.size()));
    PARO_CUDA_TRY(cudaMalloc(&plan->cols, sizeof(uint16_t) * cols.size()));
    PARO_CUDA_TRY(cudaMemcpy(plan->gathers, gathers.data(), sizeof(int32_t) * gathers.size(), cudaMemcpyHostToDevice));
    PARO_CUDA_TRY(cudaMemcpy(plan->orders, plan->host_orders.data(), plan->host_orders.size(), cudaMemcpyHostToDevice));
    PARO_CUDA_TRY(cudaMemcpy(plan->row_ptr, row_ptr.data(), sizeof(uint32_t) * row_ptr.size(), cudaMemcpyHostToDevice));
    PARO_CUDA_TRY(cudaMemcpy(plan->cols, cols.data(), sizeof(uint16_t) * cols.size(), cudaMemcpyHostToDevice));
    plan->device_bytes = sizeof(int32_t) * gathers.size() + plan->host_orders.size() +
                         sizeof(uint32_t) * row_ptr.size() + sizeof(uint16_t) * cols.size();
    if (paro_status st = upload_schedule(plan.get(), schedule_items(*plan, {})); st != PARO_OK) return st;
    *out = plan.release();
    return PARO_OK;
}

// The plan's schedule: per (slot, layer), the rows of each kernel variant's heads (variants in their
// order; `kernels` [layers][heads] head_kernel codes, empty: all INT8). A variant's run opens with its
// triples: rows r .. r + 2 of a head that keep the same key tiles (dense rows, or a pattern's rows
// inside one dense block of its reordered attention), taken three at a time along each run of such
// rows from its first, longest first, which three consumer warpgroups compute on one ring of shared
// K/V stages (attention_sm90.cu). Then its tail rows: where nb is not a multiple of 3, the last
// nb % 3 rows of a head whose last triple ends just before them and which keep its tiles; the Hopper
// kernel computes them as one more triple, rows nb - 3 .. nb - 1 (a tail triple: its first rows, already in the last
// triple, computed twice), which other kernels take as rows. Left to a grid of single rows behind the
// triples, they kept three consumers of 32 SMs busy for 0.3 ms after the rest of a dense layer had
// ended (CogVideoX shape, D 128, H200). The other rows follow longest first, by a stable counting sort
// on the row length in coarse buckets of ceil(nb / 16) tiles (16 or 17 buckets), heads and rows in
// index order within a bucket. A grid walks its items in order, so the rows that take longest start
// first and short ones fill the end: the tail of a launch no longer waits on dense heads that came
// last (adaptive masks mix densities 0.05 and 1 in a layer). The coarse buckets keep a head's rows of
// similar length together, and with them the head's K and V in L2 (sorting by exact length cost fp16
// PV 4-11% on fixed-density masks, H200).
Schedule schedule_items(const paro_plan& plan, const std::vector<uint8_t>& kernels) {
    constexpr int V = paro::gpu::kNumHeadKernels;
    const size_t nb = size_t(plan.nb), H = size_t(plan.heads), per = H * nb, tail = nb % 3;
    const size_t width = std::max<size_t>(1, (nb + 15) / 16), buckets = nb / width + 1;
    Schedule sched{std::vector<uint32_t>(size_t(plan.slots) * plan.layers * per),
                   std::vector<uint32_t>(size_t(plan.slots) * plan.layers * V),
                   std::vector<uint32_t>(size_t(plan.slots) * plan.layers * V)};
    std::vector<uint32_t> start(buckets + 1);
    enum Role : uint8_t { kSingle, kTriple, kTail };
    std::vector<uint8_t> role(per);
    for (int s = 0; s < plan.slots; ++s)
        for (int l = 0; l < plan.layers; ++l) {
            const size_t sl = size_t(s) * plan.layers + l;
            const uint16_t* len = plan.row_len.data() + sl * per;
            uint32_t* out = sched.items.data() + sl * per;
            const auto slot_of = [&](size_t h, size_t r) { return buckets - 1 - len[h * nb + r] / width; };
            // Rows r0 .. r0 + n - 1 keep the tiles of row r0 - 1 (kept tiles compared in build_plan).
            const uint8_t* same = plan.row_same.data() + sl * per;
            const auto as_before = [&](size_t h, size_t r0, size_t n) {
                return std::all_of(same + h * nb + r0, same + h * nb + r0 + n, [](uint8_t x) { return x != 0; });
            };
            std::fill(role.begin(), role.end(), uint8_t(kSingle));
            for (size_t h = 0; h < H; ++h) {
                for (size_t r = 0; r + 2 < nb;) {  // runs of rows with the same tiles, three at a time
                    if (len[h * nb + r] > 0 && as_before(h, r + 1, 2)) {
                        std::fill_n(role.begin() + h * nb + r, 3, uint8_t(kTriple));
                        r += 3;
                    } else {
                        ++r;
                    }
                }
                if (tail > 0 && nb >= 3 + tail && role[h * nb + nb - tail - 1] == kTriple &&
                    role[h * nb + nb - tail] == kSingle && as_before(h, nb - tail, tail))  // a triple ends at nb - tail - 1
                    std::fill_n(role.begin() + h * nb + nb - tail, tail, uint8_t(kTail));
            }
            size_t done = 0;
            for (int v = 0; v < V; ++v) {
                const auto of_variant = [&](size_t h) {
                    return kernels.empty() ? v == paro_plan::kInt8 : kernels[size_t(l) * H + h] == v;
                };
                size_t at = done;
                // The variant's items of one role (triples: 3 rows from their first, else single rows)
                // placed at `at` longest bucket first, heads and rows in index order within a bucket
                // (a stable counting sort); their count.
                const auto place = [&](Role kind) {
                    PARO_ASSERT(kind != kTail);  // tail rows go one after another, below
                    const size_t item_rows = kind == kTriple ? 3 : 1;
                    const auto each = [&](auto&& f) {
                        for (size_t h = 0; h < H; ++h)
                            if (of_variant(h))
                                for (size_t r = 0; r < nb; r += role[h * nb + r] == kTriple ? 3 : 1)
                                    if (role[h * nb + r] == kind) f(h, r);
                    };
                    std::fill(start.begin(), start.end(), 0u);
                    size_t n = 0;
                    each([&](size_t h, size_t r) { ++start[slot_of(h, r) + 1], ++n; });
                    for (size_t k = 1; k <= buckets; ++k) start[k] += start[k - 1];
                    each([&](size_t h, size_t r) {
                        const size_t j = start[slot_of(h, r)]++;
                        for (size_t m = 0; m < item_rows; ++m) out[at + item_rows * j + m] = uint32_t(h << 16 | (r + m));
                    });
                    at += item_rows * n;
                    return n;
                };
                const size_t triples = place(kTriple);
                size_t tails = 0;
                for (size_t h = 0; h < H; ++h)
                    if (of_variant(h) && tail > 0 && role[h * nb + nb - 1] == kTail) {
                        for (size_t r = nb - tail; r < nb; ++r) out[at++] = uint32_t(h << 16 | r);
                        ++tails;
                    }
                place(kSingle);
                size_t variant_heads = 0;
                for (size_t h = 0; h < H; ++h) variant_heads += of_variant(h) ? 1 : 0;
                PARO_ASSERT(at - done == nb * variant_heads);  // every row of the variant's heads once
                sched.triples[sl * V + size_t(v)] = uint32_t(triples);
                sched.tail_triples[sl * V + size_t(v)] = uint32_t(tails);
                done = at;
            }
        }
    return sched;
}

paro_status upload_schedule(paro_plan* plan, Schedule schedule) {
    const std::vector<uint32_t>& items = schedule.items;
    if (!plan->schedule) {
        PARO_CUDA_TRY(cudaMalloc(&plan->schedule, sizeof(uint32_t) * items.size()));
        plan->device_bytes += sizeof(uint32_t) * items.size();
    }
    PARO_CUDA_TRY(cudaMemcpy(plan->schedule, items.data(), sizeof(uint32_t) * items.size(), cudaMemcpyHostToDevice));
    plan->triples = std::move(schedule.triples);
    plan->tail_triples = std::move(schedule.tail_triples);
    return PARO_OK;
}

// Sets the plan's per-head QK and PV formats ([layers][heads] each): the kernel variant of every
// head, each layer's run of heads per variant, and the schedule that orders rows by variant.
paro_status set_head_formats(paro_plan* plan, std::vector<QkFormat> qk, std::vector<PvFormat> pv) {
    const size_t count = size_t(plan->layers) * plan->heads;
    PARO_ASSERT(qk.size() == count && pv.size() == count);
    std::vector<uint8_t> kernels(count);
    for (size_t i = 0; i < count; ++i) kernels[i] = uint8_t(paro::gpu::head_kernel(qk[i], pv[i]));
    std::vector<std::array<uint16_t, paro::gpu::kNumHeadKernels + 1>> begin(size_t(plan->layers));
    for (int l = 0; l < plan->layers; ++l) {
        const uint8_t* lk = kernels.data() + size_t(l) * plan->heads;
        int k = 0;
        for (int v = 0; v < paro::gpu::kNumHeadKernels; ++v) {
            begin[size_t(l)][size_t(v)] = uint16_t(k);
            k += int(std::count(lk, lk + plan->heads, uint8_t(v)));
        }
        begin[size_t(l)][paro::gpu::kNumHeadKernels] = uint16_t(k);
    }
    // Everything that can fail on the host first; the plan's state changes only after the uploads.
    const DeviceScope on_plan_device(plan->device);
    Schedule sched = schedule_items(*plan, kernels);
    if (!plan->kernels) {
        PARO_CUDA_TRY(cudaMalloc(&plan->kernels, count));
        plan->device_bytes += count;
    }
    PARO_CUDA_TRY(cudaMemcpy(plan->kernels, kernels.data(), count, cudaMemcpyHostToDevice));
    if (paro_status st = upload_schedule(plan, std::move(sched)); st != PARO_OK) return st;
    plan->host_qk = std::move(qk);
    plan->host_pv = std::move(pv);
    plan->kernel_begin = std::move(begin);
    return PARO_OK;
}

// The plan's formats so far: QK (first) and PV per head, INT8 where none was set.
std::pair<std::vector<QkFormat>, std::vector<PvFormat>> head_formats(const paro_plan* plan) {
    const size_t count = size_t(plan->layers) * plan->heads;
    if (plan->host_pv.empty()) return {std::vector<QkFormat>(count, QkFormat::int8), std::vector<PvFormat>(count, PvFormat::int8)};
    return {plan->host_qk, plan->host_pv};
}

// formats [layers][heads] (NULL: every head gets `all`), paro_pv_format codes.
paro_status set_pv_formats(paro_plan* plan, const uint8_t* formats, int all) {
    auto bad = [](int f, const std::string& which) {
        return fail(PARO_ERROR_INVALID_ARGUMENT, "PV format code " + std::to_string(f) + which +
                                                     " is not a paro_pv_format (0 int8, 1 fp16, 2 fp8_e4m3)");
    };
    const size_t count = size_t(plan->layers) * plan->heads;
    if (!formats && (all < 0 || all >= paro::kNumPvFormats)) return bad(all, "");
    for (size_t i = 0; formats && i < count; ++i)
        if (formats[i] >= paro::kNumPvFormats)
            return bad(formats[i], " of layer " + std::to_string(i / plan->heads) + " head " +
                                       std::to_string(i % plan->heads));
    auto [qk, pv] = head_formats(plan);
    for (size_t i = 0; i < count; ++i) pv[i] = static_cast<PvFormat>(formats ? formats[i] : all);
    return set_head_formats(plan, std::move(qk), std::move(pv));
}

// QK bit widths [layers][heads] (NULL: every head gets `all`): 16 runs 16-bit QK, 8 and 4 INT8 (there
// is no INT4 path), as the pattern's qk_bits.
paro_status set_qk_bits(paro_plan* plan, const uint8_t* bits, int all) {
    auto format_of = [](int b) { return b == 16 ? 1 : b == 8 || b == 4 ? 0 : -1; };
    auto bad = [](int b, const std::string& which) {
        return fail(PARO_ERROR_INVALID_ARGUMENT, "qk_bits " + std::to_string(b) + which + " (supported: 4, 8, 16)");
    };
    const size_t count = size_t(plan->layers) * plan->heads;
    if (!bits && format_of(all) < 0) return bad(all, "");
    for (size_t i = 0; bits && i < count; ++i)
        if (format_of(bits[i]) < 0)
            return bad(bits[i], " of layer " + std::to_string(i / plan->heads) + " head " + std::to_string(i % plan->heads));
    auto [qk, pv] = head_formats(plan);
    for (size_t i = 0; i < count; ++i) qk[i] = QkFormat(format_of(bits ? bits[i] : all));
    return set_head_formats(plan, std::move(qk), std::move(pv));
}

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

// A view's shape in elements: [batch][heads][tokens] rows of dim.
struct Extent {
    int64_t batch, heads, tokens, dim;
};

// One past the last element a view reaches, from its data pointer (saturating: hostile strides).
int64_t view_span(const paro_tensor& t, const Extent& e) {
    const int64_t stride[3] = {t.stride_batch, t.stride_head, t.stride_token}, count[3] = {e.batch, e.heads, e.tokens};
    int64_t span = e.dim;
    for (int i = 0; i < 3; ++i) {
        if (count[i] <= 1) continue;
        if (stride[i] > (INT64_MAX - span) / (count[i] - 1)) return INT64_MAX;
        span += stride[i] * (count[i] - 1);
    }
    return span;
}

// Whether two (batch, head, token) rows of a view share memory: sorted by stride, every dimension with
// more than one index must step past all that the smaller ones reach.
bool rows_overlap(const paro_tensor& t, const Extent& e) {
    std::array<std::pair<int64_t, int64_t>, 3> d{{{t.stride_batch, e.batch}, {t.stride_head, e.heads}, {t.stride_token, e.tokens}}};
    std::sort(d.begin(), d.end());
    int64_t reach = e.dim;
    for (const auto& [stride, count] : d) {
        if (count <= 1) continue;
        if (stride < reach) return true;
        if (stride > (INT64_MAX - reach) / (count - 1)) return false;  // beyond any address: no overlap
        reach += stride * (count - 1);
    }
    return false;
}

paro_status check_tensor(const paro_tensor& t, const char* name, int elem_bytes, const Extent& e, bool writable) {
    if (!t.data) return fail(PARO_ERROR_INVALID_ARGUMENT, std::string(name) + ": null data pointer");
    if (!aligned16(t.data)) return fail(PARO_ERROR_INVALID_ARGUMENT, std::string(name) + ": not 16-byte aligned");
    const int64_t s[3] = {t.stride_batch, t.stride_head, t.stride_token};
    for (int64_t x : s)
        if (x < 0 || (x * elem_bytes) % 16 != 0)
            return fail(PARO_ERROR_INVALID_ARGUMENT,
                        std::string(name) + ": strides must be non-negative and rows 16-byte aligned");
    if (writable && rows_overlap(t, e))
        return fail(PARO_ERROR_INVALID_ARGUMENT, std::string(name) + ": strides make rows overlap (batch " +
                                                     std::to_string(t.stride_batch) + ", head " +
                                                     std::to_string(t.stride_head) + ", token " +
                                                     std::to_string(t.stride_token) + " elements for rows of " +
                                                     std::to_string(e.dim) + ")");
    return PARO_OK;
}

int elem_bytes(paro_dtype d) { return d == PARO_FLOAT32 ? 4 : 2; }

std::string head_dims() {  // "64, 128"
    std::string r;
    for (int d : paro::kRuntimeHeadDims) r += (r.empty() ? "" : ", ") + std::to_string(d);
    return r;
}

const char* kernel_label(PvFormat f) {  // as the docs name the kernels
    switch (f) {
        case PvFormat::int8: return "INT8";
        case PvFormat::fp16: return "fp16";
        case PvFormat::fp8_e4m3: return "FP8";
    }
    return "?";
}

// The current device has no kernel image in this build (paro::gpu::kernels_run_on_current_device).
paro_status no_kernels_here() {
    int dev = 0, major = 0, minor = 0;
    cudaGetDevice(&dev);
    cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev);
    cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev);
    return fail(PARO_ERROR_UNSUPPORTED, "device " + std::to_string(dev) + " (compute capability " +
                                            std::to_string(major) + "." + std::to_string(minor) +
                                            ") has no kernels in this build: the runtime needs 8.0 or newer, built "
                                            "into CMAKE_CUDA_ARCHITECTURES (default 90a;80)");
}

// The calls that run on a plan's memory run on its device.
paro_status check_plan_device(const paro_plan* plan) {
    int dev = -1;
    PARO_CUDA_TRY(cudaGetDevice(&dev));
    if (dev != plan->device)
        return fail(PARO_ERROR_INVALID_ARGUMENT, "the plan lives on device " + std::to_string(plan->device) +
                                                     ", the current device is " + std::to_string(dev));
    return PARO_OK;
}

paro_status can_implement(const paro_plan* plan, const paro_attention_args* a) {
    if (!plan || !a) return fail(PARO_ERROR_INVALID_ARGUMENT, "null plan or arguments");
    if (!paro::runtime_supports_head_dim(a->head_dim))
        return fail(PARO_ERROR_UNSUPPORTED, "head_dim " + std::to_string(a->head_dim) + " (supported: " + head_dims() + ")");
    if (a->dtype != PARO_FLOAT32 && a->dtype != PARO_FLOAT16 && a->dtype != PARO_BFLOAT16)
        return fail(PARO_ERROR_INVALID_ARGUMENT, "unknown dtype");
    if (a->batch < 1 || a->batch > 65535) return fail(PARO_ERROR_INVALID_ARGUMENT, "batch must be in [1, 65535]");
    if (a->heads != plan->heads)
        return fail(PARO_ERROR_INVALID_ARGUMENT, "heads " + std::to_string(a->heads) + " but the plan has " +
                                                     std::to_string(plan->heads));
    if (a->tokens != plan->tokens)
        return fail(PARO_ERROR_INVALID_ARGUMENT, "tokens " + std::to_string(a->tokens) + " but the plan has " +
                                                     std::to_string(plan->tokens));
    if (a->layer < 0 || a->layer >= plan->layers)
        return fail(PARO_ERROR_INVALID_ARGUMENT, "layer " + std::to_string(a->layer) + " out of range");
    if (a->slot < 0 || a->slot >= plan->slots)
        return fail(PARO_ERROR_INVALID_ARGUMENT, "slot " + std::to_string(a->slot) + " out of range");
    if (a->stages < 0 || a->stages > PARO_STAGE_ALL) return fail(PARO_ERROR_INVALID_ARGUMENT, "bad stages");
    if (!(std::isfinite(a->scale) && a->scale >= 0)) return fail(PARO_ERROR_INVALID_ARGUMENT, "bad scale");
    if (!paro::gpu::kernels_run_on_current_device()) return no_kernels_here();
    for (int v = 0; v < paro::gpu::kNumHeadKernels; ++v) {
        if (plan->heads_of(a->layer, v) == 0 || paro::gpu::attention_has_kernel(v)) continue;
        const PvFormat f = paro::gpu::pv_format_of(v);
        const std::string what = paro::gpu::qk_format_of(v) == QkFormat::fp16
                                     ? "16-bit QK heads; 16-bit QK"
                                     : paro::to_string(f) + std::string(" PV heads; ") + kernel_label(f) + " PV";
        return fail(PARO_ERROR_UNSUPPORTED, "layer " + std::to_string(a->layer) + " has " + what +
                                                " needs the Hopper kernels (compute capability 9.0, sm_90a code)");
    }
    const int eb = elem_bytes(a->dtype);
    const int stages = a->stages ? a->stages : PARO_STAGE_ALL;
    const Extent e{a->batch, a->heads, a->tokens, a->head_dim};
    paro_status st;
    if (stages & PARO_STAGE_QUANTIZE) {
        if ((st = check_tensor(a->q, "q", eb, e, false)) != PARO_OK) return st;
        if ((st = check_tensor(a->k, "k", eb, e, false)) != PARO_OK) return st;
        if ((st = check_tensor(a->v, "v", eb, e, false)) != PARO_OK) return st;
    }
    if (stages & PARO_STAGE_ATTENTION)
        if ((st = check_tensor(a->out, "out", eb, e, true)) != PARO_OK) return st;
    return PARO_OK;
}

paro::gpu::Shape shape_of(const paro_attention_args* a) {
    paro::gpu::Shape s{};
    s.batch = a->batch;
    s.heads = a->heads;
    s.tokens = a->tokens;
    s.head_dim = a->head_dim;
    s.nb = int(paro::tiles_per_side(a->tokens));
    s.npad = s.nb * paro::kRuntimeTile;
    return s;
}

// Input errors inside the runtime come from reading a pattern file.
template <typename F>
paro_status guarded(F&& f) {
    return paro::capi::guarded(g_last_error, PARO_ERROR_FILE, PARO_ERROR_INVALID_ARGUMENT, std::forward<F>(f));
}

}  // namespace

namespace paro::gpu {

paro_status plan_from_pattern(const paro::Pattern& p, paro_plan** out, int head_begin, int head_end) {
    return guarded([&] {
        const int layers = int(p.layers.size());
        if (layers == 0) return fail(PARO_ERROR_FILE, "pattern has no layers");
        const int all_heads = int(p.layers[0].heads.size());
        if (head_end < 0) head_end = all_heads;
        if (head_begin < 0 || head_begin >= head_end || head_end > all_heads)
            return fail(PARO_ERROR_INVALID_ARGUMENT, "heads [" + std::to_string(head_begin) + ", " +
                                                         std::to_string(head_end) + ") are not within the pattern's " +
                                                         std::to_string(all_heads) + " heads");
        const int heads = head_end - head_begin;
        const int slots = p.slots.count();
        if (p.block_q != paro::kRuntimeTile || p.block_k != paro::kRuntimeTile)
            return fail(PARO_ERROR_UNSUPPORTED, "the runtime needs 64 x 64 tiles, the pattern has " +
                                                    std::to_string(p.block_q) + " x " + std::to_string(p.block_k));
        std::vector<uint8_t> orders(size_t(layers) * heads);
        std::vector<QkFormat> qk(size_t(layers) * heads);
        std::vector<PvFormat> pv(size_t(layers) * heads);
        std::vector<const uint8_t*> masks(size_t(slots) * layers * heads);
        const int64_t nb = p.tiles_per_side();
        for (int l = 0; l < layers; ++l) {
            if (int(p.layers[l].heads.size()) != all_heads)
                return fail(PARO_ERROR_FILE, "layers have different head counts");
            for (int h = 0; h < heads; ++h) {
                const auto& hp = p.layers[l].heads[head_begin + h];
                orders[size_t(l) * heads + h] = uint8_t(paro::index_of(hp.order));
                pv[size_t(l) * heads + h] = hp.pv_format;
                qk[size_t(l) * heads + h] = hp.qk_bits == 16 ? QkFormat::fp16 : QkFormat::int8;  // 4 and 8: INT8 (no INT4 path)
                if (int(hp.masks.size()) != slots)
                    return fail(PARO_ERROR_FILE, "head has " + std::to_string(hp.masks.size()) + " masks for " +
                                                     std::to_string(slots) + " slots");
                for (int s = 0; s < slots; ++s) {
                    if (hp.masks[s].tiles_per_side() != nb) return fail(PARO_ERROR_FILE, "mask size mismatch");
                    masks[(size_t(s) * layers + l) * heads + h] = hp.masks[s].bytes().data();
                }
            }
        }
        paro_plan* built = nullptr;
        if (paro_status st = build_plan(p.layout, layers, slots, heads, orders.data(), masks, &built); st != PARO_OK)
            return st;
        std::unique_ptr<paro_plan, void (*)(paro_plan*)> plan(built, paro_plan_destroy);  // freed if what follows throws
        // Per-head QK and PV formats from the pattern; uploaded only when some head is not INT8 in both
        // (the plan's default).
        const bool all_int8 = std::all_of(qk.begin(), qk.end(), [](QkFormat f) { return f == QkFormat::int8; }) &&
                              std::all_of(pv.begin(), pv.end(), [](PvFormat f) { return f == PvFormat::int8; });
        if (!all_int8) {
            if (paro_status st = set_head_formats(plan.get(), std::move(qk), std::move(pv)); st != PARO_OK) return st;
        }
        *out = plan.release();
        return PARO_OK;
    });
}

}  // namespace paro::gpu

extern "C" {

const char* paro_status_string(paro_status s) {
    switch (s) {
        case PARO_OK: return "ok";
        case PARO_ERROR_INVALID_ARGUMENT: return "invalid argument";
        case PARO_ERROR_UNSUPPORTED: return "unsupported";
        case PARO_ERROR_NO_GPU: return "no GPU";
        case PARO_ERROR_CUDA: return "CUDA error";
        case PARO_ERROR_OUT_OF_MEMORY: return "out of memory";
        case PARO_ERROR_FILE: return "bad pattern file";
    }
    return "unknown status";
}

const char* paro_last_error(void) { return g_last_error.c_str(); }
int paro_runtime_api_version(void) { return PARO_RUNTIME_API_VERSION; }

paro_status paro_device_check(int* device_count) { return device_check(device_count); }

const char* paro_attention_kernel_name(void) {
    return paro::gpu::attention_kernel_for_current_device() == paro::gpu::AttentionKernel::wgmma ? "wgmma (sm_90a)"
                                                                                                : "mma.sync (sm_80)";
}

paro_status paro_plan_load(const char* path, paro_plan** plan) { return paro_plan_load_heads(path, 0, -1, plan); }

paro_status paro_plan_load_heads(const char* path, int head_begin, int head_end, paro_plan** plan) {
    if (!path || !plan) return fail(PARO_ERROR_INVALID_ARGUMENT, "null argument");
    *plan = nullptr;
    return guarded([&] {
        if (paro_status st = device_check(nullptr); st != PARO_OK) return st;
        const paro::Pattern p = paro::read_pattern_file(path);
        return paro::gpu::plan_from_pattern(p, plan, head_begin, head_end);
    });
}

paro_status paro_plan_create(const paro_plan_desc* d, paro_plan** plan) {
    if (!d || !plan) return fail(PARO_ERROR_INVALID_ARGUMENT, "paro_plan_create: null desc or plan");
    *plan = nullptr;
    if (!d->orders) return fail(PARO_ERROR_INVALID_ARGUMENT, "paro_plan_desc: orders is null");
    if (d->block != paro::kRuntimeTile)
        return fail(PARO_ERROR_UNSUPPORTED, "paro_plan_desc: block " + std::to_string(d->block) + " (must be 64)");
    if (paro_status st = check_plan_dims(d->layers, d->slots, d->heads); st != PARO_OK)
        return fail(st, "paro_plan_desc: " + g_last_error);
    paro::TokenLayout layout;
    layout.grid = {d->grid[0], d->grid[1], d->grid[2]};
    layout.text_tokens = d->text_tokens;
    layout.text_position = d->text_suffix ? paro::TextPosition::suffix : paro::TextPosition::prefix;
    try {
        layout.validate();
    } catch (const paro::InputError& e) {  // names the field ("grid: ..."), no file involved
        return fail(PARO_ERROR_INVALID_ARGUMENT, std::string("paro_plan_desc: ") + e.what());
    }
    return guarded([&] {
        std::vector<const uint8_t*> masks;
        if (d->masks) {
            const int64_t nb = paro::tiles_per_side(layout.tokens());
            const size_t mb = size_t((nb * nb + 7) / 8);
            const size_t count = size_t(d->slots) * d->layers * d->heads;
            masks.resize(count);
            for (size_t i = 0; i < count; ++i) masks[i] = d->masks + i * mb;
        }
        return build_plan(layout, d->layers, d->slots, d->heads, d->orders, masks, plan);
    });
}

paro_status paro_plan_get_info(const paro_plan* plan, paro_plan_info* info) {
    if (!plan || !info) return fail(PARO_ERROR_INVALID_ARGUMENT, "null argument");
    info->tokens = plan->tokens;
    info->tiles_per_side = plan->nb;
    info->layers = plan->layers;
    info->slots = plan->slots;
    info->heads = plan->heads;
    info->density = plan->density;
    info->device_bytes = plan->device_bytes;
    return PARO_OK;
}

void paro_plan_destroy(paro_plan* plan) {
    if (!plan) return;
    const DeviceScope on_plan_device(plan->device);
    delete plan;
}

paro_status paro_plan_set_pv_format(paro_plan* plan, const uint8_t* formats, paro_pv_format all) {
    if (!plan) return fail(PARO_ERROR_INVALID_ARGUMENT, "paro_plan_set_pv_format: null plan");
    return guarded([&] { return set_pv_formats(plan, formats, int(all)); });
}

paro_status paro_plan_set_qk_bits(paro_plan* plan, const uint8_t* qk_bits, int all_bits) {
    if (!plan) return fail(PARO_ERROR_INVALID_ARGUMENT, "paro_plan_set_qk_bits: null plan");
    return guarded([&] { return set_qk_bits(plan, qk_bits, all_bits); });
}

paro_status paro_plan_set_pv_bits(paro_plan* plan, const uint8_t* pv_bits, int all_bits) {
    if (!plan) return fail(PARO_ERROR_INVALID_ARGUMENT, "paro_plan_set_pv_bits: null plan");
    return guarded([&] {
        // What the runtime ran for each width before PV formats: 16 fp16, 8 and 4 INT8 (no INT4 path).
        auto format_of = [](int bits) { return bits == 16 ? PARO_PV_FP16 : bits == 8 || bits == 4 ? PARO_PV_INT8 : -1; };
        auto bad = [](int bits) {
            return fail(PARO_ERROR_INVALID_ARGUMENT, "pv_bits " + std::to_string(bits) + " (supported: 4, 8, 16)");
        };
        if (!pv_bits) return format_of(all_bits) < 0 ? bad(all_bits) : set_pv_formats(plan, nullptr, format_of(all_bits));
        std::vector<uint8_t> formats(size_t(plan->layers) * plan->heads);
        for (size_t i = 0; i < formats.size(); ++i) {
            if (format_of(pv_bits[i]) < 0) return bad(pv_bits[i]);
            formats[i] = uint8_t(format_of(pv_bits[i]));
        }
        return set_pv_formats(plan, formats.data(), PARO_PV_INT8);
    });
}

paro_status paro_can_implement(const paro_plan* plan, const paro_attention_args* args) {
    return can_implement(plan, args);
}

paro_status paro_workspace_size(const paro_attention_args* a, size_t* bytes) {
    if (!a || !bytes) return fail(PARO_ERROR_INVALID_ARGUMENT, "null argument");
    if (!paro::runtime_supports_head_dim(a->head_dim))
        return fail(PARO_ERROR_UNSUPPORTED, "head_dim " + std::to_string(a->head_dim) + " (supported: " + head_dims() + ")");
    if (a->batch < 1 || a->heads < 1 || a->tokens < 1 || a->tokens > kMaxTokens)
        return fail(PARO_ERROR_INVALID_ARGUMENT, "bad shape: batch, heads and tokens must be >= 1, tokens <= " +
                                                     std::to_string(kMaxTokens));
    const auto s = shape_of(a);
    *bytes = workspace_layout(int64_t(s.batch) * s.heads, s.npad, s.nb, s.head_dim).total;
    return PARO_OK;
}

paro_status paro_attention(const paro_plan* plan, const paro_attention_args* a, void* workspace,
                           size_t workspace_bytes, void* stream) {
    if (paro_status st = can_implement(plan, a); st != PARO_OK) return st;
    const auto s = shape_of(a);
    const auto lay = workspace_layout(int64_t(s.batch) * s.heads, s.npad, s.nb, s.head_dim);
    if (!workspace || workspace_bytes < lay.total || !aligned16(workspace))
        return fail(PARO_ERROR_INVALID_ARGUMENT, "workspace missing, misaligned or smaller than " +
                                                     std::to_string(lay.total) + " bytes");
    if (paro_status st = check_plan_device(plan); st != PARO_OK) return st;
    char* ws = static_cast<char*>(workspace);
    paro::gpu::Quantized w{};
    w.q = reinterpret_cast<int8_t*>(ws + lay.q);
    w.k = reinterpret_cast<int8_t*>(ws + lay.k);
    w.vt = reinterpret_cast<int8_t*>(ws + lay.vt);
    w.q_scale = reinterpret_cast<float*>(ws + lay.qs);
    w.k_scale = reinterpret_cast<float*>(ws + lay.ks);
    w.v_scale = reinterpret_cast<float*>(ws + lay.vs);
    w.k_mean = reinterpret_cast<float*>(ws + lay.km);
    w.row_counter = reinterpret_cast<uint32_t*>(ws + lay.ctr);
    w.redo = reinterpret_cast<uint2*>(ws + lay.redo);
    const auto pv = plan->view(a->layer, a->slot, a->identity_order != 0);
    const auto dt = static_cast<DType>(a->dtype);
    const cudaStream_t st = static_cast<cudaStream_t>(stream);
    const int stages = a->stages ? a->stages : PARO_STAGE_ALL;
    if (stages & PARO_STAGE_QUANTIZE) {
        const paro::gpu::View q{a->q.data, a->q.stride_batch, a->q.stride_head, a->q.stride_token};
        const paro::gpu::View k{a->k.data, a->k.stride_batch, a->k.stride_head, a->k.stride_token};
        const paro::gpu::View v{a->v.data, a->v.stride_batch, a->v.stride_head, a->v.stride_token};
        if (a->smooth_k) PARO_CUDA_TRY(paro::gpu::launch_k_mean(dt, s, k, w.k_mean, st));
        PARO_CUDA_TRY(paro::gpu::launch_quantize(dt, s, pv, q, k, v, a->smooth_k != 0, w, st));
    }
    if (stages & PARO_STAGE_ATTENTION) {
        const float scale = a->scale > 0 ? a->scale : 1.0f / std::sqrt(float(a->head_dim));
        const paro::gpu::MutView o{a->out.data, a->out.stride_batch, a->out.stride_head, a->out.stride_token};
        PARO_CUDA_TRY(paro::gpu::launch_attention(dt, s, pv, w, scale, o, st));
    }
    return PARO_OK;
}

paro_status paro_permute(const paro_plan* plan, int layer, int inverse, paro_dtype dtype, int batch, int heads,
                         int tokens, int dim, paro_tensor in, paro_tensor out, void* stream) {
    if (!plan) return fail(PARO_ERROR_INVALID_ARGUMENT, "null plan");
    if (layer < 0 || layer >= plan->layers) return fail(PARO_ERROR_INVALID_ARGUMENT, "layer out of range");
    if (heads != plan->heads || tokens != plan->tokens || batch < 1 || batch > 65535)
        return fail(PARO_ERROR_INVALID_ARGUMENT, "shape does not match the plan");
    if (dtype != PARO_FLOAT32 && dtype != PARO_FLOAT16 && dtype != PARO_BFLOAT16)
        return fail(PARO_ERROR_INVALID_ARGUMENT, "unknown dtype");
    const int eb = elem_bytes(dtype);
    if (dim < 1) return fail(PARO_ERROR_INVALID_ARGUMENT, "dim must be >= 1");
    if ((int64_t(dim) * eb) % 16 != 0) return fail(PARO_ERROR_UNSUPPORTED, "rows must be a multiple of 16 bytes");
    const Extent e{batch, heads, tokens, dim};
    paro_status st;
    if ((st = check_tensor(in, "in", eb, e, false)) != PARO_OK) return st;
    if ((st = check_tensor(out, "out", eb, e, true)) != PARO_OK) return st;
    // One kernel reads `in` while it writes `out`: they must not share memory.
    const auto* ib = static_cast<const char*>(in.data);
    const auto* ob = static_cast<const char*>(out.data);
    const int64_t ispan = view_span(in, e), ospan = view_span(out, e);
    const bool in_first = ib <= ob;
    const int64_t gap = in_first ? ob - ib : ib - ob;
    if ((in_first ? ispan : ospan) > gap / eb)
        return fail(PARO_ERROR_INVALID_ARGUMENT, "in and out overlap: the permutation is not done in place");
    if ((st = check_plan_device(plan)) != PARO_OK) return st;
    const int nb = int(paro::tiles_per_side(tokens));
    paro::gpu::Shape s{batch, heads, tokens, dim, nb, nb * paro::kRuntimeTile};
    const paro::gpu::View iv{in.data, in.stride_batch, in.stride_head, in.stride_token};
    const paro::gpu::MutView ov{out.data, out.stride_batch, out.stride_head, out.stride_token};
    PARO_CUDA_TRY(paro::gpu::launch_permute(static_cast<DType>(dtype), s, plan->gathers,
                                            plan->orders + size_t(layer) * heads, inverse != 0, iv, ov,
                                            static_cast<cudaStream_t>(stream)));
    return PARO_OK;
}

paro_status paro_reference_attention(const paro_plan* plan, int layer, int slot, int batch, int heads, int tokens,
                                     int head_dim, const float* q, const float* k, const float* v, float* out,
                                     float scale, void* stream) {
    if (!q || !k || !v || !out) return fail(PARO_ERROR_INVALID_ARGUMENT, "null tensor");
    if (!paro::runtime_supports_head_dim(head_dim))
        return fail(PARO_ERROR_UNSUPPORTED, "head_dim " + std::to_string(head_dim) + " (supported: " + head_dims() + ")");
    if (batch < 1 || batch > 65535 || heads < 1 || heads > 65535 || tokens < 1)
        return fail(PARO_ERROR_INVALID_ARGUMENT, "bad shape");
    if (paro_status st = device_check(nullptr); st != PARO_OK) return st;
    const int nb = int(paro::tiles_per_side(tokens));
    paro::gpu::Shape s{batch, heads, tokens, head_dim, nb, nb * paro::kRuntimeTile};
    paro::gpu::PlanView pv{};
    if (plan) {
        if (heads != plan->heads || tokens != plan->tokens)
            return fail(PARO_ERROR_INVALID_ARGUMENT, "shape does not match the plan");
        if (layer < 0 || layer >= plan->layers || slot < 0 || slot >= plan->slots)
            return fail(PARO_ERROR_INVALID_ARGUMENT, "layer or slot out of range");
        if (paro_status st = check_plan_device(plan); st != PARO_OK) return st;
        pv = plan->view(layer, slot, false);
    }
    const float sc = scale > 0 ? scale : 1.0f / std::sqrt(float(head_dim));
    PARO_CUDA_TRY(paro::gpu::launch_reference(s, pv, q, k, v, out, sc, static_cast<cudaStream_t>(stream)));
    return PARO_OK;
}

paro_status paro_stream_check(void* stream) {
    PARO_CUDA_TRY(cudaStreamSynchronize(static_cast<cudaStream_t>(stream)));
    PARO_CUDA_TRY(cudaGetLastError());
    return PARO_OK;
}

}  // extern "C"
