#pragma once
// Internal interface between the GPU tile-statistics engine (gpu_tile_stats.cpp) and its kernels
// (tile_stats_kernels.cu, output_error_kernels.cu): plain structs of device pointers, and
// launchers that return the cudaError_t of their launch. The engine checks every shape before
// (can_implement); the kernels assume tile size 64, head dim 64 or 128, 16-byte aligned rows.
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace paro::gpu::tilestats {

enum class Elt : int { f32 = 0, f16 = 1, bf16 = 2 };  // the values of paro_dtype

// Which kernels run (the engine decides, GpuTileStatsEngine::kernel_for):
//   fp32 inputs      the 3xTF32 kernels (S on mma.sync m16n8k8, three products per term)
//   fp16 / bf16      Q fragments in registers, a 3-stage swizzled key ring (one barrier per key tile),
//                    per-thread partials reduced once per 4 key tiles; S on wgmma m64n64k16 where
//                    the build holds sm_90a machine code and the device is compute capability 9.0
//                    (Problem::wgmma), on mma.sync m16n8k16 everywhere else.
// True when this build holds sm_90a machine code for the wgmma kernels.
bool wgmma_built();

struct HeadTensor {  // [heads][tokens][dim], dim contiguous; strides in elements
    const void* data;
    int64_t stride_head, stride_token;
};

// One (layer, sample): `heads` heads of q and k, and the per-row softmax statistics of pass 1.
struct Problem {
    int tokens, tiles;        // N and nb = ceil(N / 64)
    int heads, head_dim;
    Elt dtype;
    HeadTensor q, k;
    const int32_t* gathers;   // [6][N]: permuted position -> original token (AxisOrder numbering)
    float scale_log2;         // softmax scale * log2(e), > 0
    float2* row_stats;        // [heads][N] by original token: (max_j q.k_j, log2 sum_j 2^((q.k_j - max) * scale_log2))
    int* overflow;            // set to 1 when a row's max or sum is not finite (never cleared here)
    bool wgmma;               // fp16 / bf16: S on wgmma (only where wgmma_built() and the device is 9.0)
};

// Per-tile statistics, [heads][6][nb][nb] row-major over the permuted tiles. Kernels ACCUMULATE:
// mass +=, max = max(max, .), below_eps += (zero them first for one head's statistics).
struct StatsOut {
    double* mass;
    float* max;
    uint32_t* below_eps;
};

// Pass 1: row_stats for every head (grid nb x heads).
cudaError_t launch_row_stats(const Problem& p, cudaStream_t st);
// Pass 2: every (head, order, query tile) streams all key tiles of that order (grid nb x 6 x heads).
cudaError_t launch_tile_stats(const Problem& p, float log2_eps, const StatsOut& out, cudaStream_t st);

// Masked output error of one head (p.heads == 1), after pass 1. value dim == head dim.
struct OutputErrorArgs {
    HeadTensor v;
    const uint8_t* masks;     // [6][mask_bytes]: BlockMask bits (tile t = r * nb + c: byte t / 8, bit t % 8)
    size_t mask_bytes;
    float* dense;             // [N][D] dense output O = P V by original token (written by the dense pass)
    double* dense_l1;         // [nb]: sum |O| over the rows of each query tile (dense pass)
    double* diff_l1;          // [6][nb]: sum |O_masked - O| over the rows of each permuted query tile
};
cudaError_t launch_dense_output(const Problem& p, const OutputErrorArgs& a, cudaStream_t st);
cudaError_t launch_masked_output(const Problem& p, const OutputErrorArgs& a, cudaStream_t st);

}  // namespace paro::gpu::tilestats
