#pragma once
// CudaTileStatsBackend: the calibrator's TileStatsBackend on a GPU (GpuTileStatsEngine), taking
// host slices from the dump reader. A head's q and k go to the device as fp16 when every value is
// exactly an fp16 (dumps stored as fp16: the tensor-core path sees the same numbers as the CPU), else
// as fp32 (3xTF32 path), decided per head, narrowed on all cores into pinned memory that the
// engine keeps. Results agree with the CPU engine within docs/gpu_calibration.md's tolerances.
#include <memory>
#include <string>
#include <vector>

#include "gpu_helpers.hpp"
#include "paro/tile_stats_backend.hpp"

namespace paro::gpu {

class GpuTileStatsEngine;

class CudaTileStatsBackend : public TileStatsBackend {
public:
    // Throws RuntimeError(PARO_ERROR_NO_GPU) without a usable device `device`. `sharers`: backends
    // on the same device, which split one backend's batch and device memory budget between them.
    CudaTileStatsBackend(const TokenLayout& layout, TileStatsOptions options, int device, int sharers = 1);
    // How many backends a device runs for this layout: kBackendsPerDevice while each one's share of
    // the device budget holds a chunk of one head's statistics, so that the device's statistics
    // workspace stays within one backend's budget; else 1 (past about N = 76k tokens, where two
    // slots of a head's six orders of statistics outgrow the 256 MiB pinned cap: 268 MB at N = 75,600,
    // 662 MB at N = 118,800).
    static int sharers(const TokenLayout& layout, const TileStatsOptions& options);
    ~CudaTileStatsBackend() override;

    std::string describe() const override;
    int64_t batch_heads() const override;
    std::vector<SixOrderStats> compute_batch(const std::vector<HeadSlice>& heads) override;
    bool takes_halves() const override { return true; }  // fp16 is what exact heads go up in
    double working_bytes() const override;  // the engine's pinned buffers
    std::array<double, kNumOrders> output_error(const HeadSlice& slice,
                                                const std::array<BlockMask, kNumOrders>& masks) const override;

private:
    int device_;
    int64_t batch_heads_;
    std::unique_ptr<GpuTileStatsEngine> engine_;
    // Uploads the staged q then k of heads[group[..]] (fp16 if half, else fp32) and computes them.
    std::vector<SixOrderStats> compute_staged(const std::vector<HeadSlice>& heads, const std::vector<size_t>& group,
                                              bool half);
    // A batch of both: each group staged in its format and computed, the results in the heads' order.
    std::vector<SixOrderStats> compute_groups(const std::vector<HeadSlice>& heads, const std::vector<size_t>& half,
                                              const std::vector<size_t>& full);

    PinnedBuffer staging_;  // q and k of a batch (or of its heads of one upload format) as uploaded
    DeviceBuffer inputs_;
};

// Number of CUDA devices this process can use (0 without a driver or device).
int cuda_device_count();

// Backends per device the calibration runs where they fit (CudaTileStatsBackend::sharers): each
// one's host work (narrowing a batch, the upload, the statistics' download and conversion)
// overlaps another's kernels, where one backend left the GPU idle for it (bench/RESULTS.md, "Two
// backends per GPU").
constexpr int kBackendsPerDevice = 2;

}  // namespace paro::gpu
