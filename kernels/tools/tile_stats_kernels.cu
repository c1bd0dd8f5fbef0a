// The two passes of the GPU tile statistics (docs/gpu_calibration.md):
//   pass 1 (row stats): per query row, in the original order, max_j s_ij and the log2 of
//     sum_j 2^((s_ij - max) * scale_log2), flash-style over all key tiles (order independent).
//   pass 2 (tile stats): per (head, order o, permuted query tile R), every permuted key tile C of
//     order o: P = 2^((s - max) * scale_log2 - log2 sum), reduced to the tile's sum, max and count
//     of P < eps in registers and shared memory. Each tile of each order is updated by exactly one
//     CTA: no atomics, and the same inputs give the same bits.
// Two families: the fp32 kernels (S in 3xTF32 from padded shared tiles, a double buffer of key
// tiles) and the fp16 / bf16 kernels (Q fragments in registers, a 3-stage ring of swizzled key
// tiles with one barrier per tile, S on wgmma or mma.sync, per-thread partials reduced once per 4
// key tiles).
#include "tile_stats_dispatch.cuh"
#include "tile_stats_launch.hpp"
#include "tile_stats_tile.cuh"

#include <utility>

namespace paro::gpu::tilestats {

namespace {

// ---------------------------------------------------------------------------------------------
// fp32 kernels: the Q tile and two key tiles in padded shared memory, S in 3xTF32 per warp.
// ---------------------------------------------------------------------------------------------

template <int D>
constexpr size_t fp32_smem_bytes() {  // the Q tile and two key tiles
    return 3 * size_t(tile_elems<float, D>()) * sizeof(float);
}

template <int D>
__global__ void __launch_bounds__(kThreads) row_stats_fp32_kernel(Problem p) {
    extern __shared__ __align__(16) unsigned char smem[];
    float* sq = reinterpret_cast<float*>(smem);
    const int R = blockIdx.x, h = blockIdx.y, warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const float* q = static_cast<const float*>(p.q.data) + h * p.q.stride_head;
    const float* k = static_cast<const float*>(p.k.data) + h * p.k.stride_head;

    load_tile_async<float, D>(sq, q, p.q.stride_token, nullptr, R * kTile, p.tokens);
    KeyStream<float, D> ks{sq + tile_elems<float, D>(), k, p.k.stride_token, nullptr, p.tokens, p.tiles};
    ks.prefetch(0);

    // Online softmax per row (rows g and g + 8 of the warp); this thread's share of the row sum in
    // double, like the CPU engine, so that N = 10^5 terms do not drift.
    float m[2] = {-INFINITY, -INFINITY};
    double l[2] = {0.0, 0.0};
    const int last_valid = p.tokens - (p.tiles - 1) * kTile;
    for (int C = 0; C < p.tiles; ++C) {
        ks.prefetch(C + 1);
        const float* sk = ks.wait(C);
        float c[8][4];
        warp_scores<float, D>(sq + warp * 16 * pitch<float, D>(), sk, c, lane);
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

template <int D>
__global__ void __launch_bounds__(kThreads) tile_stats_fp32_kernel(Problem p, float log2_eps, StatsOut out) {
    extern __shared__ __align__(16) unsigned char smem[];
    __shared__ float part_sum[2][4], part_max[2][4];  // per warp, double-buffered by key tile
    __shared__ uint32_t part_cnt[2][4];
    float* sq = reinterpret_cast<float*>(smem);
    const int R = blockIdx.x, o = blockIdx.y, h = blockIdx.z, warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const float* q = static_cast<const float*>(p.q.data) + h * p.q.stride_head;
    const float* k = static_cast<const float*>(p.k.data) + h * p.k.stride_head;
    const int32_t* gather = p.gathers + size_t(o) * p.tokens;

    load_tile_async<float, D>(sq, q, p.q.stride_token, gather, R * kTile, p.tokens);
    KeyStream<float, D> ks{sq + tile_elems<float, D>(), k, p.k.stride_token, gather, p.tokens, p.tiles};
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
        const float* sk = ks.wait(C);
        if (leader) {
            if (C > 0) flush(C - 1);
            prev_mass = out.mass[base + C];
            prev_max = out.max[base + C];
            prev_cnt = out.below_eps[base + C];
        }
        float c[8][4];
        warp_scores<float, D>(sq + warp * 16 * pitch<float, D>(), sk, c, lane);
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
        warp_reduce_tile(sum, mx, cnt);
        if (lane == 0) {
            part_sum[C & 1][warp] = sum;
            part_max[C & 1][warp] = mx;
            part_cnt[C & 1][warp] = cnt;
        }
        __syncthreads();
    }
    if (leader) flush(p.tiles - 1);
}


// ---------------------------------------------------------------------------------------------
// fp16 / bf16 kernels. Shared memory, from a 1024-aligned base: 3 key-tile stages (SwzTile),
// then an area that first holds the Q tile (until every warp has its fragments) and then, in pass 2,
// the per-thread partials of the key tiles: [2 groups][kGroup tiles][128 threads] float4
// (sum, max log2 P, count bits, -), double-buffered by group.
// ---------------------------------------------------------------------------------------------

constexpr int kStages = 3;
constexpr int kGroup = 4;  // key tiles per reduction

template <int D, bool kPartials>
struct Smem16 {
    static constexpr int kStageBytes = SwzTile<D>::kBytes;
    static constexpr int kArea = kStages * kStageBytes;  // the Q tile, then the partials
    static constexpr int kPartialBytes = 2 * kGroup * kThreads * 16;
    static constexpr size_t total =
        size_t(kArea) + size_t(kPartials && kPartialBytes > kStageBytes ? kPartialBytes : kStageBytes) + 1024;
};

// The key-tile ring and this warp's Q fragments. Per key tile C:
//   const uint32_t kt = pipe.next(C, st);  pipe.scores(kt, c, lane);  ...;  st = (st + 1) % 3
// next() waits for tile C, makes it visible to every thread (and the tensor cores), then starts
// tile C + 2 into the stage tile C - 1 used (free: every thread has passed this barrier, so it is
// done with tile C - 1) and reads the tokens of tile C + 3. One barrier per tile.
template <typename T, int D, bool WG>
struct Pipe16 {
    using L = SwzTile<D>;
    SwzLoader<T, D> ld;
    uint32_t stages;
    uint32_t a[D / 16][4];

    __device__ __forceinline__ void start(const Problem& p, const T* q, const T* k, const int32_t* gather, int R,
                                          uint32_t base, int warp, int lane) {
        stages = base;
        const uint32_t qsm = base + kStages * L::kBytes;
        ld.init(q, p.q.stride_token, gather, p.tokens);
        ld.rows(R * kTile);
        ld.issue(qsm);
        cp_async_commit();
        ld.init(k, p.k.stride_token, gather, p.tokens);
        ld.rows(0);  // tiles past the end come out zero-filled (and are never used)
        ld.issue(stages);
        cp_async_commit();
        ld.rows(kTile);
        ld.issue(stages + L::kBytes);
        cp_async_commit();
        ld.rows(2 * kTile);
        cp_async_wait<2>();  // the Q tile
        __syncthreads();
        load_a_frags<D>(a, qsm, warp, lane);
    }
    __device__ __forceinline__ uint32_t next(int C, int st) {
        cp_async_wait<1>();
        if constexpr (WG) fence_proxy_async();
        __syncthreads();
        ld.issue(stages + uint32_t(st == 0 ? 2 : st - 1) * L::kBytes);
        cp_async_commit();
        ld.rows((C + 3) * kTile);
        return stages + uint32_t(st) * L::kBytes;
    }
    __device__ __forceinline__ void scores(uint32_t kt, float (&c)[8][4], int lane) const {
        if constexpr (WG)
            scores_wgmma<T, D>(a, kt, c);
        else
            scores_sync<T, D>(a, kt, c, lane);
    }
};

__device__ __forceinline__ uint32_t smem_base_1024(const unsigned char* smem) {
    return (uint32_t(__cvta_generic_to_shared(smem)) + 1023u) & ~1023u;
}

// Pass 1: each thread keeps its own online softmax over its 16 entries per row and tile (no
// shuffles per tile); the four threads of a row combine theirs at the end, exactly rescaled.
template <typename T, int D, bool WG>
__global__ void __launch_bounds__(kThreads) row_stats_kernel(Problem p) {
    extern __shared__ __align__(16) unsigned char smem[];
    const int R = blockIdx.x, h = blockIdx.y, warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const T* q = static_cast<const T*>(p.q.data) + h * p.q.stride_head;
    const T* k = static_cast<const T*>(p.k.data) + h * p.k.stride_head;
    Pipe16<T, D, WG> pipe;
    pipe.start(p, q, k, nullptr, R, smem_base_1024(smem), warp, lane);

    const float cs = p.scale_log2;
    float m[2] = {-INFINITY, -INFINITY};
    double l[2] = {0.0, 0.0};
    const int last_valid = p.tokens - (p.tiles - 1) * kTile;
    int st = 0;
    for (int C = 0; C < p.tiles; ++C) {
        const uint32_t kt = pipe.next(C, st);
        float c[8][4];
        pipe.scores(kt, c, lane);
        if (C == p.tiles - 1) mask_keys(c, last_valid, lane);
#pragma unroll
        for (int r = 0; r < 2; ++r) {
            float mx = -INFINITY;
#pragma unroll
            for (int j = 0; j < 8; ++j) mx = fmaxf(mx, fmaxf(c[j][2 * r], c[j][2 * r + 1]));
            const float mn = fmaxf(m[r], mx);
            const float ms = mn == -INFINITY ? 0.f : mn;  // all of this thread's keys masked so far
            const float bb = -ms * cs;
            float s0 = 0.f, s1 = 0.f;
#pragma unroll
            for (int j = 0; j < 8; ++j) {
                s0 += fast_exp2(fmaf(c[j][2 * r], cs, bb));
                s1 += fast_exp2(fmaf(c[j][2 * r + 1], cs, bb));
            }
            l[r] = l[r] * double(fast_exp2((m[r] - ms) * cs)) + double(s0 + s1);  // m = -inf: 0
            m[r] = mn;
        }
        st = st == kStages - 1 ? 0 : st + 1;
    }
    cp_async_wait<0>();  // the zero-fill copies of tiles past the end
#pragma unroll
    for (int r = 0; r < 2; ++r) {
        float M = fmaxf(m[r], __shfl_xor_sync(0xffffffffu, m[r], 1));
        M = fmaxf(M, __shfl_xor_sync(0xffffffffu, M, 2));
        const float Ms = M == -INFINITY ? 0.f : M;
        double lr = l[r] * double(fast_exp2((m[r] - Ms) * cs));
        lr += __shfl_xor_sync(0xffffffffu, lr, 1);
        lr += __shfl_xor_sync(0xffffffffu, lr, 2);
        const int row = R * kTile + warp * 16 + (lane >> 2) + 8 * r;
        if ((lane & 3) == 0 && row < p.tokens) {
            const float lg = float(log2(lr));
            if (!isfinite(M) || !isfinite(lg)) *p.overflow = 1;
            p.row_stats[size_t(h) * p.tokens + row] = make_float2(M, lg);
        }
    }
}

// Pass 2. Per key tile each thread reduces its 32 entries (t = log2 P = s * c + b_row in one FFMA;
// P = 2^t on the MUFU; max over t; the count by FSET) and stores (sum, max, count) in the partials. Every kGroup tiles, after the
// next barrier, warp w reduces tile w of the finished group (fixed order: deterministic) and its
// lane 0 folds it into `out`, whose previous values it loaded when the group started.
template <typename T, int D, bool WG>
__global__ void __launch_bounds__(kThreads) tile_stats_kernel(Problem p, float log2_eps, StatsOut out) {
    using S = Smem16<D, true>;
    extern __shared__ __align__(16) unsigned char smem[];
    const uint32_t base = smem_base_1024(smem);
    float4* partials = reinterpret_cast<float4*>(smem + (base - uint32_t(__cvta_generic_to_shared(smem))) + S::kArea);
    const int R = blockIdx.x, o = blockIdx.y, h = blockIdx.z, tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    const T* q = static_cast<const T*>(p.q.data) + h * p.q.stride_head;
    const T* k = static_cast<const T*>(p.k.data) + h * p.k.stride_head;
    const int32_t* gather = p.gathers + size_t(o) * p.tokens;
    Pipe16<T, D, WG> pipe;
    pipe.start(p, q, k, gather, R, base, warp, lane);

    RowSoftmax rows;
    rows.load(p.row_stats + size_t(h) * p.tokens, gather, R * kTile + warp * 16 + (lane >> 2), p.tokens, log2_eps);
    const float cs = p.scale_log2;
    // t = (s - m) c - log2 l as one FFMA: s * c + b with b = -m c - log2 l rounded once (an error
    // of half an ulp of |m c|: ~1e-7 relative in P for ordinary logits, ~5e-5 for logits ~10^3).
    const float b[2] = {fmaf(-rows.m[0], cs, rows.nl[0]), fmaf(-rows.m[1], cs, rows.nl[1])};

    const size_t obase = ((size_t(h) * kOrders + o) * p.tiles + R) * p.tiles;
    const int last_valid = p.tokens - (p.tiles - 1) * kTile;
    const uint32_t masked_below =
        log2_eps > -INFINITY ? uint32_t(min(kTile, p.tokens - R * kTile) * (kTile - last_valid)) : 0u;
    double prev_mass = 0.0;
    float prev_max = 0.f;
    uint32_t prev_cnt = 0;
    auto load_prev = [&](int g) {
        const int t = g * kGroup + warp;
        if (lane == 0 && t < p.tiles) {
            prev_mass = out.mass[obase + t];
            prev_max = out.max[obase + t];
            prev_cnt = out.below_eps[obase + t];
        }
    };
    auto reduce = [&](int g) {
        const int t = g * kGroup + warp;
        if (t >= p.tiles) return;  // warp-uniform
        const float4* x = partials + ((g & 1) * kGroup + warp) * kThreads + lane;
        const float4 x0 = x[0], x1 = x[32], x2 = x[64], x3 = x[96];
        float sum = (x0.x + x1.x) + (x2.x + x3.x);
        float mx = fmaxf(fmaxf(x0.y, x1.y), fmaxf(x2.y, x3.y));
        uint32_t n = (__float_as_uint(x0.z) + __float_as_uint(x1.z)) + (__float_as_uint(x2.z) + __float_as_uint(x3.z));
        warp_reduce_tile(sum, mx, n);
        if (lane == 0) {
            if (t == p.tiles - 1) n -= masked_below;
            out.mass[obase + t] = prev_mass + double(sum);
            out.max[obase + t] = fmaxf(prev_max, exp2f(mx));
            out.below_eps[obase + t] = prev_cnt + n;
        }
    };

    load_prev(0);
    int st = 0;
    for (int C = 0; C < p.tiles; ++C) {
        const uint32_t kt = pipe.next(C, st);
        if ((C & (kGroup - 1)) == 0 && C > 0) {
            reduce(C / kGroup - 1);
            load_prev(C / kGroup);
        }
        float c[8][4];
        pipe.scores(kt, c, lane);
        if (C == p.tiles - 1) mask_keys(c, last_valid, lane);
        float s4[4] = {0.f, 0.f, 0.f, 0.f}, m2[2] = {-INFINITY, -INFINITY};
        uint32_t cnt = 0;
#pragma unroll
        for (int j = 0; j < 8; ++j)
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                const int r = e >> 1;
                const float t = fmaf(c[j][e], cs, b[r]);
                s4[e] += fast_exp2(t);
                m2[r] = fmaxf(m2[r], t);
                cnt -= lt_mask(t, rows.thr[r]);
            }
        partials[(((C / kGroup) & 1) * kGroup + (C & (kGroup - 1))) * kThreads + tid] =
            make_float4((s4[0] + s4[1]) + (s4[2] + s4[3]), fmaxf(m2[0], m2[1]), __uint_as_float(cnt), 0.f);
        st = st == kStages - 1 ? 0 : st + 1;
    }
    cp_async_wait<0>();  // the zero-fill copies of tiles past the end
    __syncthreads();
    reduce((p.tiles - 1) / kGroup);
}

#ifdef PARO_TS_HAVE_SM90A
constexpr bool kWgmmaBuilt = true;
#else
constexpr bool kWgmmaBuilt = false;  // no wgmma kernel is instantiated
#endif

template <typename... A, typename... B>
cudaError_t launch(void (*kernel)(A...), dim3 grid, size_t smem, cudaStream_t st, B&&... args) {
    const cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem));
    if (e != cudaSuccess) return e;
    kernel<<<grid, kThreads, smem, st>>>(std::forward<B>(args)...);
    return cudaGetLastError();
}

}  // namespace

