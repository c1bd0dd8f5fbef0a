// Host side of the GPU tile statistics: argument checks, device selection, uploads, workspace,
// chunking by memory, and conversion of device statistics to TileStats.
#include "gpu_tile_stats.hpp"

#include <cuda_runtime.h>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "paro/axis_order.hpp"
#include "paro/error.hpp"
#include "tile_stats_launch.hpp"

namespace paro::gpu {

namespace ts = tilestats;

namespace {

constexpr int64_t kBlock = 64;  // the kernels' tile size
constexpr size_t kRowStatBytes = 2 * sizeof(float);
constexpr size_t kTileStatBytes = sizeof(double) + sizeof(float) + sizeof(uint32_t);
constexpr int kMaxLaunchHeads = 65535;  // gridDim.z
constexpr size_t kMaxPinnedBytes = size_t(256) << 20;  // compute(heads): both host slots together

size_t stat_bytes_per_head(const TileGrid& grid) { return size_t(kNumOrders) * size_t(grid.tiles()) * kTileStatBytes; }
// Heads per chunk of compute(heads) as far as the pinned slots go: about a quarter of the heads
// (so that copies and conversion overlap the next chunk's kernels), two chunks within the cap.
size_t pinned_chunk_heads(size_t per_head, int64_t heads) {
    return std::max<size_t>(1, std::min(size_t(heads + 3) / 4, kMaxPinnedBytes / (2 * per_head)));
}

size_t elem_bytes(paro_dtype d) { return d == PARO_FLOAT32 ? 4 : 2; }
size_t round16(size_t x) { return (x + 15) / 16 * 16; }


void check_layout(const TokenLayout& layout, const TileStatsOptions& options) {
    layout.validate();
    if (options.block != kBlock)
        throw InputError("", "option --block",
                         fmt::format("the GPU tile statistics support tile size {} only, not {}", kBlock, options.block));
    if (layout.tokens() >= int64_t(std::numeric_limits<int32_t>::max()))
        throw InputError("", "tokens", fmt::format("{} tokens: the GPU tile statistics support fewer than 2^31",
                                                   layout.tokens()));
}

void check_tensor(const char* name, const void* data, int64_t stride_head, int64_t stride_token, const DeviceHeads& in) {
    const size_t eb = elem_bytes(in.dtype);
    if (!data) throw InputError("", name, "null pointer");
    if (reinterpret_cast<uintptr_t>(data) % 16 != 0) throw InputError("", name, "not 16-byte aligned");
    if (stride_token < in.head_dim || (size_t(stride_token) * eb) % 16 != 0)
        throw InputError("", name,
                         fmt::format("token stride {} must be >= head_dim {} and a multiple of 16 bytes", stride_token,
                                     in.head_dim));
    if (in.heads > 1 && (stride_head < in.head_dim || (size_t(stride_head) * eb) % 16 != 0))
        throw InputError("", name,
                         fmt::format("head stride {} must be >= head_dim {} and a multiple of 16 bytes", stride_head,
                                     in.head_dim));
}

DeviceHeads head_range(const DeviceHeads& in, int h0, int count) {
    DeviceHeads part = in;
    const size_t eb = elem_bytes(in.dtype);
    part.q = static_cast<const char*>(in.q) + size_t(h0) * size_t(in.q_stride_head) * eb;
    part.k = static_cast<const char*>(in.k) + size_t(h0) * size_t(in.k_stride_head) * eb;
    part.heads = count;
    return part;
}

[[noreturn]] void throw_overflow_generic() {
    throw InputError("", "q/k", "attention scores overflow float32 (q/k values too large)");
}

}  // namespace

const char* to_string(TileStatsKernel k) {
    switch (k) {
        case TileStatsKernel::fp32_tf32x3: return "fp32 3xTF32";
        case TileStatsKernel::mma_sync: return "mma.sync";
        case TileStatsKernel::wgmma: return "wgmma";
    }
    return "?";
}

void can_implement(const TokenLayout& layout, const TileStatsOptions& options, const DeviceHeads& in) {
    check_layout(layout, options);
    if (in.heads < 1) throw InputError("", "heads", fmt::format("{}: at least one head is needed", in.heads));
    if (in.head_dim != 64 && in.head_dim != 128)
        throw InputError("", "head_dim", fmt::format("{} is not supported (64 or 128)", in.head_dim));
    if (in.dtype != PARO_FLOAT32 && in.dtype != PARO_FLOAT16 && in.dtype != PARO_BFLOAT16)
        throw InputError("", "dtype", fmt::format("unknown dtype {}", int(in.dtype)));
    if (!(std::isfinite(in.scale) && in.scale > 0))
        throw InputError("", "scale", fmt::format("{} must be finite and positive", in.scale));
    check_tensor("q", in.q, in.q_stride_head, in.q_stride_token, in);
    check_tensor("k", in.k, in.k_stride_head, in.k_stride_token, in);
}

// compute(heads)'s host side: two pinned slots (chunk i is copied back and converted while chunk
// i + 1 computes), the stream they run on, and an event per slot.
struct GpuTileStatsEngine::HostPipeline {
    PinnedBuffer pinned;
    cudaStream_t stream = nullptr;
    cudaEvent_t done[2] = {nullptr, nullptr};

