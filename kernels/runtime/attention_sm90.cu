// Block-sparse attention on Hopper (sm_90a): warpgroup MMA, overlapped with the softmax.
//
// Same plan, workspace and math as the sm_80 kernels (attention.cu), sharing their per-tile
// arithmetic (attention_tile.cuh). One CTA = one warpgroup = one 64-row query tile of one head.
// QK^T is wgmma.mma_async m64n64k32 s8 (int32 accumulators); PV is either
//   INT8 (pv_bits 8): m64n64k32 u8 x s8 on P'_u8 (per row and tile scale) and V_i8 (per tile and channel),
//       int32 accumulators folded into fp32 O after each tile, or
//   fp16 (pv_bits 16): m64n64k16 f16 with fp32 accumulators: the tensor cores accumulate straight
//       into O, which is rescaled only when the lazily updated row max moves.
// A (Q, then P) comes from registers in the mma.m16n8 fragment layout, B (K, then V^T) from shared
// memory in 64B/128B-swizzled rows (SwizzledRows). The overlap (FlashAttention-3's intra-warpgroup
// pipelining), for kept key tile i:
//     issue QK(i), issue PV(i-1) -> wait QK(i) -> softmax(i) -> wait PV(i-1) -> O update
// so the tensor cores compute the previous tile's PV while the warps run this tile's softmax, and
// the other CTAs on the SM fill the waits. Nothing stays in flight from one tile to the next: with
// wgmma groups in flight across iterations ptxas cannot prove the waits exact and serializes every
// wgmma (C7514). Tiles stream through a 4-stage cp.async ring, loaded two tiles ahead.
#include <atomic>
#include <cstdlib>
#include <cstring>

#include "attention_sm90.hpp"
#include "attention_tile.cuh"

