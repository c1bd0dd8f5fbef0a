#pragma once
// The PV formats of the sm_80 main loop (attention_sm80.cu), one policy each. A policy supplies
//  - kFormat, and kMinBlocks: the CTAs per SM its kernel's registers are capped for;
//  - kStageBytes: its part of a ring stage, right after the K tile (copy_pipeline.cuh);
//  - its per-thread copy of a tile's V^T (and scales) into a stage: the constructor and load();
//  - tile(): from S, the tile's P in its format (softmax.cuh), the PV MMA and the O update.
// PvSm80<F, D> names the policy of PvFormat F; adding a format to the sm_80 kernel is one policy
// here and one entry in dispatch.cu.
#include "copy_pipeline.cuh"
#include "epilogue.cuh"
#include "softmax.cuh"

namespace paro::gpu {

#ifndef PARO_D64_MIN_BLOCKS
#define PARO_D64_MIN_BLOCKS 4  // CTAs per SM the INT8 D = 64 kernel is register-capped for (4: 128 regs)
#endif
#ifndef PARO_D128_MIN_BLOCKS
#define PARO_D128_MIN_BLOCKS 3  // D = 128: 3 CTAs per SM (168 regs)
#endif

// INT8 PV: P'_u8 (per row and tile scale) x V_i8 (per tile and channel) with mma.m16n8k32 u8 x s8,
// then O = O * beta + (P'V) * v_scale. V^T is [D][64] int8 per tile with the keys shuffled within
// 16 (prep.cu), read with ldmatrix from padded rows; the tile's v scales follow it in the stage.
template <int D>
struct PvInt8Sm80 {
    static constexpr PvFormat kFormat = PvFormat::int8;
    static constexpr int kMinBlocks = D == 64 ? PARO_D64_MIN_BLOCKS : PARO_D128_MIN_BLOCKS;
    static constexpr int kBytes = KTileCopy<D>::kBytes;  // the K tile, before this policy's part
    static constexpr int SV = kTile + 16;                 // bytes per V^T row (16 B pad, as K)
    static constexpr int vBytes = D * SV;
    static constexpr int sBytes = D * 8;  // v scales of the tile (Quantized::v_scale)
    static constexpr int kStageBytes = vBytes + sBytes;
    static constexpr int VIT = D * 4 / kAttnThreads;  // V^T chunks per thread (4 per 64-byte row)
    static constexpr int VROWS = kAttnThreads / 4;
    static constexpr int VSTEP = VROWS * SV;

    int tid;
    uint32_t v_so;
    const int8_t* v_head;
    const float* vs_head;

    __device__ __forceinline__ PvInt8Sm80(int tid_, int /*lane*/, uint32_t /*smem_base*/, const Quantized& w,
                                          size_t bh, int nb)
        : tid(tid_) {
        v_so = kBytes + (tid >> 2) * SV + (tid & 3) * 16;
        const uint32_t v_go = SwizzledRows<kTile>::offset(tid >> 2, tid & 3);  // swizzled in the workspace
        v_head = w.vt + bh * vt_head_bytes(nb, D) + v_go;
        vs_head = w.v_scale + bh * nb * D * 2 + tid * 4;
    }
    __device__ __forceinline__ void load(uint32_t s0, int c) const {
        const int8_t* gv = v_head + c * (kTile * D);
#pragma unroll
        for (int it = 0; it < VIT; ++it) cp_async16(s0 + v_so + it * VSTEP, gv + it * VROWS * kTile);
        if (tid < D / 2) cp_async16(s0 + kBytes + vBytes + tid * 16, vs_head + c * D * 2);
    }
    // sk: the stage (generic address), so: its offset in shared memory.
    template <bool RAGGED>
    __device__ __forceinline__ void tile(const int (&acc)[8][4], const uint8_t* sk, uint32_t /*so*/, ScoreStep sc,
                                         int valid, int lane, float (&o)[D / 8][4], RowState& rs) const {
        const int t = lane & 3;
        float beta0, beta1;
        uint32_t pa[2][4];
        softmax_tile_8bit<RAGGED, 0>(acc, sc, valid, t, rs, beta0, beta1, pa);
        const uint8_t* sv = sk + kBytes;
        const float* ss = reinterpret_cast<const float*>(sv + vBytes);
#pragma unroll
        for (int nb8 = 0; nb8 < D / 8; ++nb8) {
            uint32_t v0, v1, v2, v3;
            ldmatrix_x4(v0, v1, v2, v3, sv + (8 * nb8 + (lane & 7)) * SV + (lane >> 3) * 16);
            int pv[4] = {kMagic, kMagic, kMagic, kMagic};
            mma_i8<true>(pv, pa[0], v0, v1);
            mma_i8<true>(pv, pa[1], v2, v3);
            o_update<0>(o[nb8], pv, *reinterpret_cast<const float4*>(ss + 16 * nb8 + 4 * t), beta0, beta1);
        }
    }
};

#ifndef PARO_D64_MIN_BLOCKS16
#define PARO_D64_MIN_BLOCKS16 4
#endif
#ifndef PARO_D128_MIN_BLOCKS16
#define PARO_D128_MIN_BLOCKS16 3
#endif

// fp16 PV: p = 2^(s - m) in fp16 A fragments with m a lazily updated row max (softmax_tile_fp16),
// V in fp16 as the prep kernel wrote it ([D][64] per tile, transposed, permuted, unquantized), read
// with ldmatrix from an unpadded, XOR-swizzled shared tile (16-byte chunk c of channel row r at
// c ^ (r & 7)); O = O * beta + P V with fp32 accumulation (mma.m16n8k16.f32.f16.f16.f32,
// accumulating straight into O). Measured slower than INT8 PV on H100, so opt-in per head.
// LOW = true: one CTA per SM fewer (D 64: 3 CTAs at 168 registers instead of 4 at 128; D 128: 2 at
// 255 instead of 3 at 168), no register spills; for measurement only (PARO_PV16_LOW_OCCUPANCY=1).
template <int D, bool LOW>
struct PvFp16Sm80 {
    static constexpr PvFormat kFormat = PvFormat::fp16;
    static constexpr int kMinBlocks = D == 64 ? PARO_D64_MIN_BLOCKS16 - (LOW ? 1 : 0)
                                              : PARO_D128_MIN_BLOCKS16 - (LOW ? 1 : 0);
    static constexpr int kBytes = KTileCopy<D>::kBytes;
    static constexpr int RV = kTile * 2;  // bytes per fp16 V^T row (one channel, 64 keys): no pad
    static constexpr int vBytes = D * RV;
    static constexpr int kStageBytes = vBytes;  // stages: D 64: 39936 B; D 128: 76800 B (3 CTAs per SM still fit)
    static constexpr int VIT = D * 8 / kAttnThreads;  // 16-byte chunks per thread: 8 per V^T row
    static constexpr int VROWS = kAttnThreads / 8;    // 16 rows per step: a thread's swizzle is fixed
    static constexpr int VSTEP = VROWS * RV;

