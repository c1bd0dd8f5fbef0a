#pragma once
// Device building blocks of the tile-statistics kernels. First those of the fp32 kernels and the
// output-error kernels (all dtypes): gathered 64-row tile loads into padded shared memory
// (cp.async), S = Q K^T for one warp's 16 query rows x 64 keys on tensor cores, and the streaming
// of an order's key tiles through a double buffer. Then those of the fp16 / bf16 tile-statistics
// kernels: swizzled tiles, Q fragments in registers, S on mma.sync or wgmma.
//
// CTA shape everywhere: 128 threads = 4 warps, warp w owns query rows 16w .. 16w + 15 of the
// 64-row query tile. Score fragments follow the mma.sync C layout: with g = lane / 4, t = lane % 4,
// c[j][0..1] are (row g, keys 8j + 2t, 8j + 2t + 1) and c[j][2..3] the same keys of row g + 8.
//
// Precision of S (fp32 accumulation in every case):
//   fp16 / bf16 inputs: wgmma m64n64k16 or mma.sync m16n8k16; products of two 11- (8-) bit
//     mantissas are exact in fp32.
//   fp32 inputs: 3xTF32 on m16n8k8: x = hi + lo with hi = tf32(x), lo = tf32(x - hi), and
//     S = lo*hi + hi*lo + hi*hi (small terms first); ~21 bits per product, against 10 for plain
//     TF32, whose logit errors (~1e-3 of |q||k|) would move P by ~1e-3 relative.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <type_traits>