namespace paro::gpu {

namespace {

#if defined(__CUDA_ARCH__) && (__CUDA_ARCH__ >= 900) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define PARO_SM90_DEVICE 1
#endif

constexpr int kStages90 = 4;

// A K-major operand tile in shared memory: rows of RB = 64 or 128 bytes (one key of K, or one
// channel of V^T), swizzled the way wgmma's 64B / 128B modes read it: 16-byte chunk c of row r sits
// at chunk c ^ (bits 7.. of the row's address), so the eight rows a core matrix spans fall in
// different banks. (The unswizzled core-matrix layout reads at about 15% of the tensor cores' rate
// here: every core matrix starts on bank 0.) The tile must start on a 1024-byte boundary.
template <int RB>
struct SwizzledRows {
    static_assert(RB == 64 || RB == 128, "64B or 128B swizzle");
    static constexpr uint64_t kMode = RB == 128 ? 1 : 2;  // descriptor bits 62-63
    __host__ __device__ static constexpr uint32_t offset(uint32_t r, uint32_t c) {
        return r * RB + ((c ^ (RB == 128 ? (r & 7) : ((r >> 1) & 3))) << 4);
    }
};

template <int D, bool PV16>
struct Smem90 {
    // Stage s holds tile K (kTile rows of D bytes) then V^T (D rows of 64 int8 or fp16 keys), both
    // SwizzledRows at s * stage; the scales of stage s (INT8 PV: the tile's v scales as in
    // Quantized::v_scale; then its k scale) sit apart at scaleBase + s * scaleStride.
    static constexpr int kRowBytes = D;
    static constexpr int vRowBytes = kTile * (PV16 ? 2 : 1);
    static constexpr int kBytes = kTile * kRowBytes;
    static constexpr int vBytes = D * vRowBytes;
    static constexpr int stage = kBytes + vBytes;  // a multiple of 1024
    static constexpr int vsOffset = 0;
    static constexpr int ksOffset = vsOffset + (PV16 ? 0 : D * 8);
    static constexpr int scaleStride = ksOffset + 16;
    static constexpr int scaleBase = kStages90 * stage;
    static constexpr int total = scaleBase + kStages90 * scaleStride + 1024;  // + 1024: alignment of the base
};

#ifdef PARO_SM90_DEVICE
// Descriptor of a K-major SwizzledRows<RB> operand, from the low word (start address >> 4, and the
// leading byte offset 1: unused in the swizzled K-major modes); the high word holds the stride byte
// offset (the distance between 8-row groups) and the swizzle mode. Steps along K inside a row, and
// from stage to stage, just add to the start address: a kernel keeps the low word of its shared
// memory base and adds compile-time offsets (address / 16).
__device__ __forceinline__ uint32_t desc_lo(uint32_t smem_addr) { return (smem_addr >> 4) | (1u << 16); }
template <int RB>
__device__ __forceinline__ uint64_t wgmma_desc(uint32_t lo) {
    return uint64_t(lo) | (uint64_t(((8 * RB) >> 4) | (uint32_t(SwizzledRows<RB>::kMode) << 30)) << 32);
}
__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void wgmma_wait() {
    asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}
__device__ __forceinline__ void fence_proxy_async() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }
// The compiler does not know that a wgmma writes its accumulators asynchronously: this empty asm,
// placed after the wait, keeps every read of an accumulator below it (CUTLASS's
// warpgroup_fence_operand).
__device__ __forceinline__ void fence_operand(int (&d)[8][4]) {
#pragma unroll
    for (int j = 0; j < 8; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) asm volatile("" : "+r"(d[j][e])::"memory");
}
template <int N>
__device__ __forceinline__ void fence_operand(float (&d)[N][4]) {
#pragma unroll
    for (int j = 0; j < N; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) asm volatile("" : "+f"(d[j][e])::"memory");
}
// The next P, copied into the registers the in-flight PV still reads only after its wait: a
// volatile copy stays below the (volatile) wait.
template <int N>
__device__ __forceinline__ void copy_after_wait(uint32_t (&dst)[N][4], const uint32_t (&src)[N][4]) {
#pragma unroll
    for (int k = 0; k < N; ++k)
#pragma unroll
        for (int e = 0; e < 4; ++e) asm volatile("mov.b32 %0, %1;\n" : "=r"(dst[k][e]) : "r"(src[k][e]));
}

// d[64 x 64] (+)= a[64 x 32] (registers, s8, or u8 when AU8: P') * B[32 x 64] (shared memory, s8);
// d[j][e] is the mma.m16n8 C fragment of n-block j. ACC = false: d = a * b, and d is an output only,
// so its old values are not kept alive until the issue.
#define PARO_WGMMA_S8_N64(D_CONSTRAINT, SCALE_D, TYPES)                                                             \
    asm volatile(                                                                                                   \
        "wgmma.mma_async.sync.aligned.m64n64k32.s32." TYPES " "                                                     \
        "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "                                  \
        "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, "                         \
        "{%32, %33, %34, %35}, %36, " SCALE_D ";\n"                                                                 \
        : D_CONSTRAINT(d[0][0]), D_CONSTRAINT(d[0][1]), D_CONSTRAINT(d[0][2]), D_CONSTRAINT(d[0][3]),               \
          D_CONSTRAINT(d[1][0]), D_CONSTRAINT(d[1][1]), D_CONSTRAINT(d[1][2]), D_CONSTRAINT(d[1][3]),               \
          D_CONSTRAINT(d[2][0]), D_CONSTRAINT(d[2][1]), D_CONSTRAINT(d[2][2]), D_CONSTRAINT(d[2][3]),               \
          D_CONSTRAINT(d[3][0]), D_CONSTRAINT(d[3][1]), D_CONSTRAINT(d[3][2]), D_CONSTRAINT(d[3][3]),               \
          D_CONSTRAINT(d[4][0]), D_CONSTRAINT(d[4][1]), D_CONSTRAINT(d[4][2]), D_CONSTRAINT(d[4][3]),               \
          D_CONSTRAINT(d[5][0]), D_CONSTRAINT(d[5][1]), D_CONSTRAINT(d[5][2]), D_CONSTRAINT(d[5][3]),               \
          D_CONSTRAINT(d[6][0]), D_CONSTRAINT(d[6][1]), D_CONSTRAINT(d[6][2]), D_CONSTRAINT(d[6][3]),               \
          D_CONSTRAINT(d[7][0]), D_CONSTRAINT(d[7][1]), D_CONSTRAINT(d[7][2]), D_CONSTRAINT(d[7][3])                \
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc))
#define PARO_OUT(x) "=r"(x)
#define PARO_INOUT(x) "+r"(x)
template <bool ACC, bool AU8 = false>
__device__ __forceinline__ void wgmma_s8_n64(int (&d)[8][4], const uint32_t (&a)[4], uint64_t desc) {
    if constexpr (ACC && AU8)
        PARO_WGMMA_S8_N64(PARO_INOUT, "1", "u8.s8");
    else if constexpr (ACC)
        PARO_WGMMA_S8_N64(PARO_INOUT, "1", "s8.s8");
    else if constexpr (AU8)
        PARO_WGMMA_S8_N64(PARO_OUT, "0", "u8.s8");
    else
        PARO_WGMMA_S8_N64(PARO_OUT, "0", "s8.s8");
}
#undef PARO_OUT
#undef PARO_INOUT
#undef PARO_WGMMA_S8_N64
// d[64 x 64] += a[64 x 16] (registers, f16) * B[16 x 64] (shared memory, f16, K-major), fp32
// accumulators in the mma.m16n8 C layout.
__device__ __forceinline__ void wgmma_f16_n64(float (&d)[8][4], const uint32_t (&a)[4], uint64_t desc) {
    asm volatile(
        "wgmma.mma_async.sync.aligned.m64n64k16.f32.f16.f16 "
        "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
        "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, "
        "{%32, %33, %34, %35}, %36, 1, 1, 1, 0;\n"
        : "+f"(d[0][0]), "+f"(d[0][1]), "+f"(d[0][2]), "+f"(d[0][3]), "+f"(d[1][0]), "+f"(d[1][1]), "+f"(d[1][2]),
          "+f"(d[1][3]), "+f"(d[2][0]), "+f"(d[2][1]), "+f"(d[2][2]), "+f"(d[2][3]), "+f"(d[3][0]), "+f"(d[3][1]),
          "+f"(d[3][2]), "+f"(d[3][3]), "+f"(d[4][0]), "+f"(d[4][1]), "+f"(d[4][2]), "+f"(d[4][3]), "+f"(d[5][0]),
          "+f"(d[5][1]), "+f"(d[5][2]), "+f"(d[5][3]), "+f"(d[6][0]), "+f"(d[6][1]), "+f"(d[6][2]), "+f"(d[6][3]),
          "+f"(d[7][0]), "+f"(d[7][1]), "+f"(d[7][2]), "+f"(d[7][3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc));
}
__device__ __forceinline__ float lds_f32(uint32_t a) {
    float x;
    asm volatile("ld.shared.f32 %0, [%1];\n" : "=f"(x) : "r"(a));
    return x;
}
__device__ __forceinline__ float4 lds_f32x4(uint32_t a) {
    float4 x;
    asm volatile("ld.shared.v4.f32 {%0, %1, %2, %3}, [%4];\n" : "=f"(x.x), "=f"(x.y), "=f"(x.z), "=f"(x.w) : "r"(a));
    return x;
}
__device__ __forceinline__ void cp_async4_if(bool pred, uint32_t smem_addr, const void* gmem) {
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %2, 0;\n@p cp.async.ca.shared.global [%0], [%1], 4;\n}\n" ::"r"(smem_addr),
                 "l"(gmem), "r"(int(pred)));
}
__device__ __forceinline__ void cp_async16_if(bool pred, uint32_t smem_addr, const void* gmem) {
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %2, 0;\n@p cp.async.cg.shared.global [%0], [%1], 16;\n}\n" ::"r"(smem_addr),
                 "l"(gmem), "r"(int(pred)));
}

