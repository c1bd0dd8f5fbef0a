// Masked output error on the GPU, after pass 1 (row_stats) of tile_stats_kernels.cu:
//   dense pass  (original order): O = P V, written by token, and sum |O| per query tile;
//   masked pass (grid nb x 6): per order, only the kept key tiles: O_m = (P * keep) V / sum(P * keep)
//               (zero where the kept tiles hold no mass), and sum |O_m - O| per query tile.
// S = Q K^T runs on tensor cores as in pass 2; P V runs in fp32 FMA from shared memory: this is a
// per-head objective of the calibrator, not a hot path, and fp32 keeps it within 1e-4 of the CPU
// (fp16 / bf16 P would not: bf16 P alone is 4e-3 relative). Per-tile partial sums are doubles
// summed in a fixed order, so results are deterministic.
#include "common.cuh"
#include "tile_stats_dispatch.cuh"
#include "tile_stats_launch.hpp"
#include "tile_stats_tile.cuh"

namespace paro::gpu::tilestats {

namespace {

constexpr int kPPitch = kTile + 4;  // floats per row of the P tile
template <int D>
constexpr int vpitch() {  // floats per row of the V tile (16-byte rows, float4 loads)
    return D + 4;
}

template <typename T, int D>
constexpr size_t output_smem_bytes() {  // Q and K tiles, V and P tiles in fp32
    return 2 * size_t(tile_elems<T, D>()) * sizeof(T) + size_t(kTile) * (vpitch<D>() + kPPitch) * sizeof(float);
}

// Converts 64 rows of V (gathered like the keys; zeros past the end) into fp32 shared memory.
template <typename T, int D>
__device__ __forceinline__ void load_v_tile(float* sv, const T* v, int64_t stride_token, const int32_t* gather, int base,
                                            int tokens) {
    for (int i = threadIdx.x; i < kTile * D / 8; i += kThreads) {
        const int r = i / (D / 8), c8 = (i % (D / 8)) * 8, pos = base + r;
        float x[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
        if (pos < tokens) Elem<T>::load8(v + int64_t(gather ? gather[pos] : pos) * stride_token + c8, x);
        float4* dst = reinterpret_cast<float4*>(sv + r * vpitch<D>() + c8);
        dst[0] = make_float4(x[0], x[1], x[2], x[3]);
        dst[1] = make_float4(x[4], x[5], x[6], x[7]);
    }
}

// Sum over the CTA of one float per thread, as a double; thread 0 gets the result.
__device__ __forceinline__ double cta_sum(float x, double (&scratch)[4]) {
    double d = x;
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) d += __shfl_xor_sync(0xffffffffu, d, off);
    if ((threadIdx.x & 31) == 0) scratch[threadIdx.x >> 5] = d;
    __syncthreads();
    return ((scratch[0] + scratch[1]) + scratch[2]) + scratch[3];
}

template <typename T, int D, bool kDense>
__global__ void __launch_bounds__(kThreads) output_kernel(Problem p, OutputErrorArgs a) {
    extern __shared__ __align__(16) unsigned char smem[];
    __shared__ float kept_row[kTile];
    __shared__ double scratch[4];
    T* sq = reinterpret_cast<T*>(smem);
    T* sk = sq + tile_elems<T, D>();
    float* sv = reinterpret_cast<float*>(sk + tile_elems<T, D>());
    float* sp = sv + kTile * vpitch<D>();
    const int R = blockIdx.x, o = kDense ? 0 : int(blockIdx.y);
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    const int32_t* gather = kDense ? nullptr : p.gathers + size_t(o) * p.tokens;
    const uint8_t* mask = kDense ? nullptr : a.masks + size_t(o) * a.mask_bytes;
    const T* q = static_cast<const T*>(p.q.data);
    const T* k = static_cast<const T*>(p.k.data);
    const T* v = static_cast<const T*>(a.v.data);

    load_tile_async<T, D>(sq, q, p.q.stride_token, gather, R * kTile, p.tokens);
    cp_async_commit();
    RowSoftmax rows;
    rows.load(p.row_stats, gather, R * kTile + warp * 16 + g, p.tokens, 0.f);

    // P V: this thread owns rows prow .. prow + 7 and channels pch .. pch + kCh - 1.
    constexpr int kCh = D / 16;
    const int prow = (threadIdx.x >> 4) * 8, pch = (threadIdx.x & 15) * kCh;
    float acc[8][kCh];
#pragma unroll
    for (int i = 0; i < 8; ++i)
#pragma unroll
        for (int c = 0; c < kCh; ++c) acc[i][c] = 0.f;
    float kept[2] = {0.f, 0.f};
    const int last_valid = p.tokens - (p.tiles - 1) * kTile;

    for (int C = 0; C < p.tiles; ++C) {
        if (!kDense) {  // the same for the whole CTA
            const size_t bit = size_t(R) * p.tiles + C;
            if (!((mask[bit >> 3] >> (bit & 7)) & 1u)) continue;
        }
        load_tile_async<T, D>(sk, k, p.k.stride_token, gather, C * kTile, p.tokens);
        cp_async_commit();
        load_v_tile<T, D>(sv, v, a.v.stride_token, gather, C * kTile, p.tokens);
        cp_async_wait<0>();
        __syncthreads();

        float c[8][4];
        warp_scores<T, D>(sq + warp * 16 * pitch<T, D>(), sk, c, lane);
        if (C == p.tiles - 1) mask_keys(c, last_valid, lane);
#pragma unroll
        for (int j = 0; j < 8; ++j)
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                const int r = e >> 1;
                const float pe = fast_exp2(rows.log2p(c[j][e], r, p.scale_log2));
                kept[r] += pe;
                sp[(warp * 16 + g + 8 * r) * kPPitch + 8 * j + 2 * t + (e & 1)] = pe;
            }
        __syncthreads();
#pragma unroll 4
        for (int key = 0; key < kTile; ++key) {
            float vv[kCh];
#pragma unroll
            for (int c4 = 0; c4 < kCh; c4 += 4) {
                const float4 x = *reinterpret_cast<const float4*>(sv + key * vpitch<D>() + pch + c4);
                vv[c4] = x.x;
                vv[c4 + 1] = x.y;
                vv[c4 + 2] = x.z;
                vv[c4 + 3] = x.w;
            }
#pragma unroll
            for (int i = 0; i < 8; ++i) {
                const float pe = sp[(prow + i) * kPPitch + key];
#pragma unroll
                for (int c2 = 0; c2 < kCh; ++c2) acc[i][c2] = fmaf(pe, vv[c2], acc[i][c2]);
            }
        }
        __syncthreads();
    }
    cp_async_wait<0>();  // the Q tile, when no key tile was kept

