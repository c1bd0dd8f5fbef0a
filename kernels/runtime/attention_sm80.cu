// Block-sparse attention over 64 x 64 tiles of the permuted sequence with mma.sync (sm_80; also the
// fallback on Hopper): one main loop for every PV format, whose policy (pv_sm80.cuh) supplies the V
// tile, the P format, the PV product and the O update. The Hopper kernel is attention_sm90.cu;
// dispatch.cu picks the instance.
//
// One CTA = one 64-row query tile of one (batch, head); 4 warps, each owning 16 query rows.
// For every kept key tile of the row (CSR list, built once at plan load):
//   S = Q_i8 K_i8^T          mma.sync m16n8k32 s8 (int32 accumulate)
//   online softmax in fp32   (exp2 domain; scale folded into the Q/K scales)
//   INT8 PV: P_u8 = round(255 * 2^(s - rho)), rho = ceil(rowmax_tile(s)) (>= running max - 64; the
//            exponent carries a small guard against rounding past 255, softmax.cuh) per row and tile;
//            O = O * beta + (P_u8 V_i8) * v_scale[tile][channel]        mma.sync m16n8k32 u8 x s8
//            where O and the row sum l are kept in units of the current tile's P scale, beta =
//            2^(rho_prev - rho) rescales them when the reference moves;
//   fp16 PV: p = 2^(s - m) in fp16, O = O * beta + P V                  mma.sync m16n8k16 f16, fp32
// and the output is O / l. K and V^T tiles stream through shared memory with cp.async (3 stages,
// copy_pipeline.cuh); Q fragments stay in registers. The epilogue divides by the row sum and
// scatters each row to its original token (inverse permutation fused).
#include <cstdlib>

#include "attention_kernels.hpp"
#include "pv_sm80.cuh"