// The state of one warpgroup's walk over its row of kept key tiles.
template <int D, bool PV16>
struct Sm90Row {
    using L = Smem90<D, PV16>;
    static constexpr int KCH = D / 16;                      // 16-byte chunks per K row
    static constexpr int KIT = kTile * KCH / kAttnThreads;  // K chunks per thread (2 or 4)
    static constexpr int KROWS = kAttnThreads / KCH;        // keys covered per step (a multiple of 8)
    static constexpr int VCH = L::vRowBytes / 16;           // 16-byte chunks per V^T row (4 or 8)
    using KRows = SwizzledRows<L::kRowBytes>;
    using VRows = SwizzledRows<L::vRowBytes>;
    static constexpr int VIT = D * VCH / kAttnThreads;      // V^T chunks per thread
    static constexpr int VROWS = kAttnThreads / VCH;        // channels covered per step (a multiple of 8)

    // Loads: each thread copies fixed 16-byte chunks, its offsets computed once.
    uint32_t smem_base, desc_base, k_so, v_so;
    const int8_t* k_head;
    const uint8_t* v_head;
    const float* vs_head;
    const float* ks_head;
    int tid, lane, tokens;
    const uint16_t* cols;
    uint32_t n;
    int c0, c1, c2;  // key-tile columns of tiles i .. i + 2