namespace paro::gpu::tilestats {

constexpr int kTile = 64;
constexpr int kThreads = 128;
constexpr int kOrders = 6;

// Shared-memory row pitch in elements: 16 bytes of padding put the 8 rows an ldmatrix (or the 8
// row groups of the scalar TF32 fragment loads) reads in distinct banks.
template <typename T, int D>
__host__ __device__ constexpr int pitch() {
    return D + int(16 / sizeof(T));
}
template <typename T, int D>
__host__ __device__ constexpr int tile_elems() {
    return kTile * pitch<T, D>();
}

__device__ __forceinline__ void cp_async16(void* smem, const void* gmem, int src_bytes) {
    const uint32_t s = static_cast<uint32_t>(__cvta_generic_to_shared(smem));
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(gmem), "r"(src_bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

// 2^x on the MUFU (relative error ~2^-22; results below 2^-126 flush to zero, far below any
// statistic's tolerance).
__device__ __forceinline__ float fast_exp2(float x) {
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
    return y;
}

// Starts copying 64 rows of D elements into shared memory: row r is token gather[base + r]
// (base + r when gather is null); rows at or past `tokens` are zero-filled.
template <typename T, int D>
__device__ __forceinline__ void load_tile_async(T* smem, const T* src, int64_t stride_token, const int32_t* gather,
                                                int base, int tokens) {
    constexpr int kChunks = D * int(sizeof(T)) / 16;  // 16-byte chunks per row
    static_assert(kTile * kChunks % kThreads == 0, "whole chunks per thread");
#pragma unroll
    for (int i = 0; i < kTile * kChunks / kThreads; ++i) {
        const int idx = int(threadIdx.x) + i * kThreads;
        const int r = idx / kChunks, chunk = idx % kChunks;
        const int pos = base + r;
        const bool valid = pos < tokens;
        const int64_t token = valid ? (gather ? gather[pos] : pos) : 0;
        const char* g = reinterpret_cast<const char*>(src + token * stride_token) + chunk * 16;
        cp_async16(reinterpret_cast<char*>(smem + r * pitch<T, D>()) + chunk * 16, g, valid ? 16 : 0);
    }
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* p) {
    const uint32_t a = static_cast<uint32_t>(__cvta_generic_to_shared(p));
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(a));
}

template <typename T>
struct Mma16;  // m16n8k16 with fp32 accumulation, T = __half or __nv_bfloat16
template <>
struct Mma16<__half> {
    __device__ static __forceinline__ void run(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
        asm volatile(
            "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
            "{%0,%1,%2,%3};\n"
            : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
            : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
    }
};
template <>
struct Mma16<__nv_bfloat16> {
    __device__ static __forceinline__ void run(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
        asm volatile(
            "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
            "{%0,%1,%2,%3};\n"
            : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
            : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
    }
};

// One tile's partial statistics summed (mass, count) and maxed across the warp; every lane gets
// the result. The butterfly order is fixed, so results are deterministic.
__device__ __forceinline__ void warp_reduce_tile(float& sum, float& mx, uint32_t& count) {
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) {
        sum += __shfl_xor_sync(0xffffffffu, sum, off);
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, off));
        count += __shfl_xor_sync(0xffffffffu, count, off);
    }
}

__device__ __forceinline__ void mma_tf32(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ uint32_t to_tf32(float x) {
    uint32_t y;
    asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(y) : "f"(x));
    return y;
}
__device__ __forceinline__ void split_tf32(float x, uint32_t& hi, uint32_t& lo) {
    hi = to_tf32(x);
    lo = to_tf32(x - __uint_as_float(hi));
}

// fp16 / bf16: fragments through ldmatrix.
template <typename T, int D>
__device__ __forceinline__ void warp_scores_mma16(const T* sq, const T* sk, float (&c)[8][4], int lane) {
    constexpr int P = pitch<T, D>();
#pragma unroll
    for (int j = 0; j < 8; ++j) c[j][0] = c[j][1] = c[j][2] = c[j][3] = 0.f;
#pragma unroll
    for (int k0 = 0; k0 < D; k0 += 16) {
        // A: matrices (rows 0-7 | 8-15) x (k0 | k0 + 8); lanes 8i .. 8i + 7 address matrix i.
        uint32_t a[4];
        ldmatrix_x4(a, sq + ((lane & 7) + ((lane >> 3) & 1) * 8) * P + k0 + (lane >> 4) * 8);
#pragma unroll
        for (int j = 0; j < 8; j += 2) {
            // B of key groups j and j + 1: matrices (keys 8j | 8j + 8) x (k0 | k0 + 8) as b0(j), b1(j), b0(j+1), b1(j+1).
            uint32_t b[4];
            ldmatrix_x4(b, sk + (8 * j + (lane & 7) + (lane >> 4) * 8) * P + k0 + ((lane >> 3) & 1) * 8);
            Mma16<T>::run(c[j], a, b[0], b[1]);
            Mma16<T>::run(c[j + 1], a, b[2], b[3]);
        }
    }
}

// The fp32 (3xTF32) version; fragments are loaded with scalar shared loads (conflict-free with
// the 4-float pad) and split on the fly.
template <int D>
__device__ __forceinline__ void warp_scores_tf32x3(const float* sq, const float* sk, float (&c)[8][4], int lane) {
    constexpr int P = pitch<float, D>();
    const int g = lane >> 2, t = lane & 3;
#pragma unroll
    for (int j = 0; j < 8; ++j) c[j][0] = c[j][1] = c[j][2] = c[j][3] = 0.f;
#pragma unroll 2
    for (int k0 = 0; k0 < D; k0 += 8) {
        uint32_t ahi[4], alo[4];
        split_tf32(sq[g * P + k0 + t], ahi[0], alo[0]);
        split_tf32(sq[(g + 8) * P + k0 + t], ahi[1], alo[1]);
        split_tf32(sq[g * P + k0 + t + 4], ahi[2], alo[2]);
        split_tf32(sq[(g + 8) * P + k0 + t + 4], ahi[3], alo[3]);
#pragma unroll
        for (int j = 0; j < 8; ++j) {
            uint32_t b0hi, b0lo, b1hi, b1lo;
            split_tf32(sk[(8 * j + g) * P + k0 + t], b0hi, b0lo);
            split_tf32(sk[(8 * j + g) * P + k0 + t + 4], b1hi, b1lo);
            mma_tf32(c[j], alo, b0hi, b1hi);
            mma_tf32(c[j], ahi, b0lo, b1lo);
            mma_tf32(c[j], ahi, b0hi, b1hi);
        }
    }
}

// S = Q K^T for one warp: sq points at the warp's 16 query rows, sk at the 64 key rows (both with
// pitch<T, D>()); c receives the fragments described at the top.
template <typename T, int D>
__device__ __forceinline__ void warp_scores(const T* sq, const T* sk, float (&c)[8][4], int lane) {
    if constexpr (std::is_same_v<T, float>)
        warp_scores_tf32x3<D>(sq, sk, c, lane);
    else
        warp_scores_mma16<T, D>(sq, sk, c, lane);
}

// Keys at or past `valid` (the ragged last tile) get score -inf: probability 0, never the max.
__device__ __forceinline__ void mask_keys(float (&c)[8][4], int valid, int lane) {
    const int t = lane & 3;
#pragma unroll
    for (int j = 0; j < 8; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e)
            if (8 * j + 2 * t + (e & 1) >= valid) c[j][e] = -INFINITY;
}

// Streams the key tiles 0 .. nb-1 of one order through two shared buffers. Per tile C:
//   ks.prefetch(C + 1); const T* sk = ks.wait(); ... use sk ...; __syncthreads();
// (the closing barrier frees the buffer the next prefetch overwrites). Anything the caller
// started with cp.async before prefetch(0) (the Q tile) lands by the first wait().
template <typename T, int D>
struct KeyStream {
    T* buf;  // 2 tiles
    const T* k;
    int64_t stride_token;
    const int32_t* gather;
    int tokens, nb;

