#include "cuda_tile_stats_backend.hpp"

#include <cuda_runtime.h>
#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "gpu_helpers.hpp"
#include "gpu_tile_stats.hpp"
#include "paro/half.hpp"

namespace paro::gpu {

namespace {

// Heads per batch of a device: enough to fill the GPU at the shapes that matter (a layer of 48
// heads is two or three batches), few enough that the host copies of a batch's statistics (6
// orders x nb^2 tiles x 16 bytes a head: 134 MB at N = 75,600) stay small. Backends sharing a
// device split it, and the engine's memory budget.
constexpr int64_t kBatchHeads = 16;

// Stages tensor t of a batch (q of every head, then k of every head) at out, as halves (returns
// whether the tensor is exact in them: kept halves are, floats when they narrow exactly) or as
// floats (kept halves widened; returns true). Per tensor: a dump may store q as halves and k as
// floats, and such a head goes up in fp32 when its k is not exact in fp16.
bool stage(const std::vector<HeadSlice>& heads, size_t t, void* out, bool half) {
    const HeadSlice& h = heads[t % heads.size()];
    const bool q = t < heads.size();
    const std::vector<uint16_t>& kept = q ? h.q_half : h.k_half;
    const std::vector<float>& floats = q ? h.q : h.k;
    if (half && kept.empty()) return narrow_exact(floats.data(), static_cast<uint16_t*>(out), floats.size());
    if (half)
        std::memcpy(out, kept.data(), kept.size() * sizeof(uint16_t));
    else if (kept.empty())
        std::memcpy(out, floats.data(), floats.size() * sizeof(float));
    else
        (void)widen_halves(kept.data(), static_cast<float*>(out), kept.size());  // finite: decode checked
    return true;
}

}  // namespace

int cuda_device_count() {
    int n = 0;
    return cudaGetDeviceCount(&n) == cudaSuccess ? n : 0;
}

CudaTileStatsBackend::CudaTileStatsBackend(const TokenLayout& layout, TileStatsOptions options, int device,
                                           int sharers)
    : TileStatsBackend(layout, options),
      device_(device),
      batch_heads_(std::max<int64_t>(1, kBatchHeads / sharers)),
      engine_(std::make_unique<GpuTileStatsEngine>(layout, options, device,
                                                   GpuTileStatsEngine::kDefaultMemoryBudget / size_t(sharers))) {
    PARO_ASSERT(sharers >= 1);
}

int CudaTileStatsBackend::sharers(const TokenLayout& layout, const TileStatsOptions& options) {
    return GpuTileStatsEngine::one_head_fits(TileGrid{layout.tokens(), options.block},
                                             GpuTileStatsEngine::kDefaultMemoryBudget / kBackendsPerDevice)
               ? kBackendsPerDevice
               : 1;
}

CudaTileStatsBackend::~CudaTileStatsBackend() = default;

std::string CudaTileStatsBackend::describe() const {
    cudaDeviceProp prop{};
    const std::string name = cudaGetDeviceProperties(&prop, device_) == cudaSuccess ? prop.name : "?";
    return fmt::format("CUDA device {} ({})", device_, name);
}

int64_t CudaTileStatsBackend::batch_heads() const { return batch_heads_; }

double CudaTileStatsBackend::working_bytes() const {
    return double(GpuTileStatsEngine::pinned_bytes(grid(), batch_heads_));
}

std::vector<SixOrderStats> CudaTileStatsBackend::compute_batch(const std::vector<HeadSlice>& heads) {
    if (heads.empty()) return {};
    const int64_t n = grid().tokens, d = heads.front().head_dim;
    for (const HeadSlice& s : heads) {
        PARO_ASSERT(s.tokens == n);
        if (s.is_attention())
            throw InputError(s.file, fmt::format("/layers/{}/attn", s.layer),
                             "the GPU tile statistics need q and k, not attention maps (use --device cpu)");
        if (s.head_dim != d || s.scale != heads.front().scale)
            throw InputError(s.file, fmt::format("/layers/{}/q", s.layer),
                             "heads of one batch differ in head dim or scale");
    }
    // Each head's q and k go up in fp16 when both are exact in it, else in fp32: the kernel a head
    // gets (fp16 MMA or fp32 as 3 x tf32) then depends on its own values only, not on its
    // batch-mates', so its statistics are the same bits however heads are batched (shards, ranks,
    // backends). The narrowing, into staging in passing, is the test.
    cuda_check(cudaSetDevice(device_), "cudaSetDevice");  // before any CUDA call: no context on GPU 0
    const size_t per_tensor = size_t(n * d), count = heads.size();
    staging_.reserve(2 * count * per_tensor * sizeof(float));
    std::vector<char> exact(2 * count);
#pragma omp parallel for schedule(static)
    for (int64_t t = 0; t < int64_t(2 * count); ++t)
        exact[t] = stage(heads, size_t(t), static_cast<uint16_t*>(staging_.get()) + t * per_tensor, true);
    std::vector<size_t> half, full;
    for (size_t i = 0; i < count; ++i) (exact[i] && exact[count + i] ? half : full).push_back(i);
    try {
        if (full.empty()) return compute_staged(heads, half, true);  // staged as it stands
        return compute_groups(heads, half, full);
    } catch (const InputError&) {
        // Overflowing scores: name the first head whose CPU rows overflow, as the CPU engine does.
        for (const HeadSlice& s : heads) (void)engine_->compute(with_floats(s), PARO_FLOAT32);
        throw;
    }
}

std::vector<SixOrderStats> CudaTileStatsBackend::compute_groups(const std::vector<HeadSlice>& heads,
                                                                const std::vector<size_t>& half,
                                                                const std::vector<size_t>& full) {
    const size_t per_tensor = size_t(grid().tokens * heads.front().head_dim), count = heads.size();
    std::vector<SixOrderStats> out(count);
    for (const bool in_half : {true, false}) {
        const std::vector<size_t>& group = in_half ? half : full;
        if (group.empty()) continue;
        const size_t g = group.size();
#pragma omp parallel for schedule(static)
        for (int64_t t = 0; t < int64_t(2 * g); ++t)
            (void)stage(heads, size_t(t) / g * count + group[size_t(t) % g],
                        static_cast<char*>(staging_.get()) + t * per_tensor * (in_half ? 2 : 4), in_half);
        std::vector<SixOrderStats> part = compute_staged(heads, group, in_half);
        for (size_t j = 0; j < g; ++j) out[group[j]] = std::move(part[j]);
    }
    return out;
}

std::vector<SixOrderStats> CudaTileStatsBackend::compute_staged(const std::vector<HeadSlice>& heads,
                                                                const std::vector<size_t>& group, bool half) {
    const int64_t n = grid().tokens, d = heads.front().head_dim;
    const size_t per_tensor = size_t(n * d), elem = half ? 2 : 4, count = group.size() * per_tensor;
    const size_t bytes = 2 * count * elem;
    if (inputs_.bytes() < bytes) inputs_ = DeviceBuffer(bytes);
    inputs_.upload(staging_.get(), bytes);
    DeviceHeads in;
    in.q = inputs_.get();
    in.k = static_cast<const uint8_t*>(inputs_.get()) + count * elem;
    in.q_stride_head = in.k_stride_head = int64_t(per_tensor);
    in.q_stride_token = in.k_stride_token = d;
    in.heads = static_cast<int>(group.size());
    in.head_dim = static_cast<int>(d);
    in.dtype = half ? PARO_FLOAT16 : PARO_FLOAT32;
    in.scale = heads.front().scale;
    return engine_->compute(in);
}

std::array<double, kNumOrders> CudaTileStatsBackend::output_error(
    const HeadSlice& slice, const std::array<BlockMask, kNumOrders>& masks) const {
    if (slice.value_dim != slice.head_dim) return TileStatsBackend::output_error(slice, masks);
    return engine_->masked_output_error(slice, masks, PARO_FLOAT32);
}

}  // namespace paro::gpu