    uint32_t qa[D / 32][4];
    float qscale;
    float o[D / 8][4];
    int s[8][4];                           // S of the current tile
    int pv[PV16 ? 1 : D / 64][8][4];       // INT8: P'V of the previous tile
    uint32_t pa[PV16 ? 4 : 2][4];          // P of the previous tile (A fragments)
    RowState rs;
    float beta0 = 0.f, beta1 = 0.f;        // INT8: of the previous tile

    __device__ __forceinline__ void init(int tid_, int tokens_, uint32_t smem, const int8_t* k, const uint8_t* v,
                                         const float* vs, const float* ks, const uint16_t* cols_, uint32_t n_) {
        tid = tid_;
        lane = tid_ & 31;
        tokens = tokens_;
        smem_base = (smem + 1023) & ~1023u;
        desc_base = desc_lo(smem_base);
        // Global memory holds K and V^T row by row; a thread's rows advance by multiples of 8 per
        // step, so its swizzle is the same at every step.
        k_so = KRows::offset(tid / KCH, tid % KCH);
        v_so = L::kBytes + VRows::offset(tid / VCH, tid % VCH);
        k_head = k + (tid / KCH) * D + (tid % KCH) * 16;
        v_head = v + tid * 16;
        vs_head = vs;
        ks_head = ks;
        cols = cols_;
        n = n_;
        c0 = col(0);
        c1 = col(1);
        c2 = col(2);
#pragma unroll
        for (int j = 0; j < D / 8; ++j) o[j][0] = o[j][1] = o[j][2] = o[j][3] = 0.f;
    }

    __device__ __forceinline__ int col(uint32_t i) const { return i < n ? int(cols[i]) : 0; }
    __device__ __forceinline__ uint32_t stage(uint32_t i) const { return i % kStages90; }
    __device__ __forceinline__ uint32_t tile_at(uint32_t st) const { return smem_base + st * L::stage; }
    __device__ __forceinline__ uint32_t scales_at(uint32_t st) const {
        return smem_base + L::scaleBase + st * L::scaleStride;
    }

    __device__ __forceinline__ void load_tile(int c, uint32_t st) const {
        const uint32_t s0 = tile_at(st), ss = scales_at(st);
        const int8_t* gk = k_head + c * (kTile * D);
        const uint8_t* gv = v_head + size_t(c) * L::vBytes;
#pragma unroll
        for (int it = 0; it < KIT; ++it) cp_async16(s0 + k_so + it * (KROWS * D), gk + it * KROWS * D);
#pragma unroll
        for (int it = 0; it < VIT; ++it)
            cp_async16(s0 + v_so + it * (VROWS * L::vRowBytes), gv + it * (VROWS * L::vRowBytes));
        // Predicated, not branched: a branch around one lane's copy costs its whole warp a divergent region.
        if (!PV16) cp_async16_if(tid < D / 2, ss + L::vsOffset + tid * 16, vs_head + c * D * 2 + tid * 4);
        cp_async4_if(tid == 32, ss + L::ksOffset, ks_head + c);
    }