    __device__ __forceinline__ void prefetch(int C) {
        if (C < nb) load_tile_async<T, D>(buf + (C & 1) * tile_elems<T, D>(), k, stride_token, gather, C * kTile, tokens);
        cp_async_commit();  // an empty group past the end keeps wait<1> exact
    }
    // Tile C (prefetched before the latest prefetch) is in shared memory for every thread.
    __device__ __forceinline__ const T* wait(int C) {
        cp_async_wait<1>();
        __syncthreads();
        return buf + (C & 1) * tile_elems<T, D>();
    }
};

// Softmax statistics of this thread's two query rows (g and g + 8 of its warp) in one order:
// P = 2^((s - m) * scale_log2 + nl), nl = -log2(row sum). Rows past the end get m = +inf, so every
// P is 0 and every t is -inf; their `thr` of -inf keeps them out of the below-eps count.
struct RowSoftmax {
    float m[2], nl[2], thr[2];

    __device__ __forceinline__ void load(const float2* row_stats, const int32_t* gather, int row0, int tokens,
                                         float log2_eps) {
#pragma unroll
        for (int r = 0; r < 2; ++r) {
            const int pos = row0 + 8 * r;
            if (pos < tokens) {
                const float2 s = row_stats[gather ? gather[pos] : pos];
                m[r] = s.x;
                nl[r] = -s.y;
                thr[r] = log2_eps;
            } else {
                m[r] = INFINITY;
                nl[r] = 0.f;
                thr[r] = -INFINITY;
            }
        }
    }
    // log2 of P for score s of row r. (s - m) first: entries near the row max stay exact even
    // for large logits, where s * scale_log2 - (m * scale_log2 + log2 l) would lose digits.
    __device__ __forceinline__ float log2p(float s, int r, float scale_log2) const {
        return fmaf(s - m[r], scale_log2, nl[r]);
    }
};


// ---------------------------------------------------------------------------------------------
// Building blocks of the fp16 / bf16 tile-statistics kernels.
// ---------------------------------------------------------------------------------------------

#if defined(__CUDA_ARCH__) && (__CUDA_ARCH__ >= 900) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define PARO_TS_SM90_DEVICE 1
#endif

// 0xffffffff when a < b, else 0 (one FSET; `cnt -= lt_mask(...)` counts without a select).
__device__ __forceinline__ uint32_t lt_mask(float a, float b) {
    uint32_t m;
    asm("set.lt.u32.f32 %0, %1, %2;\n" : "=r"(m) : "f"(a), "f"(b));
    return m;
}

// A 64-row tile of D 16-bit elements in shared memory as D / 64 column blocks of [64 rows][128
// bytes], each swizzled as wgmma's 128-byte mode reads it (16-byte chunk c of row r at chunk
// c ^ (r & 7)); the same layout serves ldmatrix without bank conflicts. Tiles start 1024-aligned.
template <int D>
struct SwzTile {
    static constexpr int kBytes = kTile * D * 2;          // 8 or 16 KB
    static constexpr int kChunks = D / 8;                 // 16-byte chunks per row
    static constexpr int kIters = kTile * kChunks / kThreads;  // chunks per thread per tile (4 or 8)
    static constexpr int kRowStep = kThreads / kChunks;   // rows between a thread's chunks (16 or 8)
    __host__ __device__ static constexpr uint32_t offset(int r, int chunk) {
        return uint32_t((chunk >> 3) * (kTile * 128) + r * 128 + (((chunk & 7) ^ (r & 7)) << 4));
    }
};

__device__ __forceinline__ void cp_async16_s(uint32_t smem, const void* gmem, int src_bytes) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem), "l"(gmem), "r"(src_bytes));
}
__device__ __forceinline__ void ldmatrix_x4_s(uint32_t (&r)[4], uint32_t a) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(a));
}