    if (!kDense) {
#pragma unroll
        for (int r = 0; r < 2; ++r) {
            float s = kept[r];
            s += __shfl_xor_sync(0xffffffffu, s, 1);
            s += __shfl_xor_sync(0xffffffffu, s, 2);
            if (t == 0) kept_row[warp * 16 + g + 8 * r] = s;
        }
        __syncthreads();
    }
    float l1 = 0.f;
#pragma unroll
    for (int i = 0; i < 8; ++i) {
        const int pos = R * kTile + prow + i;
        if (pos >= p.tokens) continue;
        float* dense = a.dense + int64_t(gather ? gather[pos] : pos) * D + pch;
        if (kDense) {
#pragma unroll
            for (int c2 = 0; c2 < kCh; ++c2) {
                dense[c2] = acc[i][c2];
                l1 += fabsf(acc[i][c2]);
            }
        } else {
            // A row whose kept tiles hold no mass outputs zeros (the runtime's convention).
            const float s = kept_row[prow + i], inv = s > 0.f ? 1.f / s : 0.f;
#pragma unroll
            for (int c2 = 0; c2 < kCh; ++c2) l1 += fabsf(acc[i][c2] * inv - dense[c2]);
        }
    }
    const double total = cta_sum(l1, scratch);
    if (threadIdx.x == 0) (kDense ? a.dense_l1[R] : a.diff_l1[size_t(o) * p.tiles + R]) = total;
}

template <bool kDense>
cudaError_t launch_output(const Problem& p, const OutputErrorArgs& a, cudaStream_t st) {
    return dispatch(p.dtype, p.head_dim, [&](auto tag, auto dim) {
        using T = decltype(tag);
        constexpr int D = decltype(dim)::value;
        constexpr size_t smem = output_smem_bytes<T, D>();
        const cudaError_t e =
            cudaFuncSetAttribute(output_kernel<T, D, kDense>, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem));
        if (e != cudaSuccess) return e;
        output_kernel<T, D, kDense><<<dim3(p.tiles, kDense ? 1 : kOrders), kThreads, smem, st>>>(p, a);
        return cudaGetLastError();
    });
}

}  // namespace

cudaError_t launch_dense_output(const Problem& p, const OutputErrorArgs& a, cudaStream_t st) {
    return launch_output<true>(p, a, st);
}
cudaError_t launch_masked_output(const Problem& p, const OutputErrorArgs& a, cudaStream_t st) {
    return launch_output<false>(p, a, st);
}

}  // namespace paro::gpu::tilestats