    // S = Q K^T of the tile in stage st, issued (not waited for).
    __device__ __forceinline__ void issue_qk(uint32_t st) {
        const uint32_t k0 = desc_base + st * (L::stage >> 4);
        wgmma_fence();
        wgmma_s8_n64<false>(s, qa[0], wgmma_desc<L::kRowBytes>(k0));
#pragma unroll
        for (int kk = 1; kk < D / 32; ++kk) wgmma_s8_n64<true>(s, qa[kk], wgmma_desc<L::kRowBytes>(k0 + kk * 2));
    }

    // PV of the tile in stage st with the P in pa, issued: INT8 into pv, fp16 accumulating into o.
    __device__ __forceinline__ void issue_pv(uint32_t st) {
        wgmma_fence();
        constexpr int RB = L::vRowBytes;
        const uint32_t v0 = desc_base + st * (L::stage >> 4) + (L::kBytes >> 4);
#pragma unroll
        for (int hn = 0; hn < D / 64; ++hn) {  // 64 channels per warpgroup MMA
            if constexpr (PV16) {
                float(&oh)[8][4] = *reinterpret_cast<float(*)[8][4]>(&o[8 * hn]);
#pragma unroll
                for (int kc = 0; kc < 4; ++kc)
                    wgmma_f16_n64(oh, pa[kc], wgmma_desc<RB>(v0 + hn * 4 * RB + kc * 2));
            } else {
                wgmma_s8_n64<false, true>(pv[hn], pa[0], wgmma_desc<RB>(v0 + hn * 4 * RB));
                wgmma_s8_n64<true, true>(pv[hn], pa[1], wgmma_desc<RB>(v0 + hn * 4 * RB + 2));
            }
        }
    }

    // After PV(i - 1) completed. INT8: O = O * beta + PV * v_scale (the tile in stage st). fp16: O is
    // current; rescale it when this tile moved a row's max (b = 2^(m_prev - m); rare).
    __device__ __forceinline__ void fold_pv(uint32_t st, float b0, float b1) {
        if constexpr (PV16) {
            fence_operand(o);
            if (__any_sync(0xffffffffu, b0 != 1.f || b1 != 1.f)) {
#pragma unroll
                for (int j = 0; j < D / 8; ++j) {
                    o[j][0] *= b0;
                    o[j][1] *= b0;
                    o[j][2] *= b1;
                    o[j][3] *= b1;
                }
            }
        } else {
            (void)b0, (void)b1;
            const uint32_t ss = scales_at(st) + L::vsOffset + (lane & 3) * 16;
#pragma unroll
            for (int hn = 0; hn < D / 64; ++hn) {
                fence_operand(pv[hn]);
#pragma unroll
                for (int j = 0; j < 8; ++j) {
                    const int nb8 = hn * 8 + j;
                    o_update<kMagic>(o[nb8], pv[hn][j], lds_f32x4(ss + 64 * nb8), beta0, beta1);
                }
            }
        }
    }