namespace paro::gpu {

namespace {

// S = Q K^T for a warp's 16 query rows x 64 keys with mma.sync (K rows of SK bytes in shared
// memory; the accumulators start at the magic bias, so they read as floats).
template <int D, int SK>
__device__ __forceinline__ void qk_tile(const uint8_t* sk, int lane, const uint32_t (&qa)[D / 32][4], int (&acc)[8][4]) {
#pragma unroll
    for (int j = 0; j < 8; ++j) {
        acc[j][0] = acc[j][1] = acc[j][2] = acc[j][3] = kMagic;
#pragma unroll
        for (int half = 0; half < D / 64; ++half) {
            uint32_t b0, b1, b2, b3;
            ldmatrix_x4(b0, b1, b2, b3, sk + (8 * j + (lane & 7)) * SK + half * 64 + (lane >> 3) * 16);
            mma_i8(acc[j], qa[2 * half], b0, b1);
            mma_i8(acc[j], qa[2 * half + 1], b2, b3);
        }
    }
}

// A ring stage: the K tile, then the PV policy's part.
template <int D, typename PV>
struct StageSm80 {
    static constexpr int bytes = KTileCopy<D>::kBytes + PV::kStageBytes;
    static constexpr int total = kStages * bytes;
};

// One 64-key tile for a warp's 16 query rows: S = Q K^T, then the policy's softmax and PV.
template <int D, bool RAGGED, typename PV>
__device__ __forceinline__ void tile_step(const uint8_t* sk, uint32_t so, ScoreStep sc, int valid, int lane, const PV& pv,
                                          const uint32_t (&qa)[D / 32][4], float (&o)[D / 8][4], RowState& rs) {
    int acc[8][4];
    qk_tile<D, KTileCopy<D>::SK>(sk, lane, qa, acc);
    pv.template tile<RAGGED>(acc, sk, so, sc, valid, lane, o, rs);
}

template <int D, typename TOut, typename PV>
__global__ void __launch_bounds__(kAttnThreads, PV::kMinBlocks)
    attention_sm80_kernel(Shape s, PlanView plan, Quantized w, float sm_scale_log2, MutView out) {
    using L = StageSm80<D, PV>;
    extern __shared__ __align__(16) uint8_t smem[];
    const RowTile rt = row_tile(plan.schedule);  // a row of one of this format's heads
    const int r = rt.row, h = rt.head, b = blockIdx.z;
    const size_t bh = size_t(b) * s.heads + h;
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, t = lane & 3;

    const uint32_t* rp = plan.row_ptr + size_t(h) * (s.nb + 1);
    const uint32_t beg = rp[r], n = rp[r + 1] - beg;

    const uint32_t smem_base = static_cast<uint32_t>(__cvta_generic_to_shared(smem));
    const KTileCopy<D> k_copy(tid, w.k + bh * qk_head_bytes(s.npad, D));
    const PV pv(tid, lane, smem_base, w, bh, s.nb);
    auto load_tile = [&](int c, int stage) {
        const uint32_t s0 = smem_base + stage * L::bytes;
        k_copy.load(s0, c);
        pv.load(s0, c);
    };
    KeyTileRing ring(plan.cols + beg, n, w.k_scale + bh * s.nb);
    ring.start(load_tile);

    uint32_t qa[D / 32][4];
    load_q_fragments<D>(w.q + bh * qk_head_bytes(s.npad, D) + (size_t(r) * kTile + warp * 16) * D, g, t, qa);
    const float* qs = w.q_scale + bh * s.npad + size_t(r) * kTile + warp * 16 + g;  // the thread's rows
    const float qscale0 = qs[0] * sm_scale_log2, qscale1 = qs[8] * sm_scale_log2;

    float o[D / 8][4];
#pragma unroll
    for (int j = 0; j < D / 8; ++j) o[j][0] = o[j][1] = o[j][2] = o[j][3] = 0.f;
    RowState rs;

    for (uint32_t i = 0; i < n; ++i) {
        ring.next(i, load_tile);
        const uint32_t so = (i % kStages) * L::bytes;
        const ScoreStep sc{qscale0 * ring.ks0, qscale1 * ring.ks0};
        const int valid = s.tokens - ring.c0 * kTile;  // keys of this tile inside the sequence
        // Two copies of the tile step: the ragged one (last key tile only) masks keys past the end.
        // A uniform branch instead of predicated selects on every element of every tile.
        if (valid < kTile)
            tile_step<D, true>(smem + so, so, sc, valid, lane, pv, qa, o, rs);
        else
            tile_step<D, false>(smem + so, so, sc, valid, lane, pv, qa, o, rs);
        ring.advance();
    }
    cp_async_wait<0>();
    // l already holds the full row sum in every thread of the row (the ones-mma sums all 64 keys).
    store_rows<D, TOut>(s, plan, out, b, h, r * kTile + warp * 16 + g, t, o, rs.l0, rs.l1);
}

template <int D, typename TOut, typename PV>
cudaError_t launch_sm80(const Shape& s, const PlanView& plan, const Quantized& w, float sm_scale, MutView out,
                        int heads, cudaStream_t st) {
    return launch_row_tiles(attention_sm80_kernel<D, TOut, PV>, StageSm80<D, PV>::total, s, heads, plan, w, sm_scale,
                            out, st);
}

}  // namespace

template <int D, typename TOut, PvFormat F>
cudaError_t AttentionSm80<D, TOut, F>::launch(const Shape& s, const PlanView& plan, const Quantized& w,
                                              float sm_scale, MutView out, int heads, cudaStream_t st) {
    if constexpr (F == PvFormat::fp16) {
        static const bool low = [] {
            const char* e = std::getenv("PARO_PV16_LOW_OCCUPANCY");
            return e && e[0] == '1';
        }();
        if (low) return launch_sm80<D, TOut, PvFp16Sm80<D, true>>(s, plan, w, sm_scale, out, heads, st);
    }
    return launch_sm80<D, TOut, PvSm80<F, D>>(s, plan, w, sm_scale, out, heads, st);
}

PARO_ATTENTION_INSTANCES(AttentionSm80, PvFormat::int8);
PARO_ATTENTION_INSTANCES(AttentionSm80, PvFormat::fp16);

}  // namespace paro::gpu