    HostPipeline() {
        cuda_check(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate");
        for (auto& e : done) cuda_check(cudaEventCreateWithFlags(&e, cudaEventDisableTiming), "cudaEventCreate");
    }
    ~HostPipeline() {
        for (auto& e : done)
            if (e) cudaEventDestroy(e);
        if (stream) cudaStreamDestroy(stream);
    }
    HostPipeline(const HostPipeline&) = delete;
    HostPipeline& operator=(const HostPipeline&) = delete;
};

struct GpuTileStatsEngine::Uploaded {
    DeviceBuffer q, k, v;
    DeviceHeads heads;
};

GpuTileStatsEngine::GpuTileStatsEngine(const TokenLayout& layout, TileStatsOptions options, int device,
                                       size_t memory_budget)
    : layout_(layout), options_(options), grid_{layout.tokens(), options.block}, device_(device),
      budget_(memory_budget) {
    check_layout(layout, options);
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
        cudaGetLastError();  // clear the sticky "no device" / "no driver" error
        throw RuntimeError(PARO_ERROR_NO_GPU, "no CUDA device: the GPU tile statistics need one");
    }
    if (device < 0 || device >= count)
        throw InputError("", "device", fmt::format("CUDA device {} does not exist ({} found)", device, count));
    DeviceGuard guard(device_);
    // Only the gathers: the tile of permuted position p is p / 64, so no per-token tile table.
    const auto perms = make_all_permutations(layout);
    const size_t n = size_t(grid_.tokens);
    std::vector<int32_t> gathers(kNumOrders * n);
    for (int o = 0; o < kNumOrders; ++o) std::copy(perms[o].gather.begin(), perms[o].gather.end(), gathers.begin() + o * n);
    gathers_ = DeviceBuffer(gathers.size() * sizeof(int32_t));
    gathers_.upload(gathers.data(), gathers_.bytes());
    overflow_ = DeviceBuffer(sizeof(int));
    overflow_.fill_byte(0);
    int major = 0, minor = 0;
    cuda_check(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device_), "cudaDeviceGetAttribute");
    cuda_check(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device_), "cudaDeviceGetAttribute");
    wgmma_ = major == 9 && minor == 0 && ts::wgmma_built();
}

TileStatsKernel GpuTileStatsEngine::kernel_for(paro_dtype dtype) const {
    if (dtype == PARO_FLOAT32) return TileStatsKernel::fp32_tf32x3;
    return wgmma_ && !force_mma_sync_ ? TileStatsKernel::wgmma : TileStatsKernel::mma_sync;
}

size_t GpuTileStatsEngine::device_bytes() const {
    return gathers_.bytes() + overflow_.bytes() + row_stats_.bytes() + stats_.bytes() + output_.bytes();
}

void GpuTileStatsEngine::ensure(DeviceBuffer& buf, size_t bytes) {
    if (buf.bytes() < bytes) {
        buf = DeviceBuffer();  // free first: the budget counts one of them
        buf = DeviceBuffer(bytes);
    }
}

bool GpuTileStatsEngine::one_head_fits(const TileGrid& grid, size_t memory_budget) {
    const size_t per_head = stat_bytes_per_head(grid);
    return 2 * per_head + kRowStatBytes * size_t(grid.tokens) <= memory_budget && 2 * per_head <= kMaxPinnedBytes;
}

size_t GpuTileStatsEngine::pinned_bytes(const TileGrid& grid, int64_t heads) {
    const size_t per_head = stat_bytes_per_head(grid);
    return 2 * pinned_chunk_heads(per_head, heads) * per_head;
}

int GpuTileStatsEngine::max_chunk_heads(size_t bytes_per_head) const {
    return int(std::clamp<size_t>(budget_ / bytes_per_head, 1, kMaxLaunchHeads));
}