    // Kept key tile i (FIRST: i = 0, no PV in flight yet); on entry pa (and beta) belong to tile i - 1.
    //   issue QK(i), issue PV(i - 1) -> wait QK(i) -> softmax(i) -> wait PV(i - 1) -> O update
    template <bool FIRST>
    __device__ __forceinline__ void step(uint32_t i) {
        cp_async_wait<1>();  // tile i has landed (tile i + 1 may be in flight)
        fence_proxy_async(); // the cp.async writes, visible to the tensor cores (async proxy)
        __syncthreads();     // ... of every thread; every thread is past iteration i - 1
        if (i + 2 < n) load_tile(c2, stage(i + 2));  // the stage of tile i - 2, no longer read
        cp_async_commit();
        const int c3 = col(i + 3);
        const uint32_t si = stage(i);
        const float ks = lds_f32(scales_at(si) + L::ksOffset);  // early: its latency hides under the MMAs
        issue_qk(si);
        wgmma_commit();
        if (!FIRST) {
            issue_pv(stage(i - 1));
            wgmma_commit();
            wgmma_wait<1>();  // QK(i)
        } else {
            wgmma_wait<0>();
        }
        fence_operand(s);
        const float sc = qscale * ks;
        const int valid = tokens - c0 * kTile;
        uint32_t p[PV16 ? 4 : 2][4];
        float b0, b1;
        const int t = lane & 3;
        if constexpr (PV16) {
            if (valid < kTile)
                softmax_tile16<true, kMagic>(s, sc, valid, t, rs, b0, b1, p);
            else
                softmax_tile16<false, kMagic>(s, sc, valid, t, rs, b0, b1, p);
        } else {
            if (valid < kTile)
                softmax_tile<true, kMagic>(s, sc, valid, t, rs, b0, b1, p);
            else
                softmax_tile<false, kMagic>(s, sc, valid, t, rs, b0, b1, p);
        }
        if (!FIRST) {
            wgmma_wait<0>();  // PV(i - 1)
            fold_pv(stage(i - 1), b0, b1);
        }
        copy_after_wait(pa, p);
        beta0 = b0;
        beta1 = b1;
        c0 = c1;
        c1 = c2;
        c2 = c3;
    }

    // After the last tile: its PV and O update.
    __device__ __forceinline__ void finish() {
        issue_pv(stage(n - 1));
        wgmma_commit();
        wgmma_wait<0>();
        fold_pv(stage(n - 1), 1.f, 1.f);
    }
};
#endif  // PARO_SM90_DEVICE

// CTAs per SM the register budget is capped for: INT8 D 64 needs ~160 registers (3), fp16 D 64 fits
// 128 with a 4-byte spill (4), D 128 2 (~233 and 178 registers; ptxas, CUDA 13.0).
template <int D, bool PV16>
constexpr int kSm90MinBlocks = D == 64 ? (PV16 ? 4 : 3) : 2;

template <int D, typename TOut, bool PV16>
__global__ void __launch_bounds__(kAttnThreads, kSm90MinBlocks<D, PV16>)
    attention_sm90_kernel(Shape s, PlanView plan, Quantized w, float sm_scale_log2, MutView out) {
#ifdef PARO_SM90_DEVICE
    extern __shared__ __align__(128) uint8_t smem[];
    const int r = blockIdx.x, b = blockIdx.z;
    // INT8 launch: every head, fp16-PV heads return; fp16 launch: only the fp16-PV heads (head map).
    const int h = PV16 ? plan.head_map[blockIdx.y] : int(blockIdx.y);
    if (!PV16 && plan.pv16 && plan.pv16[h]) return;
    const size_t bh = size_t(b) * s.heads + h;
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, t = lane & 3;

    const uint32_t* rp = plan.row_ptr + size_t(h) * (s.nb + 1);
    const uint32_t beg = rp[r], n = rp[r + 1] - beg;
    if (n == 0) {  // no kept key tile: zeros
        const float zero[D / 8][4] = {};
        store_rows<D, TOut>(s, plan, out, b, h, r * kTile + warp * 16 + g, t, zero, 0.f, 0.f);
        return;
    }
    Sm90Row<D, PV16> row;
    row.init(tid, s.tokens, static_cast<uint32_t>(__cvta_generic_to_shared(smem)), w.k + bh * s.npad * D,
             reinterpret_cast<const uint8_t*>(w.vt + bh * vt_head_bytes(s.nb, D)), w.v_scale + bh * s.nb * D * 2,
             w.k_scale + bh * s.nb, plan.cols + beg, n);
    // Prologue: tiles 0 and 1 in flight (one cp.async group each, empty past the end).
    row.load_tile(row.c0, row.stage(0));
    cp_async_commit();
    if (n > 1) row.load_tile(row.c1, row.stage(1));
    cp_async_commit();
    load_q_fragments<D>(w.q + (bh * s.npad + size_t(r) * kTile + warp * 16) * D, g, t, row.qa);
    row.qscale = w.q_scale[(bh * s.nb + r) * kQGroupsPerTile + warp] * sm_scale_log2;

    row.template step<true>(0);
    for (uint32_t i = 1; i < n; ++i) row.template step<false>(i);
    row.finish();
    cp_async_wait<0>();
    store_rows<D, TOut>(s, plan, out, b, h, r * kTile + warp * 16 + g, t, row.o, row.rs.l0, row.rs.l1);
#else
    (void)s, (void)plan, (void)w, (void)sm_scale_log2, (void)out;
    __trap();  // never launched: the host side runs this kernel only on sm_90a builds and devices
#endif
}