// Gathered loads of 64-row tiles into SwzTile layout. The token of each of the thread's rows is
// read one tile ahead (rows(...)), so the cp.async of a tile never waits for its gather load.
template <typename T, int D>
struct SwzLoader {
    using L = SwzTile<D>;
    const T* src;
    int64_t stride_token;
    const int32_t* gather;  // null: identity
    int tokens;
    uint32_t so;            // this thread's first chunk offset within a tile
    int r0, chunk;
    int tok[L::kIters];     // tokens of the next tile to issue (-1: past the end)

    __device__ __forceinline__ void init(const T* s, int64_t st, const int32_t* g, int n) {
        src = s;
        stride_token = st;
        gather = g;
        tokens = n;
        r0 = int(threadIdx.x) / L::kChunks;
        chunk = int(threadIdx.x) % L::kChunks;
        so = L::offset(r0, chunk);
    }
    // Reads the tokens of the tile starting at permuted position base.
    __device__ __forceinline__ void rows(int base) {
#pragma unroll
        for (int i = 0; i < L::kIters; ++i) {
            const int pos = base + r0 + i * L::kRowStep;
            tok[i] = pos < tokens ? (gather ? __ldg(gather + pos) : pos) : -1;
        }
    }
    // Starts the copies of the tile whose rows() were read last into the tile at smem address dst.
    __device__ __forceinline__ void issue(uint32_t dst) const {
#pragma unroll
        for (int i = 0; i < L::kIters; ++i) {
            const bool valid = tok[i] >= 0;
            const T* g = src + (valid ? int64_t(tok[i]) : 0) * stride_token + chunk * 8;
            cp_async16_s(dst + so + uint32_t(i * L::kRowStep * 128), g, valid ? 16 : 0);
        }
    }
};

// A fragments (mma.m16n8k16 layout) of one warp's 16 rows of a SwzTile, for all D / 16 k-steps.
template <int D>
__device__ __forceinline__ void load_a_frags(uint32_t (&a)[D / 16][4], uint32_t tile, int warp, int lane) {
    const int r = warp * 16 + (lane & 7) + ((lane >> 3) & 1) * 8;
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) ldmatrix_x4_s(a[kk], tile + SwzTile<D>::offset(r, 2 * kk + (lane >> 4)));
}

// S (16 rows x 64 keys per warp) = A (registers) x K tile (SwzTile) on mma.sync.
template <typename T, int D>
__device__ __forceinline__ void scores_sync(const uint32_t (&a)[D / 16][4], uint32_t ktile, float (&c)[8][4], int lane) {
#pragma unroll
    for (int j = 0; j < 8; ++j) c[j][0] = c[j][1] = c[j][2] = c[j][3] = 0.f;
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk)
#pragma unroll
        for (int j = 0; j < 8; j += 2) {
            uint32_t b[4];
            ldmatrix_x4_s(b, ktile + SwzTile<D>::offset(8 * j + (lane & 7) + (lane >> 4) * 8, 2 * kk + ((lane >> 3) & 1)));
            Mma16<T>::run(c[j], a[kk], b[0], b[1]);
            Mma16<T>::run(c[j + 1], a[kk], b[2], b[3]);
        }
}