namespace {

ts::Problem make_problem(const DeviceHeads& in, const TileGrid& grid, const DeviceBuffer& gathers,
                         const DeviceBuffer& row_stats, const DeviceBuffer& overflow, TileStatsKernel kernel) {
    ts::Problem p{};
    p.tokens = int(grid.tokens);
    p.tiles = int(grid.tiles_per_side());
    p.heads = in.heads;
    p.head_dim = in.head_dim;
    p.dtype = static_cast<ts::Elt>(in.dtype);
    p.q = {in.q, in.q_stride_head, in.q_stride_token};
    p.k = {in.k, in.k_stride_head, in.k_stride_token};
    p.gathers = gathers.as<int32_t>();
    p.scale_log2 = float(in.scale * 1.4426950408889634);  // rounded once, from double
    p.row_stats = row_stats.as<float2>();
    p.overflow = overflow.as<int>();
    p.wgmma = kernel == TileStatsKernel::wgmma;
    return p;
}

}  // namespace

void GpuTileStatsEngine::accumulate(const DeviceHeads& in, const DeviceTileStats& stats, void* stream) {
    can_implement(layout_, options_, in);
    if (!stats.mass || !stats.max || !stats.below_eps) throw InputError("", "stats", "null pointer");
    DeviceGuard guard(device_);
    const auto st = static_cast<cudaStream_t>(stream);
    if (!pipe_ || st != pipe_->stream) foreign_accumulate_ = true;
    const size_t n = size_t(grid_.tokens), tph = tiles_per_head();
    const int chunk = std::min(in.heads, max_chunk_heads(kRowStatBytes * n));
    ensure(row_stats_, size_t(chunk) * n * kRowStatBytes);
    const float log2_eps = std::log2(options_.eps);  // -inf for eps = 0, NaN below: no entry counts
    for (int h0 = 0; h0 < in.heads; h0 += chunk) {
        const DeviceHeads part = head_range(in, h0, std::min(chunk, in.heads - h0));
        const ts::Problem p = make_problem(part, grid_, gathers_, row_stats_, overflow_, kernel_for(in.dtype));
        cuda_check(ts::launch_row_stats(p, st), "tile statistics: row pass");
        const ts::StatsOut out{stats.mass + size_t(h0) * tph, stats.max + size_t(h0) * tph,
                               stats.below_eps + size_t(h0) * tph};
        cuda_check(ts::launch_tile_stats(p, log2_eps, out, st), "tile statistics: tile pass");
    }
}

bool GpuTileStatsEngine::overflow_seen() { return take_overflow(nullptr); }

bool GpuTileStatsEngine::take_overflow(void* stream) {
    DeviceGuard guard(device_);
    const auto st = static_cast<cudaStream_t>(stream);
    cuda_check(st ? cudaStreamSynchronize(st) : cudaDeviceSynchronize(), "tile statistics");
    if (!st) foreign_accumulate_ = false;
    // On the legacy stream, which does not wait for non-blocking streams: another engine's kernels
    // on the same device (a second backend) keep running.
    int flag = 0;
    overflow_.download(&flag, sizeof(flag));
    if (flag) {  // cleared before any later kernel, on whatever stream, can raise it again (rare: no cost)
        overflow_.fill_byte(0);
        cuda_check(cudaDeviceSynchronize(), "tile statistics");
    }
    return flag != 0;
}

