// The two passes of the GPU tile statistics (docs/gpu_calibration.md):
//   pass 1 (row_stats_kernel): per query row, in the original order, max_j s_ij and the log2 of
//     sum_j 2^((s_ij - max) * scale_log2), flash-style over all key tiles (order independent).
//   pass 2 (tile_stats_kernel): per (head, order o, permuted query tile R), every permuted key
//     tile C of order o: P = 2^((s - max) * scale_log2 - log2 sum), reduced to the tile's sum,
//     max and count of P < eps in registers, warp shuffles and shared memory. Each tile of each
//     order is updated by exactly one CTA: no atomics, and the same inputs give the same bits.
#include "tile_stats_dispatch.cuh"
#include "tile_stats_launch.hpp"
#include "tile_stats_tile.cuh"

namespace paro::gpu::tilestats {

namespace {

template <typename T, int D>
constexpr size_t stream_smem_bytes() {  // the Q tile and two key tiles
    return 3 * size_t(tile_elems<T, D>()) * sizeof(T);
}

template <typename T, int D>
__global__ void __launch_bounds__(kThreads) row_stats_kernel(Problem p) {
    extern __shared__ __align__(16) unsigned char smem[];
    T* sq = reinterpret_cast<T*>(smem);
    const int R = blockIdx.x, h = blockIdx.y, warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const T* q = static_cast<const T*>(p.q.data) + h * p.q.stride_head;
    const T* k = static_cast<const T*>(p.k.data) + h * p.k.stride_head;

    load_tile_async<T, D>(sq, q, p.q.stride_token, nullptr, R * kTile, p.tokens);
    KeyStream<T, D> ks{sq + tile_elems<T, D>(), k, p.k.stride_token, nullptr, p.tokens, p.tiles};
    ks.prefetch(0);

    // Online softmax per row (rows g and g + 8 of the warp); this thread's share of the row sum in
    // double, like the CPU engine, so that N = 10^5 terms do not drift.
    float m[2] = {-INFINITY, -INFINITY};
    double l[2] = {0.0, 0.0};
    const int last_valid = p.tokens - (p.tiles - 1) * kTile;
    for (int C = 0; C < p.tiles; ++C) {
        ks.prefetch(C + 1);
        const T* sk = ks.wait(C);
        float c[8][4];
        warp_scores<T, D>(sq + warp * 16 * pitch<T, D>(), sk, c, lane);
        if (C == p.tiles - 1) mask_keys(c, last_valid, lane);
#pragma unroll
        for (int r = 0; r < 2; ++r) {
            float mx = -INFINITY;
#pragma unroll
            for (int j = 0; j < 8; ++j) mx = fmaxf(mx, fmaxf(c[j][2 * r], c[j][2 * r + 1]));
            mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
            mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
            const float mn = fmaxf(m[r], mx);
            float s = 0.f;
#pragma unroll
            for (int j = 0; j < 8; ++j)
                s += fast_exp2((c[j][2 * r] - mn) * p.scale_log2) + fast_exp2((c[j][2 * r + 1] - mn) * p.scale_log2);
            l[r] = l[r] * double(fast_exp2((m[r] - mn) * p.scale_log2)) + double(s);
            m[r] = mn;
        }
        __syncthreads();
    }
#pragma unroll
    for (int r = 0; r < 2; ++r) {
        l[r] += __shfl_xor_sync(0xffffffffu, l[r], 1);
        l[r] += __shfl_xor_sync(0xffffffffu, l[r], 2);
        const int row = R * kTile + warp * 16 + (lane >> 2) + 8 * r;
        if ((lane & 3) == 0 && row < p.tokens) {
            const float lg = float(log2(l[r]));
            if (!isfinite(m[r]) || !isfinite(lg)) *p.overflow = 1;
            p.row_stats[size_t(h) * p.tokens + row] = make_float2(m[r], lg);
        }
    }
}

template <typename T, int D>
__global__ void __launch_bounds__(kThreads) tile_stats_kernel(Problem p, float log2_eps, StatsOut out) {
    extern __shared__ __align__(16) unsigned char smem[];
    __shared__ float part_sum[2][4], part_max[2][4];  // per warp, double-buffered by key tile
    __shared__ uint32_t part_cnt[2][4];
    T* sq = reinterpret_cast<T*>(smem);
    const int R = blockIdx.x, o = blockIdx.y, h = blockIdx.z, warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const T* q = static_cast<const T*>(p.q.data) + h * p.q.stride_head;
    const T* k = static_cast<const T*>(p.k.data) + h * p.k.stride_head;
    const int32_t* gather = p.gathers + size_t(o) * p.tokens;

    load_tile_async<T, D>(sq, q, p.q.stride_token, gather, R * kTile, p.tokens);
    KeyStream<T, D> ks{sq + tile_elems<T, D>(), k, p.k.stride_token, gather, p.tokens, p.tiles};
    ks.prefetch(0);
    RowSoftmax rows;
    rows.load(p.row_stats + size_t(h) * p.tokens, gather, R * kTile + warp * 16 + (lane >> 2), p.tokens, log2_eps);

    const size_t base = ((size_t(h) * kOrders + o) * p.tiles + R) * p.tiles;
    const int last_valid = p.tokens - (p.tiles - 1) * kTile;
    // Masked keys of the ragged last tile have P = 0: below eps for every valid row unless eps <= 0.
    const uint32_t masked_below =
        log2_eps > -INFINITY ? uint32_t(min(kTile, p.tokens - R * kTile) * (kTile - last_valid)) : 0u;
    // Thread 0 folds each tile into `out`; it loads a tile's previous values one tile ahead, so the
    // load latency hides behind that tile's math instead of stalling the CTA at the next barrier.
    const bool leader = threadIdx.x == 0;
    double prev_mass = 0.0;
    float prev_max = 0.f;
    uint32_t prev_cnt = 0;
    auto flush = [&](int C) {
        const int b = C & 1;
        const float s = ((part_sum[b][0] + part_sum[b][1]) + part_sum[b][2]) + part_sum[b][3];
        const float mx = fmaxf(fmaxf(part_max[b][0], part_max[b][1]), fmaxf(part_max[b][2], part_max[b][3]));
        uint32_t n = part_cnt[b][0] + part_cnt[b][1] + part_cnt[b][2] + part_cnt[b][3];
        if (C == p.tiles - 1) n -= masked_below;
        out.mass[base + C] = prev_mass + double(s);
        out.max[base + C] = fmaxf(prev_max, exp2f(mx));
        out.below_eps[base + C] = prev_cnt + n;
    };

    for (int C = 0; C < p.tiles; ++C) {
        ks.prefetch(C + 1);
        const T* sk = ks.wait(C);
        if (leader) {
            if (C > 0) flush(C - 1);
            prev_mass = out.mass[base + C];
            prev_max = out.max[base + C];
            prev_cnt = out.below_eps[base + C];
        }
        float c[8][4];
        warp_scores<T, D>(sq + warp * 16 * pitch<T, D>(), sk, c, lane);
        if (C == p.tiles - 1) mask_keys(c, last_valid, lane);
        // log2 P: the max and the eps test need no exponential, only the sum does.
        float sum = 0.f, mx = -INFINITY;
        uint32_t cnt = 0;
#pragma unroll
        for (int j = 0; j < 8; ++j)
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                const int r = e >> 1;
                const float t = rows.log2p(c[j][e], r, p.scale_log2);
                sum += fast_exp2(t);
                mx = fmaxf(mx, t);
                cnt += t < rows.thr[r];
            }
#pragma unroll
        for (int off = 16; off > 0; off >>= 1) {
            sum += __shfl_xor_sync(0xffffffffu, sum, off);
            mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, off));
            cnt += __shfl_xor_sync(0xffffffffu, cnt, off);
        }
        if (lane == 0) {
            part_sum[C & 1][warp] = sum;
            part_max[C & 1][warp] = mx;
            part_cnt[C & 1][warp] = cnt;
        }
        __syncthreads();
    }
    if (leader) flush(p.tiles - 1);
}

}  // namespace

