#pragma once
// GpuTileStatsEngine: the GPU equivalent of TileStatsEngine (lib/calibration/paro/tile_stats.hpp)
// and of masked_output_error (output_error.hpp): the same statistics of P = softmax(scale q k^T)
// under all six axis orders, computed without ever forming an N x N matrix.
// Algorithm, precision and tolerances against the CPU: docs/gpu_calibration.md.
//
// Three ways in:
//   accumulate(heads, stats, stream)  device inputs, device statistics owned by the caller, updated
//                                     in place (mass +=, max = max, below_eps +=) on the caller's
//                                     stream without any host synchronization (the PyTorch path);
//   compute(heads)                    device inputs, host SixOrderStats per head (memory bounded by
//                                     the engine's budget, not by the number of heads);
//   compute(slice)                    a host HeadSlice: uploads and calls the batch path.
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "gpu_helpers.hpp"
#include "paro/block_mask.hpp"
#include "paro/dump.hpp"
#include "paro/tile_stats.hpp"
#include "paro/token_layout.hpp"
#include "paro_runtime.h"

namespace paro::gpu {

// q and k of a batch of heads of one (layer, sample), on the device: [heads][tokens][head_dim],
// head_dim contiguous, strides in elements.
struct DeviceHeads {
    const void* q = nullptr;
    const void* k = nullptr;
    int64_t q_stride_head = 0, q_stride_token = 0;
    int64_t k_stride_head = 0, k_stride_token = 0;
    int heads = 0;
    int head_dim = 0;
    paro_dtype dtype = PARO_FLOAT16;
    double scale = 0;  // softmax scale on q . k (> 0)
};

// Per-tile statistics on the device, [heads][6 orders][nb][nb] each (AxisOrder numbering, tiles
// row-major over the permuted sequence, as TileStats). below_eps is 32-bit: up to 2^32 / b^2
// (~10^6 for b = 64) accumulated samples per tile.
struct DeviceTileStats {
    double* mass = nullptr;
    float* max = nullptr;
    uint32_t* below_eps = nullptr;
};

// The kernels that run (docs/gpu_calibration.md): fp32 inputs run the 3xTF32 kernels; fp16 / bf16
// inputs compute S on wgmma where the build holds sm_90a machine code and the device is compute
// capability 9.0, on mma.sync everywhere else.
enum class TileStatsKernel : int { fp32_tf32x3, mma_sync, wgmma };
const char* to_string(TileStatsKernel k);  // "fp32 3xTF32", "mma.sync", "wgmma"

// Checks a request against what the kernels implement, with no device needed. Throws InputError
// naming the field at fault: tile size 64 only; head_dim 64 or 128; a known dtype; scale finite
// and > 0; q, k non-null, 16-byte aligned, strides >= head_dim and multiples of 16 bytes;
// tokens < 2^31; heads >= 1. Calls on one engine must not run concurrently (one workspace).
void can_implement(const TokenLayout& layout, const TileStatsOptions& options, const DeviceHeads& in);

class GpuTileStatsEngine {
public:
    // Uploads the six permutations (and each token's tile per order). memory_budget bounds the
    // engine's own device memory (workspace and, for compute(heads), a chunk of per-head
    // statistics). Throws RuntimeError(PARO_ERROR_NO_GPU, "no CUDA device ...") without a usable
    // device, InputError for a layout or options the kernels do not implement.
    static constexpr size_t kDefaultMemoryBudget = size_t(1) << 30;
    GpuTileStatsEngine(const TokenLayout& layout, TileStatsOptions options, int device = 0,
                       size_t memory_budget = kDefaultMemoryBudget);
    // Whether compute(heads) holds a chunk of one head within memory_budget and its pinned host
    // buffers (past them it takes one head anyway).
    static bool one_head_fits(const TileGrid& grid, size_t memory_budget);
    // The pinned host bytes compute(heads) of `heads` heads of this grid holds at most.
    static size_t pinned_bytes(const TileGrid& grid, int64_t heads);

    const TileGrid& grid() const { return grid_; }
    // The kernels that run for inputs of dtype on this engine's device.
    TileStatsKernel kernel_for(paro_dtype dtype) const;
    // For tests only: fp16 / bf16 on the mma.sync kernels even where wgmma runs, so that one
    // Hopper machine covers both paths.
    void force_mma_sync_for_testing(bool on) { force_mma_sync_ = on; }
    const TokenLayout& layout() const { return layout_; }
    const TileStatsOptions& options() const { return options_; }
    // Elements of each DeviceTileStats array per head: 6 * nb * nb.
    size_t tiles_per_head() const { return size_t(kNumOrders) * size_t(grid_.tiles()); }
    // Device bytes the engine holds now (grows up to the budget on first use).
    size_t device_bytes() const;

    // Stream-ordered, no host synchronization; stats must hold in.heads heads. A row whose scores
    // overflow float32 gives NaN/inf statistics and raises the flag overflow_seen() reads.
    void accumulate(const DeviceHeads& in, const DeviceTileStats& stats, void* stream = nullptr);
    // Synchronizes the device; true when any accumulate since the last call met an overflow.
    bool overflow_seen();

    // Host statistics per head (throws InputError when the scores overflow). Pipelined: chunks of
    // heads run on the engine's stream while the previous chunk's statistics come back through
    // pinned host buffers (at most 256 MiB, kept by the engine) and are converted on all cores.
    // The inputs must be complete when it is called: it waits for the whole device only after an
    // accumulate() on another stream, else for its own stream (another engine's work goes on).
    std::vector<SixOrderStats> compute(const DeviceHeads& in);
    // One host head: q, k uploaded and converted to dtype (fp32 keeps the CPU's inputs exactly;
    // fp16 / bf16 round them first). Throws the CPU engine's overflow InputError.
    SixOrderStats compute(const HeadSlice& slice, paro_dtype dtype = PARO_FLOAT32);

    // Relative L1 of the masked-renormalized output against the dense one, per order, as
    // paro::masked_output_error (output_error.hpp). slice must carry v with value_dim == head_dim.
    std::array<double, kNumOrders> masked_output_error(const HeadSlice& slice,
                                                       const std::array<BlockMask, kNumOrders>& masks,
                                                       paro_dtype dtype = PARO_FLOAT32);

private:
    struct Uploaded;  // one host head on the device
    Uploaded upload(const HeadSlice& slice, paro_dtype dtype, bool with_v) const;
    void ensure(DeviceBuffer& buf, size_t bytes);
    int max_chunk_heads(size_t bytes_per_head) const;

    TokenLayout layout_;
    TileStatsOptions options_;
    TileGrid grid_;
    int device_ = 0;
    size_t budget_ = 0;
    DeviceBuffer gathers_;    // [6][N] int32
    DeviceBuffer overflow_;   // int
    DeviceBuffer row_stats_;  // [chunk heads][N] float2
    DeviceBuffer stats_;      // compute(heads): [chunk heads] of DeviceTileStats arrays
    DeviceBuffer output_;     // masked_output_error: dense O and partial sums
    bool wgmma_ = false;           // sm_90a machine code and a compute capability 9.0 device
    bool force_mma_sync_ = false;  // force_mma_sync_for_testing
    bool foreign_accumulate_ = false;  // accumulate() ran on a stream not compute()'s since the flag was read

    // The overflow flag after the work of stream st (nullptr: of the whole device), then cleared.
    bool take_overflow(void* st);

    struct HostPipeline;      // compute(heads): pinned buffers, stream, events
    std::shared_ptr<HostPipeline> pipe_;
};

}  // namespace paro::gpu
