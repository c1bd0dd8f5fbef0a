// Block-sparse attention on Hopper (sm_90a): warpgroup MMA, overlapped with the softmax.
//
// Same plan, workspace and math as the sm_80 kernel (attention_sm80.cu), sharing its per-tile
// arithmetic (softmax.cuh, epilogue.cuh). One CTA = one warpgroup = one 64-row query tile of one head.
// QK^T is wgmma.mma_async m64n64k32 s8 (int32 accumulators); PV is one of
//   INT8 (PvFormat::int8): m64n64k32 u8 x s8 on P'_u8 (per row and tile scale) and V_i8 (per tile and channel),
//       int32 accumulators folded into fp32 O after each tile;
//   FP8 (PvFormat::fp8_e4m3): m64n64k32 e4m3 x e4m3 on P'_e4m3 (the same per-tile reference) and V_e4m3
//       (per tile and channel), fp32 accumulators of the tile folded into O after each tile: two-level
//       accumulation, so the tensor cores' reduced-precision FP8 accumulation spans one tile only;
//   fp16 (PvFormat::fp16): m64n64k16 f16 with fp32 accumulators: the tensor cores accumulate straight
//       into O, which is rescaled only when the lazily updated row max moves.
// A (Q, then P) comes from registers in the mma.m16n8 fragment layout, B (K, then V^T) from shared
// memory in 64B/128B-swizzled rows (SwizzledRows). The overlap (FlashAttention-3's intra-warpgroup
// pipelining), for kept key tile i:
//     issue QK(i), issue PV(i-1) -> wait QK(i) -> softmax(i) -> wait PV(i-1) -> O update
// so the tensor cores compute the previous tile's PV while the warps run this tile's softmax, and
// the other CTAs on the SM fill the waits. Nothing stays in flight from one tile to the next: with
// wgmma groups in flight across iterations ptxas cannot prove the waits exact and serializes every
// wgmma (C7514). Tiles stream through a 4-stage cp.async ring, loaded two tiles ahead.
#include "attention_cta.cuh"
#include "attention_kernels.hpp"
#include "epilogue.cuh"
#include "ptx_sm90.cuh"
#include "softmax.cuh"

#include <type_traits>

namespace paro::gpu {

namespace {

constexpr int kStages90 = 4;

template <int D, PvFormat F>
struct Smem90 {
    static constexpr bool PV16 = F == PvFormat::fp16;
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
// The state of one warpgroup's walk over its row of kept key tiles.
template <int D, PvFormat F>
struct Sm90Row {
    static constexpr bool PV16 = F == PvFormat::fp16, FP8 = F == PvFormat::fp8_e4m3;
    using PvAcc = std::conditional_t<FP8, float, int>;  // a tile's 8-bit PV product
    using L = Smem90<D, F>;
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
    PvAcc pv[PV16 ? 1 : D / 64][8][4];     // 8-bit PV: P'V of the previous tile
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

    // PV of the tile in stage st with the P in pa, issued: 8-bit formats into pv, fp16 accumulating into o.
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
            } else if constexpr (FP8) {
                wgmma_e4m3_n64<false>(pv[hn], pa[0], wgmma_desc<RB>(v0 + hn * 4 * RB));
                wgmma_e4m3_n64<true>(pv[hn], pa[1], wgmma_desc<RB>(v0 + hn * 4 * RB + 2));
            } else {
                wgmma_s8_n64<false, true>(pv[hn], pa[0], wgmma_desc<RB>(v0 + hn * 4 * RB));
                wgmma_s8_n64<true, true>(pv[hn], pa[1], wgmma_desc<RB>(v0 + hn * 4 * RB + 2));
            }
        }
    }

    // After PV(i - 1) completed. 8-bit: O = O * beta + PV * v_scale (the tile in stage st). fp16: O is
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
                softmax_tile_fp16<true, kMagic>(s, sc, valid, t, rs, b0, b1, p);
            else
                softmax_tile_fp16<false, kMagic>(s, sc, valid, t, rs, b0, b1, p);
        } else {
            if (valid < kTile)
                softmax_tile_8bit<true, kMagic, FP8>(s, sc, valid, t, rs, b0, b1, p);
            else
                softmax_tile_8bit<false, kMagic, FP8>(s, sc, valid, t, rs, b0, b1, p);
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

// CTAs per SM the register budget is capped for: 8-bit D 64 needs ~160 registers (3), fp16 D 64 fits
// 128 with a 4-byte spill (4), D 128 2 (~233 and 178 registers; ptxas, CUDA 13.0).
template <int D, PvFormat F>
constexpr int kSm90MinBlocks = D == 64 ? (F == PvFormat::fp16 ? 4 : 3) : 2;

template <int D, typename TOut, PvFormat F>
__global__ void __launch_bounds__(kAttnThreads, kSm90MinBlocks<D, F>)
    attention_sm90_kernel(Shape s, PlanView plan, Quantized w, float sm_scale_log2, MutView out) {
#ifdef PARO_SM90_DEVICE
    extern __shared__ __align__(128) uint8_t smem[];
    const RowTile rt = row_tile(plan.schedule);  // a row of one of this format's heads
    const int r = rt.row, h = rt.head, b = blockIdx.z;
    const size_t bh = size_t(b) * s.heads + h;
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, t = lane & 3;

    const uint32_t* rp = plan.row_ptr + size_t(h) * (s.nb + 1);
    const uint32_t beg = rp[r], n = rp[r + 1] - beg;
    if (n == 0) {  // no kept key tile: zeros
        const float zero[D / 8][4] = {};
        store_rows<D, TOut>(s, plan, out, b, h, r * kTile + warp * 16 + g, t, zero, 0.f, 0.f);
        return;
    }
    Sm90Row<D, F> row;
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

template <int D, typename TOut, PvFormat F>
cudaError_t attention_sm90_t(const Shape& s, const PlanView& plan, const Quantized& w, float sm_scale, MutView out,
                             int heads, cudaStream_t st) {
    constexpr int bytes = Smem90<D, F>::total;
    return launch_row_tiles(attention_sm90_kernel<D, TOut, F>, bytes, s, heads, plan, w, sm_scale, out, st);
}

}  // namespace

template <int D, typename TOut, PvFormat F>
cudaError_t AttentionSm90<D, TOut, F>::launch(const Shape& s, const PlanView& plan, const Quantized& w,
                                              float sm_scale, MutView out, int heads, cudaStream_t st) {
#ifdef PARO_HAVE_SM90A
    return attention_sm90_t<D, TOut, F>(s, plan, w, sm_scale, out, heads, st);
#else
    (void)s, (void)plan, (void)w, (void)sm_scale, (void)out, (void)heads, (void)st;
    return cudaErrorInvalidDeviceFunction;
#endif
}

PARO_ATTENTION_INSTANCES(AttentionSm90, PvFormat::fp16);
PARO_ATTENTION_INSTANCES(AttentionSm90, PvFormat::int8);
PARO_ATTENTION_INSTANCES(AttentionSm90, PvFormat::fp8_e4m3);

}  // namespace paro::gpu