cudaError_t launch_row_stats(const Problem& p, cudaStream_t st) {
    return dispatch(p.dtype, p.head_dim, [&](auto tag, auto dim) {
        using T = decltype(tag);
        constexpr int D = decltype(dim)::value;
        constexpr size_t smem = stream_smem_bytes<T, D>();
        const cudaError_t e = cudaFuncSetAttribute(row_stats_kernel<T, D>, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem));
        if (e != cudaSuccess) return e;
        row_stats_kernel<T, D><<<dim3(p.tiles, p.heads), kThreads, smem, st>>>(p);
        return cudaGetLastError();
    });
}

cudaError_t launch_tile_stats(const Problem& p, float log2_eps, const StatsOut& out, cudaStream_t st) {
    return dispatch(p.dtype, p.head_dim, [&](auto tag, auto dim) {
        using T = decltype(tag);
        constexpr int D = decltype(dim)::value;
        constexpr size_t smem = stream_smem_bytes<T, D>();
        const cudaError_t e = cudaFuncSetAttribute(tile_stats_kernel<T, D>, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem));
        if (e != cudaSuccess) return e;
        tile_stats_kernel<T, D><<<dim3(p.tiles, kOrders, p.heads), kThreads, smem, st>>>(p, log2_eps, out);
        return cudaGetLastError();
    });
}

}  // namespace paro::gpu::tilestats