bool wgmma_built() { return kWgmmaBuilt; }

cudaError_t launch_row_stats(const Problem& p, cudaStream_t st) {
    return dispatch(p.dtype, p.head_dim, [&](auto tag, auto dim) {
        using T = decltype(tag);
        constexpr int D = decltype(dim)::value;
        const dim3 grid(p.tiles, p.heads);
        if constexpr (std::is_same_v<T, float>) {
            return launch(row_stats_fp32_kernel<D>, grid, fp32_smem_bytes<D>(), st, p);
        } else {
            constexpr size_t smem = Smem16<D, false>::total;
            if constexpr (kWgmmaBuilt)
                if (p.wgmma) return launch(row_stats_kernel<T, D, true>, grid, smem, st, p);
            return launch(row_stats_kernel<T, D, false>, grid, smem, st, p);
        }
    });
}

cudaError_t launch_tile_stats(const Problem& p, float log2_eps, const StatsOut& out, cudaStream_t st) {
    return dispatch(p.dtype, p.head_dim, [&](auto tag, auto dim) {
        using T = decltype(tag);
        constexpr int D = decltype(dim)::value;
        const dim3 grid(p.tiles, kOrders, p.heads);
        if constexpr (std::is_same_v<T, float>) {
            return launch(tile_stats_fp32_kernel<D>, grid, fp32_smem_bytes<D>(), st, p, log2_eps, out);
        } else {
            constexpr size_t smem = Smem16<D, true>::total;
            if constexpr (kWgmmaBuilt)
                if (p.wgmma) return launch(tile_stats_kernel<T, D, true>, grid, smem, st, p, log2_eps, out);
            return launch(tile_stats_kernel<T, D, false>, grid, smem, st, p, log2_eps, out);
        }
    });
}

}  // namespace paro::gpu::tilestats