std::vector<SixOrderStats> GpuTileStatsEngine::compute(const DeviceHeads& in) {
    can_implement(layout_, options_, in);
    DeviceGuard guard(device_);
    const size_t tph = tiles_per_head(), per_head = tph * kTileStatBytes;
    // Two chunks on the device within the budget and in pinned host memory (pinned_chunk_heads).
    const int chunk = int(std::max<size_t>(
        1, std::min(size_t(max_chunk_heads(2 * per_head + kRowStatBytes * size_t(grid_.tokens))),
                    pinned_chunk_heads(per_head, in.heads))));
    const size_t slot_bytes = size_t(chunk) * per_head;
    ensure(stats_, 2 * slot_bytes);
    if (!pipe_) pipe_ = std::make_shared<HostPipeline>();
    HostPipeline& hp = *pipe_;
    hp.pinned.reserve(2 * slot_bytes);
    // A slot: mass [chunk * tph] double, then max float, then below_eps uint32.
    auto dev_slot = [&](int s) {
        char* b = stats_.as<char>() + size_t(s) * slot_bytes;
        return DeviceTileStats{reinterpret_cast<double*>(b), reinterpret_cast<float*>(b + size_t(chunk) * tph * 8),
                               reinterpret_cast<uint32_t*>(b + size_t(chunk) * tph * 12)};
    };
    // Clears a flag left by earlier accumulate calls: after the device's work if a caller's stream
    // may still raise it, else after this engine's stream only (a second engine on the device, the
    // other statistics backend, keeps its kernels running).
    take_overflow(foreign_accumulate_ ? nullptr : hp.stream);

    std::vector<SixOrderStats> out(size_t(in.heads));
    const size_t per_order = size_t(grid_.tiles());
    auto convert = [&](int h0, int count, int s) {
        cuda_check(cudaEventSynchronize(hp.done[s]), "tile statistics: download");
        const char* b = static_cast<const char*>(hp.pinned.get()) + size_t(s) * slot_bytes;
        const double* mass = reinterpret_cast<const double*>(b);
        const float* mx = reinterpret_cast<const float*>(b + size_t(chunk) * tph * 8);
        const uint32_t* below = reinterpret_cast<const uint32_t*>(b + size_t(chunk) * tph * 12);
#pragma omp parallel for collapse(2) schedule(static)
        for (int h = 0; h < count; ++h)
            for (int o = 0; o < kNumOrders; ++o) {
                const size_t at = (size_t(h) * kNumOrders + size_t(o)) * per_order;
                TileStats& st = out[size_t(h0 + h)][size_t(o)];
                st.grid = grid_;
                st.mass.assign(mass + at, mass + at + per_order);
                st.max.assign(mx + at, mx + at + per_order);
                st.below_eps.assign(below + at, below + at + per_order);
            }
    };
    int prev_h0 = -1, prev_count = 0;
    for (int h0 = 0, i = 0; h0 < in.heads; h0 += chunk, ++i) {
        const int count = std::min(chunk, in.heads - h0), s = i & 1;
        const size_t tiles = size_t(count) * tph;
        const DeviceTileStats dev = dev_slot(s);
        cuda_check(cudaMemsetAsync(dev.mass, 0, tiles * sizeof(double), hp.stream), "cudaMemsetAsync");
        cuda_check(cudaMemsetAsync(dev.max, 0, tiles * sizeof(float), hp.stream), "cudaMemsetAsync");
        cuda_check(cudaMemsetAsync(dev.below_eps, 0, tiles * sizeof(uint32_t), hp.stream), "cudaMemsetAsync");
        accumulate(head_range(in, h0, count), dev, hp.stream);
        char* hb = static_cast<char*>(hp.pinned.get()) + size_t(s) * slot_bytes;
        cuda_check(cudaMemcpyAsync(hb, dev.mass, tiles * 8, cudaMemcpyDeviceToHost, hp.stream), "cudaMemcpyAsync");
        cuda_check(cudaMemcpyAsync(hb + size_t(chunk) * tph * 8, dev.max, tiles * 4, cudaMemcpyDeviceToHost, hp.stream),
                   "cudaMemcpyAsync");
        cuda_check(cudaMemcpyAsync(hb + size_t(chunk) * tph * 12, dev.below_eps, tiles * 4, cudaMemcpyDeviceToHost,
                                   hp.stream),
                   "cudaMemcpyAsync");
        cuda_check(cudaEventRecord(hp.done[s], hp.stream), "cudaEventRecord");
        if (prev_h0 >= 0) convert(prev_h0, prev_count, s ^ 1);  // overlaps this chunk's kernels
        prev_h0 = h0;
        prev_count = count;
    }
    convert(prev_h0, prev_count, ((in.heads - 1) / chunk) & 1);
    if (take_overflow(hp.stream)) throw_overflow_generic();
    return out;
}

GpuTileStatsEngine::Uploaded GpuTileStatsEngine::upload(const HeadSlice& s, paro_dtype dtype, bool with_v) const {
    if (s.is_attention())
        throw InputError(s.file, fmt::format("/layers/{}/q", s.layer), "the GPU tile statistics need q and k, not attention maps");
    if (s.tokens != grid_.tokens)
        throw InputError(s.file, fmt::format("/layers/{}/q", s.layer),
                         fmt::format("{} tokens, but the layout has {}", s.tokens, grid_.tokens));
    if (with_v && (s.v.empty() || s.value_dim != s.head_dim))
        throw InputError(s.file, fmt::format("/layers/{}/v", s.layer),
                         "the GPU output error needs v with value_dim == head_dim");
    Uploaded up;
    const size_t count = size_t(s.tokens) * size_t(s.head_dim);
    auto put = [&](const std::vector<float>& host, const char* name) {
        if (dtype == PARO_FLOAT16)
            for (float x : host)
                if (std::fabs(x) > 65504.f)
                    throw InputError(s.file, fmt::format("/layers/{}/{}", s.layer, name), "values exceed the fp16 range");
        DeviceBuffer f32(count * sizeof(float));
        f32.upload(host.data(), f32.bytes());
        if (dtype == PARO_FLOAT32) return f32;
        DeviceBuffer conv(count * elem_bytes(dtype));
        convert_from_f32(f32.as<float>(), conv.get(), dtype, count);
        synchronize();  // f32 is freed on return
        return conv;
    };
    up.q = put(s.q, "q");
    up.k = put(s.k, "k");
    if (with_v) up.v = put(s.v, "v");
    up.heads.q = up.q.get();
    up.heads.k = up.k.get();
    up.heads.q_stride_token = up.heads.k_stride_token = s.head_dim;
    up.heads.q_stride_head = up.heads.k_stride_head = s.tokens * s.head_dim;
    up.heads.heads = 1;
    up.heads.head_dim = int(s.head_dim);
    up.heads.dtype = dtype;
    up.heads.scale = s.scale;
    return up;
}