#ifdef PARO_TS_SM90_DEVICE
// Descriptor of a K-major 128-byte-swizzled operand (as kernels/runtime/attention_sm90.cu): start
// address / 16, leading byte offset 1 (unused in this mode), stride byte offset 1024 (8-row
// groups), swizzle mode 1 (128 B).
__device__ __forceinline__ uint64_t wgmma_desc128(uint32_t smem_addr) {
    return uint64_t((smem_addr >> 4) | (1u << 16)) | (uint64_t((1024 >> 4) | (1u << 30)) << 32);
}
__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_wait0() { asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory"); }
// Keeps every read of the accumulators below the wait (CUTLASS's warpgroup_fence_operand).
__device__ __forceinline__ void fence_operand(float (&d)[8][4]) {
#pragma unroll
    for (int j = 0; j < 8; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) asm volatile("" : "+f"(d[j][e])::"memory");
}

// d[64 x 64] (+)= a[64 x 16] (registers, mma.m16n8k16 A layout per warp) * B[16 x 64] (shared,
// K-major, 128-byte swizzle); d[j][e] is the mma.m16n8 C fragment of n-block j.
#define PARO_TS_WGMMA(DC, SCALE_D, TY)                                                                              \
    asm volatile("wgmma.mma_async.sync.aligned.m64n64k16.f32." TY "." TY " "                                       \
                 "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "                         \
                 "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, "                \
                 "{%32, %33, %34, %35}, %36, " SCALE_D ", 1, 1, 0;\n"                                              \
                 : DC(d[0][0]), DC(d[0][1]), DC(d[0][2]), DC(d[0][3]), DC(d[1][0]), DC(d[1][1]), DC(d[1][2]),       \
                   DC(d[1][3]), DC(d[2][0]), DC(d[2][1]), DC(d[2][2]), DC(d[2][3]), DC(d[3][0]), DC(d[3][1]),       \
                   DC(d[3][2]), DC(d[3][3]), DC(d[4][0]), DC(d[4][1]), DC(d[4][2]), DC(d[4][3]), DC(d[5][0]),       \
                   DC(d[5][1]), DC(d[5][2]), DC(d[5][3]), DC(d[6][0]), DC(d[6][1]), DC(d[6][2]), DC(d[6][3]),       \
                   DC(d[7][0]), DC(d[7][1]), DC(d[7][2]), DC(d[7][3])                                               \
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc))
#define PARO_TS_OUT(x) "=f"(x)
#define PARO_TS_INOUT(x) "+f"(x)
template <typename T, bool ACC>
__device__ __forceinline__ void wgmma_n64(float (&d)[8][4], const uint32_t (&a)[4], uint64_t desc) {
    constexpr bool kBf16 = std::is_same_v<T, __nv_bfloat16>;
    if constexpr (ACC && kBf16)
        PARO_TS_WGMMA(PARO_TS_INOUT, "1", "bf16");
    else if constexpr (ACC)
        PARO_TS_WGMMA(PARO_TS_INOUT, "1", "f16");
    else if constexpr (kBf16)
        PARO_TS_WGMMA(PARO_TS_OUT, "0", "bf16");
    else
        PARO_TS_WGMMA(PARO_TS_OUT, "0", "f16");
}
#undef PARO_TS_OUT
#undef PARO_TS_INOUT
#undef PARO_TS_WGMMA
#endif

// The calling thread's completed cp.async writes, visible to the tensor cores' (async proxy) reads
// that follow the next barrier. Only wgmma needs it; a no-op without sm_90a.
__device__ __forceinline__ void fence_proxy_async() {
#ifdef PARO_TS_SM90_DEVICE
    asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
#endif
}

// S (64 rows x 64 keys per warpgroup; this warp's 16 rows in c) = A (registers) x K tile (SwzTile
// at ktile, 1024-aligned) on wgmma. Every thread must have made the tile's cp.async writes visible
// to the async proxy (fence_proxy_async before the barrier).
template <typename T, int D>
__device__ __forceinline__ void scores_wgmma(const uint32_t (&a)[D / 16][4], uint32_t ktile, float (&c)[8][4]) {
#ifdef PARO_TS_SM90_DEVICE
    wgmma_fence();
    wgmma_n64<T, false>(c, a[0], wgmma_desc128(ktile));
#pragma unroll
    for (int kk = 1; kk < D / 16; ++kk)
        wgmma_n64<T, true>(c, a[kk], wgmma_desc128(ktile + (kk >> 2) * (kTile * 128) + (kk & 3) * 32));
    wgmma_commit();
    wgmma_wait0();
    fence_operand(c);
#else
    (void)a, (void)ktile, (void)c;
    __trap();  // the host never launches a wgmma kernel without sm_90a machine code
#endif
}

}  // namespace paro::gpu::tilestats