    uint32_t v_so;
    const uint8_t* v_head;
    uint32_t smem_base;

    __device__ __forceinline__ PvFp16Sm80(int tid, int lane, uint32_t smem_base_, const Quantized& w, size_t bh,
                                          int nb)
        : smem_base(smem_base_) {
        // The workspace holds V^T in the same swizzled rows as this stage (SwizzledRows<RV>): a linear copy.
        v_so = kBytes + tid * 16;
        v_head = reinterpret_cast<const uint8_t*>(w.vt + bh * vt_head_bytes(nb, D)) + tid * 16;
    }
    __device__ __forceinline__ void load(uint32_t s0, int c) const {
        const uint8_t* gv = v_head + size_t(c) * (kTile * D * 2);
#pragma unroll
        for (int it = 0; it < VIT; ++it) cp_async16(s0 + v_so + it * VSTEP, gv + it * kAttnThreads * 16);
    }
    template <bool RAGGED>
    __device__ __forceinline__ void tile(const int (&acc)[8][4], const uint8_t* /*sk*/, uint32_t so, ScoreStep sc,
                                         int valid, int lane, float (&o)[D / 8][4], RowState& rs) const {
        const int t = lane & 3;
        float beta0, beta1;
        uint32_t pa[4][4];
        softmax_tile_fp16<RAGGED, 0>(acc, sc, valid, t, rs, beta0, beta1, pa);
        // The lane's ldmatrix row and swizzle.
        const uint32_t v_lane = kBytes + (lane & 7) * RV, v_xor = uint32_t(lane & 7) * 16u;
        const uint32_t sv = smem_base + so + v_lane;
#pragma unroll
        for (int nb8 = 0; nb8 < D / 8; ++nb8) {
            o[nb8][0] *= beta0;
            o[nb8][1] *= beta0;
            o[nb8][2] *= beta1;
            o[nb8][3] *= beta1;
            // Lane l addresses channel row 8 nb8 + (l & 7), key chunk l >> 3 (+ 4): ldmatrix hands each
            // thread keys (2t, 2t + 1) of channel g, the B fragment of m16n8k16.
            const uint32_t row = sv + uint32_t(nb8) * 8u * RV;
            uint32_t v0, v1, v2, v3;
            ldmatrix_x4_at(v0, v1, v2, v3, row + ((uint32_t(lane >> 3) * 16u) ^ v_xor));
            mma_f16(o[nb8], pa[0], v0, v1);
            mma_f16(o[nb8], pa[1], v2, v3);
            ldmatrix_x4_at(v0, v1, v2, v3, row + ((uint32_t(4 + (lane >> 3)) * 16u) ^ v_xor));
            mma_f16(o[nb8], pa[2], v0, v1);
            mma_f16(o[nb8], pa[3], v2, v3);
        }
    }
};

// The policy of each PV format with an sm_80 kernel.
template <PvFormat F, int D>
struct PvSm80Of;
template <int D>
struct PvSm80Of<PvFormat::int8, D> {
    using type = PvInt8Sm80<D>;
};
template <int D>
struct PvSm80Of<PvFormat::fp16, D> {
    using type = PvFp16Sm80<D, false>;
};
template <PvFormat F, int D>
using PvSm80 = typename PvSm80Of<F, D>::type;

}  // namespace paro::gpu