template <int D, typename TOut, bool PV16>
cudaError_t attention_sm90_t(const Shape& s, const PlanView& plan, const Quantized& w, float sm_scale, MutView out,
                             int heads, cudaStream_t st) {
    constexpr int bytes = Smem90<D, PV16>::total;
    return launch_row_tiles(attention_sm90_kernel<D, TOut, PV16>, bytes, s, heads, plan, w, sm_scale, out, st);
}

template <typename TOut, bool PV16>
cudaError_t attention_sm90_d(const Shape& s, const PlanView& plan, const Quantized& w, float sm_scale, MutView out,
                             int heads, cudaStream_t st) {
    return s.head_dim == 64 ? attention_sm90_t<64, TOut, PV16>(s, plan, w, sm_scale, out, heads, st)
                            : attention_sm90_t<128, TOut, PV16>(s, plan, w, sm_scale, out, heads, st);
}

template <bool PV16>
cudaError_t attention_sm90_dt(DType out_dt, const Shape& s, const PlanView& plan, const Quantized& w, float sm_scale,
                              MutView out, int heads, cudaStream_t st) {
    switch (out_dt) {
        case DType::f32: return attention_sm90_d<float, PV16>(s, plan, w, sm_scale, out, heads, st);
        case DType::f16: return attention_sm90_d<__half, PV16>(s, plan, w, sm_scale, out, heads, st);
        case DType::bf16: return attention_sm90_d<__nv_bfloat16, PV16>(s, plan, w, sm_scale, out, heads, st);
    }
    return cudaErrorInvalidValue;
}

}  // namespace

AttentionKernel attention_kernel_for_current_device() {
#ifdef PARO_HAVE_SM90A
    static const bool forced_sm80 = [] {
        const char* e = std::getenv("PARO_ATTENTION_KERNEL");
        return e && std::strcmp(e, "mma.sync") == 0;
    }();
    if (forced_sm80) return AttentionKernel::mma_sync;
    constexpr int kMaxDevices = 64;
    static std::atomic<int> cc[kMaxDevices] = {};  // 10 * major + minor per device; 0 = not asked yet
    int dev = 0;
    if (cudaGetDevice(&dev) != cudaSuccess || dev < 0) return AttentionKernel::mma_sync;
    int v = dev < kMaxDevices ? cc[dev].load(std::memory_order_relaxed) : 0;
    if (v == 0) {
        int major = 0, minor = 0;
        if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess ||
            cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev) != cudaSuccess)
            return AttentionKernel::mma_sync;
        v = 10 * major + minor;
        if (dev < kMaxDevices) cc[dev].store(v, std::memory_order_relaxed);
    }
    return v == 90 ? AttentionKernel::wgmma : AttentionKernel::mma_sync;
#else
    return AttentionKernel::mma_sync;
#endif
}

cudaError_t launch_attention_sm90(DType out_dt, bool pv16, const Shape& s, const PlanView& plan, const Quantized& w,
                                  float sm_scale, MutView out, int heads, cudaStream_t st) {
#ifdef PARO_HAVE_SM90A
    return pv16 ? attention_sm90_dt<true>(out_dt, s, plan, w, sm_scale, out, heads, st)
                : attention_sm90_dt<false>(out_dt, s, plan, w, sm_scale, out, heads, st);
#else
    (void)out_dt, (void)pv16, (void)s, (void)plan, (void)w, (void)sm_scale, (void)out, (void)heads, (void)st;
    return cudaErrorInvalidDeviceFunction;
#endif
}

}  // namespace paro::gpu