SixOrderStats GpuTileStatsEngine::compute(const HeadSlice& slice, paro_dtype dtype) {
    DeviceGuard guard(device_);
    const Uploaded up = upload(slice, dtype, false);
    try {
        return std::move(compute(up.heads).front());
    } catch (const InputError& e) {
        if (e.where() == "q/k") throw_overflow(slice);  // the CPU engine's message, naming the slice
        throw;
    }
}

std::array<double, kNumOrders> GpuTileStatsEngine::masked_output_error(const HeadSlice& slice,
                                                                       const std::array<BlockMask, kNumOrders>& masks,
                                                                       paro_dtype dtype) {
    DeviceGuard guard(device_);
    const int64_t nb = grid_.tiles_per_side();
    for (int o = 0; o < kNumOrders; ++o)
        if (masks[o].tiles_per_side() != nb)
            throw InputError("", "masks", fmt::format("mask of order {} has {} tiles per side, the layout {}",
                                                      to_string(kAllOrders[o]), masks[o].tiles_per_side(), nb));
    const Uploaded up = upload(slice, dtype, true);
    can_implement(layout_, options_, up.heads);
    const size_t n = size_t(grid_.tokens), d = size_t(slice.head_dim), mask_bytes = masks[0].bytes().size();
    ensure(row_stats_, n * kRowStatBytes);
    overflow_seen();

    // output_: dense O [N][D] fp32, dense partials [nb], diff partials [6][nb], masks [6][mask_bytes].
    const size_t at_dense_l1 = round16(n * d * sizeof(float));
    const size_t at_diff_l1 = at_dense_l1 + round16(size_t(nb) * sizeof(double));
    const size_t at_masks = at_diff_l1 + round16(kNumOrders * size_t(nb) * sizeof(double));
    ensure(output_, at_masks + kNumOrders * mask_bytes);
    for (int o = 0; o < kNumOrders; ++o) output_.upload(masks[o].bytes().data(), mask_bytes, at_masks + o * mask_bytes);

    const ts::Problem p = make_problem(up.heads, grid_, gathers_, row_stats_, overflow_, kernel_for(up.heads.dtype));
    ts::OutputErrorArgs a{};
    a.v = {up.v.get(), int64_t(n * d), int64_t(d)};
    a.masks = reinterpret_cast<const uint8_t*>(output_.as<char>() + at_masks);
    a.mask_bytes = mask_bytes;
    a.dense = output_.as<float>();
    a.dense_l1 = reinterpret_cast<double*>(output_.as<char>() + at_dense_l1);
    a.diff_l1 = reinterpret_cast<double*>(output_.as<char>() + at_diff_l1);
    cuda_check(ts::launch_row_stats(p, nullptr), "output error: row pass");
    cuda_check(ts::launch_dense_output(p, a, nullptr), "output error: dense pass");
    cuda_check(ts::launch_masked_output(p, a, nullptr), "output error: masked pass");
    if (overflow_seen()) throw_overflow(slice);

    std::vector<double> dense(static_cast<size_t>(nb)), diff(kNumOrders * static_cast<size_t>(nb));
    output_.download(dense.data(), dense.size() * sizeof(double), at_dense_l1);
    output_.download(diff.data(), diff.size() * sizeof(double), at_diff_l1);
    double dense_l1 = 0;
    for (double x : dense) dense_l1 += x;
    std::array<double, kNumOrders> out{};
    for (int o = 0; o < kNumOrders; ++o) {
        double s = 0;
        for (int64_t r = 0; r < nb; ++r) s += diff[size_t(o) * nb + r];
        out[o] = dense_l1 > 0 ? s / dense_l1 : 0.0;
    }
    return out;
}

}  // namespace paro::gpu
