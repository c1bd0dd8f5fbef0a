// Block-sparse attention on Hopper (sm_90a): warp-specialized, persistent, warpgroup MMA overlapped
// with the softmax.
//
// Same plan, workspace and math as the sm_80 kernel (attention_sm80.cu), sharing its per-tile
// arithmetic (softmax.cuh, epilogue.cuh). One CTA per SM (a persistent grid) of 1 + C warpgroups
// (C = 3, or 2 where three do not fit: Sm90Config). As described below each consumer has a row and
// stages of its own; the TRIPLES variant (fp16 PV, three consumers) instead gives the three consumers
// the three rows of a triple (rows that keep the same tiles) on one shared ring that a single
// producer thread fills once per tile (Sm90Config, attention_sm90_t):
//  - the producer warpgroup gives up its registers (setmaxnreg) and runs one thread per consumer:
//    it takes the consumer's next row from the RowQueue (longest rows first, whichever consumer is
//    free takes the next), hands it over (RowHandoff), and feeds that row's kept K and V^T tiles and
//    their v scales into the consumer's stages with bulk copies (TMA), storing the tile's k scale
//    and count of valid keys beside them (TileMeta); a consumer is done with tile i's stage
//    after the next tile's PV, so a ring of S stages keeps S - 2 copies in flight. The prep
//    kernel stored each tile in the swizzled layout wgmma reads (SwizzledRows), so a tile is one
//    contiguous copy and the consumers issue no global load and no per-tile index arithmetic;
//  - each consumer warpgroup computes a 64-row query tile of its own row at a time (its own list of
//    kept tiles: no union of two rows' masks, bench/mask_geometry.py), waiting on the stage's
//    mbarrier instead of a CTA-wide barrier.
// QK^T is wgmma.mma_async m64n64k32 s8 (int32 accumulators), or for 16-bit-QK heads (QkFormat::fp16)
// m64n64k16 f16 (fp32 accumulators; K tiles of twice the bytes, so fewer stages fit); PV is one of
//   INT8 (PvFormat::int8): m64n64k32 u8 x s8 on P'_u8 (per row and tile scale) and V_i8 (per tile and channel),
//       int32 accumulators folded into fp32 O after each tile;
//   FP8 (PvFormat::fp8_e4m3): m64n64k32 e4m3 x e4m3 on P'_e4m3 (the same per-tile reference) and V_e4m3
//       (per tile and channel), fp32 accumulators of the tile folded into O after each tile: two-level
//       accumulation, so the tensor cores' reduced-precision FP8 accumulation spans one tile only;
//   fp16 (PvFormat::fp16): m64n(D + 8)k16 f16 with fp32 accumulators: the tensor cores accumulate
//       straight into O, and into the row sums from 8 rows of ones beside V^T; both are rescaled only
//       when the lazily updated row max moves.
// A (Q, then P) comes from registers in the mma.m16n8 fragment layout, B (K, then V^T) from shared
// memory in 64B/128B-swizzled rows. The overlap (FlashAttention-3's intra-warpgroup pipelining), for
// kept key tile i:
//     issue QK(i), issue PV(i-1) -> wait QK(i) -> softmax(i) -> wait PV(i-1) -> O update
// so the tensor cores compute the previous tile's PV while the warps run this tile's softmax, and
// the other consumer warpgroups fill the waits. Nothing stays in flight from one tile to the next:
// with wgmma groups in flight across iterations ptxas cannot prove the waits exact and serializes
// every wgmma (C7514). fp16 PV's softmax takes a tile's exponentials against the running max before
// the tile's own max is known (softmax_tile_fp16_exp_ahead); the rare warps' rows where a max moved
// too far for that are computed again by a last grid (Grid::redo), launched behind the others, that
// ends at once when there are none.
#include "attention_cta.cuh"
#include "attention_kernels.hpp"
#include "epilogue.cuh"
#include "pipeline_sm90.cuh"
#include "softmax.cuh"

#include <algorithm>
#include <type_traits>

namespace paro::gpu {

namespace {

// The kernel's shape for (D, PV format, QK format, triples): warpgroups, register split, stages,
// shared-memory layout.
template <int D, PvFormat F, QkFormat Q, bool TRIPLES = false>
struct Sm90Config {
    static constexpr bool PV16 = F == PvFormat::fp16, QK16 = Q == QkFormat::fp16;
    // Three consumers where their S, P, O and Q fit the registers three leave each (152 at D 64, 160
    // at D 128): at D 64 except 16-bit QK with 8-bit PV (doubled Q fragments beside the PV products
    // spill), and at D 128 for fp16 PV with INT8 QK only (there two warps per scheduler left the
    // softmax waiting on its own latency); two elsewhere.
    static constexpr int kConsumers = (D == 64 && !(QK16 && !PV16)) || (D == 128 && PV16 && !QK16) ? 3 : 2;
    // TRIPLES: the three consumers compute the three rows of a triple (PlanView::triples), which
    // keep the same key tiles, from one ring of stages that all of them read: each tile is copied
    // once for three query tiles (a third of the L2 reads and shared-memory writes). Else one ring
    // per consumer.
    static_assert(!TRIPLES || kConsumers == 3, "a triple's rows go to three consumers");
    static constexpr int kRings = TRIPLES ? 1 : kConsumers;
    static constexpr int kRingWarps = 4 * kConsumers / kRings;  // the warps that read each stage
    static constexpr bool kEveryLaneRelease = !PV16;  // TileRing: the v scales are read by every thread
    static constexpr int kThreads = (kConsumers + 1) * kAttnThreads;
    // Registers: every thread starts with the launch's even share of the 64K file (128 with three
    // consumers, 168 with two); the producer warpgroup drops to what its thread needs without
    // spilling (56), or at D 128 with three consumers to 32 (its one thread per warp then spills a
    // few values: it waits on the consumers most of the time), and setmaxnreg.inc hands the consumers
    // what it released (the pool is the CTA's; asking for more blocks forever): 152 at D 64, 160 at
    // D 128 with three consumers, 224 with two.
    static constexpr int kEntryRegs = (65536 / kThreads) & ~7;
    static constexpr int kProducerRegs = D == 128 && kConsumers == 3 ? 32 : 56;
    static constexpr int kConsumerRegs = (kEntryRegs + (kEntryRegs - kProducerRegs) / kConsumers) & ~7;
    // A stage: the K tile (kTile keys of D int8 / fp16 channels, SwizzledRows), then V^T (D channels of
    // 64 int8 / fp16 keys, SwizzledRows) and for fp16 PV 8 rows of fp16 ones after it, written once
    // at the start, which the PV MMA reads as 8 more channels: P's row sums come from the tensor
    // cores beside O, rescaled with it (no per-tile MMA chain for l). Each at a 1024-byte boundary.
    // Apart: each stage's TileMeta and (8-bit PV) v scales (Quantized::v_scale).
    static constexpr int vRowBytes = kTile * (PV16 ? 2 : 1);
    static constexpr int kBytes = kTile * D * (QK16 ? 2 : 1);
    static constexpr int vBytes = D * vRowBytes;
    static constexpr int onesBytes = PV16 ? 8 * vRowBytes : 0;
    static constexpr int kStageBytes = kBytes + vBytes + onesBytes;
    static_assert(kBytes % 1024 == 0 && kStageBytes % 1024 == 0, "swizzled tiles start at 1024-byte boundaries");
    static constexpr int vsBytes = PV16 ? 0 : D * 8;
    static constexpr int metaBytes = 16;
    static constexpr int vCopyBytes = vBytes + vsBytes;  // what the bulk copies of V^T (and v scales) land
    static_assert(kBytes % 16 == 0 && vCopyBytes % 16 == 0, "bulk copies move multiples of 16 bytes");
    // Where things are with `st` stages a ring: every ring's stages, their TileMetas, v scales and
    // barriers, the consumers' hand-offs; total + 1024 for the alignment of the base.
    struct Layout {
        int metas, vscales, rings, handoffs, total;
    };
    static constexpr Layout layout(int st) {
        const int metas = kRings * st * kStageBytes, vscales = metas + kRings * st * metaBytes;
        const int rings = vscales + kRings * st * vsBytes, handoffs = rings + kRings * tile_ring_bytes(st);
        return {metas, vscales, rings, handoffs, handoffs + kConsumers * kRowHandoffBytes + 1024};
    }
    // As many stages a ring (8, 4 or 3) as fit in the 227 KB a CTA may have; 2 would leave no copy
    // in flight. 3 for 16-bit QK with fp16 PV at D 128 (33 KB a stage) and for the rows of three
    // consumers at D 128 (25 KB a stage, three rings: this exact count leaves 616 bytes), which
    // measured level to 3% faster than the split K and V rings (2 + 3 stages) before (H200).
    static constexpr int fit(int st) {
        return st <= 2 || layout(st).total <= 227 * 1024 ? st : fit(st == 4 ? 3 : st == 3 ? 2 : st / 2);
    }
    static constexpr int kStages = fit(8);
    static_assert(kStages >= 3, "a ring of two stages keeps no copy in flight while a tile is computed");
    static constexpr Layout kLayout = layout(kStages);
    static constexpr int kRingBytes = tile_ring_bytes(kStages);
    static constexpr int total = kLayout.total;
    static_assert(kConsumers * (kConsumerRegs - kEntryRegs) <= kEntryRegs - kProducerRegs, "registers released >= taken");
    static_assert(total <= 227 * 1024);
};

// Which grid of a launch a kernel is: the triples', the other rows', or the rows to redo.
enum class Grid { triples, rows, redo };

#ifdef PARO_SM90_DEVICE
// What the producer thread stores into a stage beside the copies (st.shared before its arrive, which
// releases it): the tile's k scale (Quantized::k_scale) and the keys from its first to the sequence
// end (below kTile only in a ragged last tile). Each consumer thread reads both with one load where
// it would otherwise fetch the tile's column from the plan and index the scale itself.
struct TileMeta {
    float k_scale;
    int valid;
};

// Consumer c's part of shared memory: its ring's stages (TRIPLES: the one ring of all consumers)
// and its hand-off.
template <int D, PvFormat F, QkFormat Q, bool TRIPLES>
struct ConsumerSmem {
    using C = Sm90Config<D, F, Q, TRIPLES>;
    uint32_t tiles, metas, vscales;  // stage 0 of each
    TileRing<C::kStages, C::kEveryLaneRelease> ring;
    RowHandoff handoff;
    __device__ __forceinline__ ConsumerSmem(uint32_t base, int c) : ConsumerSmem(base, c, C::kRings == 1 ? 0 : c) {}
    // Where ring r's stage st starts.
    __device__ __forceinline__ static uint32_t stage_at(uint32_t base, int r, int st) {
        return base + (r * C::kStages + st) * C::kStageBytes;
    }
  private:
    __device__ __forceinline__ ConsumerSmem(uint32_t base, int c, int r)
        : tiles(stage_at(base, r, 0)),
          metas(base + C::kLayout.metas + r * C::kStages * C::metaBytes),
          vscales(base + C::kLayout.vscales + r * C::kStages * C::vsBytes),
          ring(base + C::kLayout.rings + r * C::kRingBytes),
          handoff(base + C::kLayout.handoffs + c * kRowHandoffBytes) {}
  public:
    __device__ __forceinline__ uint32_t k_at(uint32_t st) const { return tiles + st * C::kStageBytes; }
    __device__ __forceinline__ uint32_t v_at(uint32_t st) const { return k_at(st) + C::kBytes; }
    __device__ __forceinline__ uint32_t vscales_at(uint32_t st) const { return vscales + st * C::vsBytes; }
    __device__ __forceinline__ uint32_t meta_at(uint32_t st) const { return metas + st * C::metaBytes; }
    __device__ __forceinline__ void put_meta(uint32_t st, TileMeta m) const {
        sts_u32x2(meta_at(st), __float_as_uint(m.k_scale), uint32_t(m.valid));
    }
    // Read by the warp's first lane, the one that releases the stage (TileRing::release), and passed
    // to the others: then program order alone puts every read of the producer's stores before the
    // release. (Each lane reading for itself is ordered too, by the __syncwarp before the release,
    // but compute-sanitizer's racecheck does not follow that: it flagged those reads against the
    // producer's next stores once a ring wrapped in the [race] cases. The broadcast measured within
    // 1% at D 64 and -2% .. +3% at D 128, H200.)
    __device__ __forceinline__ TileMeta meta(uint32_t st) const {
        uint2 m = (threadIdx.x & 31) == 0 ? lds_u32x2(meta_at(st)) : make_uint2(0u, 0u);
        m = make_uint2(__shfl_sync(0xffffffffu, m.x, 0), __shfl_sync(0xffffffffu, m.y, 0));
        return {__uint_as_float(m.x), int(m.y)};
    }
};

// A row's place in the workspace and the plan: queue item i, or (TRIPLES) row `member` of triple i.
struct RowRef {
    int b, h, r;
    int warp;  // -1, or (Grid::redo) the one warp whose rows are wanted
    size_t bh;
    uint32_t beg, n;  // its kept tiles: plan.cols[beg .. beg + n)
    template <Grid G>
    __device__ __forceinline__ RowRef(const RowQueue& q, uint32_t i, const Shape& s, const PlanView& plan,
                                      std::integral_constant<Grid, G>, int member = 0) {
        const WarpRows wr = q.at<G == Grid::triples, G == Grid::redo>(i);
        b = wr.b;
        h = wr.rt.head;
        r = wr.rt.row + member;
        warp = wr.warp;
        bh = size_t(b) * s.heads + h;
        const uint32_t* rp = plan.row_ptr + size_t(h) * (s.nb + 1);
        beg = rp[r];
        n = rp[r + 1] - beg;
    }
};

// The producer thread of one consumer (TRIPLES: of all three): rows from the queue, handed over, then
// their tiles copied into the consumer's stages.
// TRIPLES: one producer thread, each triple handed to all three consumers and its tiles (those of its
// first row) copied once; right only because the three rows keep the same tiles (schedule_items
// forms triples of such rows only). A tail triple's rows that its head's last triple computes too
// are written twice, with the same values (the same code on the same tiles).
// Grid::redo: the queue is the RedoList of the grids before this one, complete only when they are.
template <int D, PvFormat F, QkFormat Q, Grid G, bool TRIPLES = G == Grid::triples>
__device__ __forceinline__ void produce(uint32_t base, int ring, const RowQueue& queue, const Shape& s,
                                        const PlanView& plan, const Quantized& w) {
    using C = Sm90Config<D, F, Q, TRIPLES>;
    using Smem = ConsumerSmem<D, F, Q, TRIPLES>;
    const Smem sm(base, ring);
    if constexpr (G == Grid::redo) grid_dependency_wait();
    uint32_t pos = 0;  // ring position of the next tile
    for (uint32_t k = 0;; ++k) {
        const uint32_t i = queue.fetch();
        const bool done = i >= queue.end<G == Grid::redo>();
        if constexpr (TRIPLES) {
            for (int c = 0; c < C::kConsumers; ++c) Smem(base, c).handoff.put(k, done ? RowHandoff::kEnd : i);
        } else {
            sm.handoff.put(k, done ? RowHandoff::kEnd : i);
        }
        if (done) return;
        const RowRef row(queue, i, s, plan, std::integral_constant<Grid, G>{});
        const int8_t* gk = w.k + row.bh * qk_head_bytes(s.npad, D);
        const int8_t* gv = w.vt + row.bh * vt_head_bytes(s.nb, D);
        const float* gvs = w.v_scale + row.bh * s.nb * D * 2;
        const float* gks = w.k_scale + row.bh * s.nb;
        const uint16_t* cols = plan.cols + row.beg;
        int c = row.n > 0 ? cols[0] : 0;
        for (uint32_t t = 0; t < row.n; ++t, ++pos) {
            const int next = t + 1 < row.n ? cols[t + 1] : 0;  // their latency hides under the wait
            const float ks = gks[c];
            sm.ring.acquire(pos);
            const uint32_t st = sm.ring.stage(pos), bar = sm.ring.full_bar(pos);
            sm.put_meta(st, TileMeta{ks, s.tokens - c * kTile});
            sm.ring.expect(pos, C::kBytes + C::vCopyBytes);
            bulk_copy_g2s(sm.k_at(st), gk + size_t(c) * C::kBytes, C::kBytes, bar);
            bulk_copy_g2s(sm.v_at(st), gv + size_t(c) * C::vBytes, C::vBytes, bar);
            if constexpr (!C::PV16) bulk_copy_g2s(sm.vscales_at(st), gvs + size_t(c) * D * 2, C::vsBytes, bar);
            c = next;
        }
    }
}

// One consumer warpgroup's walk over the kept key tiles of its current row. AHEAD (fp16 PV only): the
// exponentials of each tile after the first do not wait for its row max (softmax_tile_fp16_exp_ahead);
// ahead_failed() says for which rows that failed.
template <int D, PvFormat F, QkFormat Q, bool TRIPLES, bool AHEAD>
struct Sm90Row {
    using C = Sm90Config<D, F, Q, TRIPLES>;
    static constexpr bool PV16 = C::PV16, QK16 = C::QK16, FP8 = F == PvFormat::fp8_e4m3;
    static_assert(!AHEAD || PV16, "exponentials ahead of the row max need fp16 PV's lazy max");
    using PvAcc = std::conditional_t<FP8, float, int>;  // a tile's 8-bit PV product
    using SAcc = std::conditional_t<QK16, float, int>;  // S: int32 sums of INT8 QK, fp32 of 16-bit QK

    const ConsumerSmem<D, F, Q, TRIPLES> sm;
    uint32_t kdesc, vdesc;  // descriptor low words of the K and V^T tiles of the consumer's stage 0
    int lane;
    uint32_t n, pos;     // the row's kept tiles, and the ring position of its first

    uint32_t qa[D / (QK16 ? 16 : 32)][4];  // Q fragments: per 32 int8 or 16 fp16 channels
    ScoreStep qscale;  // the thread's two rows' Q scales x softmax scale x log2 e
    static constexpr int kOBlocks = D / 8 + (PV16 ? 1 : 0);  // O's n-blocks of 8 channels, and fp16 PV's row sums
    float o[kOBlocks][4];  // O, then (fp16 PV) the row sums: o[D / 8][0] of row g, o[D / 8][2] of row g + 8
    SAcc s[8][4];                       // S of the current tile
    PvAcc pv[PV16 ? 1 : D / 64][8][4];  // 8-bit PV: P'V of the previous tile
    uint32_t pa[PV16 ? 4 : 2][4];       // P of the previous tile (A fragments)
    RowState rs;
    float beta0, beta1;                 // INT8: of the previous tile

    __device__ __forceinline__ Sm90Row(const ConsumerSmem<D, F, Q, TRIPLES>& sm_, int lane_)
        : sm(sm_), kdesc(desc_lo(sm_.k_at(0))), vdesc(desc_lo(sm_.v_at(0))), lane(lane_) {}

    __device__ __forceinline__ void start(uint32_t n_, uint32_t pos_) {
        n = n_;
        pos = pos_;
        rs = RowState{};
        beta0 = beta1 = 0.f;
#pragma unroll
        for (int j = 0; j < kOBlocks; ++j) o[j][0] = o[j][1] = o[j][2] = o[j][3] = 0.f;
    }

    // The row sums l of the thread's two rows, after finish().
    __device__ __forceinline__ float row_sum0() const { return PV16 ? o[D / 8][0] : rs.l0; }
    __device__ __forceinline__ float row_sum1() const { return PV16 ? o[D / 8][2] : rs.l1; }
    // AHEAD, after finish(): a row of the thread's max moved by kAheadRange or more after its first
    // tile, which leaves its sum non-finite (finite inputs; softmax_tile_fp16_exp_ahead).
    __device__ __forceinline__ bool ahead_failed() const { return !isfinite(row_sum0()) || !isfinite(row_sum1()); }

    // The stage of the row's tile i.
    __device__ __forceinline__ uint32_t stage(uint32_t i) const { return sm.ring.stage(pos + i); }

    // S = Q K^T of the K tile of stage st, issued (not waited for). 16-bit: the K tile is D / 64 blocks
    // of 64 keys x 128 bytes (8192 bytes each), four k16 steps of 32 bytes per block.
    __device__ __forceinline__ void issue_qk(uint32_t st) {
        const uint32_t k0 = kdesc + st * (C::kStageBytes >> 4);
        wgmma_fence();
        if constexpr (QK16) {
            wgmma_f16_n64<false>(s, qa[0], wgmma_desc<128>(k0));
#pragma unroll
            for (int kc = 1; kc < D / 16; ++kc) wgmma_f16_n64<true>(s, qa[kc], wgmma_desc<128>(k0 + (kc / 4) * 512 + (kc % 4) * 2));
        } else {
            wgmma_s8_n64<false>(s, qa[0], wgmma_desc<D>(k0));
#pragma unroll
            for (int kk = 1; kk < D / 32; ++kk) wgmma_s8_n64<true>(s, qa[kk], wgmma_desc<D>(k0 + kk * 2));
        }
    }

    // PV of the V^T tile of stage st with the P in pa, issued: 8-bit formats into pv, fp16 accumulating into o.
    // fp16 PV: one MMA per k step over all channels and the ones rows (n72 at D 64, n136 at D 128; at
    // D 128 one n128 MMA measured 1-3% faster than two n64 ones; the 8-bit formats no gain, FP8 a loss).
    __device__ __forceinline__ void issue_pv(uint32_t st) {
        wgmma_fence();
        constexpr int RB = C::vRowBytes;
        const uint32_t v0 = vdesc + st * (C::kStageBytes >> 4);
        if constexpr (PV16) {
#pragma unroll
            for (int kc = 0; kc < 4; ++kc) wgmma_f16_pv_sums<D>(o, pa[kc], wgmma_desc<RB>(v0 + kc * 2));
        } else {
#pragma unroll
            for (int hn = 0; hn < D / 64; ++hn) {  // 64 channels per warpgroup MMA
                if constexpr (FP8) {
                    wgmma_e4m3_n64<false>(pv[hn], pa[0], wgmma_desc<RB>(v0 + hn * 4 * RB));
                    wgmma_e4m3_n64<true>(pv[hn], pa[1], wgmma_desc<RB>(v0 + hn * 4 * RB + 2));
                } else {
                    wgmma_s8_n64<false, true>(pv[hn], pa[0], wgmma_desc<RB>(v0 + hn * 4 * RB));
                    wgmma_s8_n64<true, true>(pv[hn], pa[1], wgmma_desc<RB>(v0 + hn * 4 * RB + 2));
                }
            }
        }
    }

    // After PV(i - 1) completed. 8-bit: O = O * beta + PV * v_scale (the v scales of stage st). fp16: O is
    // current; rescale it when this tile moved a row's max (b = 2^(m_prev - m); rare).
    __device__ __forceinline__ void fold_pv(uint32_t st, float b0, float b1) {
        if constexpr (PV16) {
            fence_operand(o);
            if (__any_sync(0xffffffffu, b0 != 1.f || b1 != 1.f)) scale_rows(o, b0, b1);
        } else {
            (void)b0, (void)b1;
            const uint32_t ss = sm.vscales_at(st) + (lane & 3) * 16;
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
    //   issue QK(i), issue PV(i - 1) -> wait QK(i) -> softmax(i) -> wait PV(i - 1) -> pack P(i), O update
    template <bool FIRST>
    __device__ __forceinline__ void step(uint32_t i) {
        const uint32_t si = stage(i);
        sm.ring.wait(pos + i);  // tile i has landed
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
        const TileMeta tm = sm.meta(si);
        const ScoreStep sc{qscale.row0 * tm.k_scale, qscale.row1 * tm.k_scale};
        const int valid = tm.valid;
        float f[8][4];  // the values of P (i)
        float b0, b1;
        const int t = lane & 3;
        if constexpr (AHEAD && !FIRST) {
            if (valid < kTile)
                softmax_tile_fp16_exp_ahead<true, kMagic>(s, sc, valid, t, rs, b0, b1, f);
            else
                softmax_tile_fp16_exp_ahead<false, kMagic>(s, sc, valid, t, rs, b0, b1, f);
        } else if constexpr (PV16) {
            if (valid < kTile)
                softmax_tile_fp16_exp<true, kMagic>(s, sc, valid, t, rs, b0, b1, f);
            else
                softmax_tile_fp16_exp<false, kMagic>(s, sc, valid, t, rs, b0, b1, f);
        } else {
            if (valid < kTile)
                softmax_tile_8bit_exp<true, kMagic, FP8>(s, sc, valid, t, rs, b0, b1, f);
            else
                softmax_tile_8bit_exp<false, kMagic, FP8>(s, sc, valid, t, rs, b0, b1, f);
        }
        if (!FIRST) wgmma_wait<0>();  // PV(i - 1): pa is free
        // P (i) packed straight into pa, each fragment by a volatile instruction below the wait (no copy).
        if constexpr (PV16)
            pack_p16<true, false>(f, b0, b1, rs, pa);  // the sums come with PV
        else
            pack_p8<FP8, true>(f, b0, b1, rs, pa);
        if (!FIRST) {
            fold_pv(stage(i - 1), b0, b1);
            sm.ring.release(pos + i - 1);
        }
        beta0 = b0;
        beta1 = b1;
    }

    // After the last tile: its PV and O update.
    __device__ __forceinline__ void finish() {
        issue_pv(stage(n - 1));
        wgmma_commit();
        wgmma_wait<0>();
        fold_pv(stage(n - 1), 1.f, 1.f);
        sm.ring.release(pos + n - 1);
    }
};

// A consumer warpgroup: the rows its producer hands over, one after the other (TRIPLES: row `member`
// of each triple). fp16 PV outside the redo grid takes its exponentials ahead of the row max and
// leaves the warps' rows where that failed (rare: a row's max moved by kAheadRange, 120 log2 units,
// or more after its first tile) to the redo grid, which computes them without. Each warp decides
// for its own rows: a warpgroup-wide vote at each row's end measured 2-3% slower (H200).
template <int D, typename TOut, PvFormat F, QkFormat Q, Grid G, bool TRIPLES = G == Grid::triples>
__device__ __forceinline__ void consume(const ConsumerSmem<D, F, Q, TRIPLES>& sm, const RowQueue& queue, const Shape& s,
                                        const PlanView& plan, const Quantized& w, float sm_scale_log2,
                                        const MutView& out, int tid, int member) {
    const int warp = tid >> 5, lane = tid & 31, g = lane >> 2, t = lane & 3;
    constexpr bool kAhead = F == PvFormat::fp16 && G != Grid::redo;
    Sm90Row<D, F, Q, TRIPLES, kAhead> walk(sm, lane);
    uint32_t pos = 0;
    for (uint32_t k = 0;; ++k) {
        const uint32_t i = sm.handoff.take(k);
        if (i == RowHandoff::kEnd) return;
        const RowRef row(queue, i, s, plan, std::integral_constant<Grid, G>{}, member);
        const int p0 = row.r * kTile + warp * 16 + g;  // the thread's first query row (permuted position)
        if (row.n == 0) {  // no kept key tile: zeros
            const float zero[D / 8][4] = {};
            store_rows<D, TOut>(s, plan, out, row.b, row.h, p0, t, zero, 0.f, 0.f);
            continue;
        }
        walk.start(row.n, pos);
        using QElem = std::conditional_t<Q == QkFormat::fp16, __half, int8_t>;
        const auto* qw = reinterpret_cast<const QElem*>(w.q + row.bh * qk_head_bytes(s.npad, D));
        load_q_fragments<D>(qw + (size_t(row.r) * kTile + warp * 16) * D, g, t, walk.qa);  // the warp's rows
        const float* qs = w.q_scale + row.bh * s.npad + p0;  // rows p0 and p0 + 8
        walk.qscale = {qs[0] * sm_scale_log2, qs[8] * sm_scale_log2};
        walk.template step<true>(0);
        for (uint32_t j = 1; j < row.n; ++j) walk.template step<false>(j);
        walk.finish();
        pos += row.n;
        if constexpr (kAhead) {
            if (__any_sync(0xffffffffu, walk.ahead_failed())) {
                if (lane == 0) RedoList{w.redo, w.row_counter + 3}.push({{row.h, row.r}, row.b, warp});
                continue;
            }
        }
        if constexpr (G == Grid::redo) {
            if (warp != row.warp) continue;  // computed for another warp's rows
        }
        store_rows<D, TOut>(s, plan, out, row.b, row.h, p0, t, walk.o, walk.row_sum0(), walk.row_sum1());
    }
}
#endif  // PARO_SM90_DEVICE

// Grid::triples: the run's triples, ahead of its other rows, whose launch (Grid::rows) may
// start as this one's CTAs end (programmatic dependent launch) and waits for this grid before it
// ends. Grid::redo: the rows those grids left to redo (fp16 PV), launched behind them in the same way.
// Only a grid that one of ours follows lets it start early: a caller's own dependent launch must not
// start before the last of ours has written the output.
template <int D, typename TOut, PvFormat F, QkFormat Q, Grid G, bool TRIPLES = G == Grid::triples>
__global__ void __launch_bounds__(Sm90Config<D, F, Q, TRIPLES>::kThreads, 1)
    attention_sm90_kernel(Shape s, PlanView plan, Quantized w, RowQueue queue, float sm_scale_log2, MutView out) {
#ifdef PARO_SM90_DEVICE
    using C = Sm90Config<D, F, Q, TRIPLES>;
    using Smem = ConsumerSmem<D, F, Q, TRIPLES>;
    extern __shared__ __align__(128) uint8_t smem[];
    const uint32_t base = (static_cast<uint32_t>(__cvta_generic_to_shared(smem)) + 1023) & ~1023u;
    const int wg = threadIdx.x / kAttnThreads, tid = threadIdx.x % kAttnThreads;
    if (threadIdx.x < C::kConsumers) {
        const Smem sm(base, threadIdx.x);
        if (threadIdx.x < C::kRings) sm.ring.init(C::kRingWarps);
        sm.handoff.init();
        mbar_init_fence();
    }
    if constexpr (C::onesBytes > 0) {  // fp16 PV: the ones rows of every stage, for the async proxy (wgmma)
        constexpr int kWords = C::onesBytes / 4, kAllStages = C::kRings * C::kStages;
        for (int i = threadIdx.x; i < kAllStages * kWords; i += C::kThreads) {
            const int st = i / kWords;  // ring-major: (ring, stage) = (st / kStages, st % kStages)
            sts_u32(Smem::stage_at(base, 0, st) + C::kBytes + C::vBytes + 4 * (i % kWords), kOnesH2);
        }
        fence_proxy_async();
    }
    __syncthreads();
    if constexpr (G == Grid::triples || (G == Grid::rows && F == PvFormat::fp16)) grid_launch_dependents();
    // Roles: one branch each (setmaxnreg applies per warpgroup).
    if (wg == 0) {
        setmaxnreg_dec<C::kProducerRegs>();
        if (tid % 32 == 0 && tid / 32 < C::kRings) produce<D, F, Q, G>(base, tid / 32, queue, s, plan, w);
    } else {
        setmaxnreg_inc<C::kConsumerRegs>();
        consume<D, TOut, F, Q, G>(Smem(base, wg - 1), queue, s, plan, w, sm_scale_log2, out, tid, TRIPLES ? wg - 1 : 0);
    }
    if constexpr (!TRIPLES) grid_dependency_wait();  // no-op unless launched behind another grid
#else
    (void)s, (void)plan, (void)w, (void)queue, (void)sm_scale_log2, (void)out;
    __trap();  // never launched: the host side runs this kernel only on sm_90a builds and devices
#endif
}

// One persistent grid over `queue`, as many CTAs as SMs (fewer for a short queue: queue.total rows,
// Grid::redo: at most); behind: a programmatic dependent launch behind the grid before it, so that its
// CTAs take the SMs that grid's CTAs leave.
template <int D, typename TOut, PvFormat F, QkFormat Q, Grid G>
cudaError_t launch_queue(const RowQueue& queue, const Shape& s, const PlanView& plan, const Quantized& w,
                         float sm_scale, MutView out, bool behind, cudaStream_t st) {
    constexpr bool TRIPLES = G == Grid::triples;
    using C = Sm90Config<D, F, Q, TRIPLES>;
    const auto kernel = attention_sm90_kernel<D, TOut, F, Q, G>;
    cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, C::total);
    int dev = 0, sms = 0;
    if (e == cudaSuccess) e = cudaGetDevice(&dev);
    if (e == cudaSuccess) e = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev);
    if (e != cudaSuccess) return e;
    const uint32_t per_cta = TRIPLES ? 1 : C::kConsumers;  // items a CTA computes at once
    cudaLaunchConfig_t cfg{};
    cfg.gridDim = dim3(std::min<uint32_t>(uint32_t(sms), (queue.total + per_cta - 1) / per_cta));
    cfg.blockDim = dim3(C::kThreads);
    cfg.dynamicSmemBytes = C::total;
    cfg.stream = st;
    cudaLaunchAttribute pdl{};
    pdl.id = cudaLaunchAttributeProgrammaticStreamSerialization;
    pdl.val.programmaticStreamSerializationAllowed = 1;
    cfg.attrs = &pdl;
    cfg.numAttrs = behind ? 1 : 0;
    return cudaLaunchKernelEx(&cfg, kernel, s, plan, w, queue, sm_scale * 1.4426950408889634f, out);  // log2(e)
}

// The variant's rows: for fp16 PV with three consumers, its triples and tail triples on shared stages
// first, then the other rows, then the rows those grids left to redo (none, mostly: the grid ends as it
// starts); elsewhere every row on its own. (The 8-bit formats' triples at D 64 measured 3% faster dense
// and level sparse on H200; without the redo grid behind them a triples launch could end a run, and let
// a caller's dependent launch start before the output is written.)
template <int D, typename TOut, PvFormat F, QkFormat Q>
cudaError_t attention_sm90_t(const Shape& s, const PlanView& plan, const Quantized& w, float sm_scale, MutView out,
                             int heads, cudaStream_t st) {
    constexpr bool kTriples = F == PvFormat::fp16 && Sm90Config<D, F, Q>::kConsumers == 3;
    const uint32_t triples = kTriples ? plan.triples : 0, tails = kTriples ? plan.tail_triples : 0;
    const uint32_t tail_rows = uint32_t(s.nb) % 3, rows = uint32_t(heads) * uint32_t(s.nb);
    const uint32_t batch = uint32_t(s.batch), items = triples + tails;
    cudaError_t e = cudaMemsetAsync(w.row_counter, 0, 4 * sizeof(uint32_t), st);
    if constexpr (kTriples) {
        if (e == cudaSuccess && items > 0) {
            RowQueue q{plan.schedule, items, items * batch, w.row_counter};
            q.tails = tails;
            q.tail_rows = tail_rows;
            e = launch_queue<D, TOut, F, Q, Grid::triples>(q, s, plan, w, sm_scale, out, false, st);
        }
    }
    // The rows after the triples and tail rows taken here, or all rows.
    const uint32_t taken = 3 * triples + tail_rows * tails, left = rows - taken;
    if (e == cudaSuccess && left > 0)
        e = launch_queue<D, TOut, F, Q, Grid::rows>(RowQueue{plan.schedule + taken, left, left * batch, w.row_counter + 1},
                                                    s, plan, w, sm_scale, out, items > 0, st);
    if constexpr (F == PvFormat::fp16) {
        if (e == cudaSuccess && rows > 0)
            e = launch_queue<D, TOut, F, Q, Grid::redo>(
                RowQueue{plan.schedule, rows, rows * batch, w.row_counter + 2, w.redo, w.row_counter + 3}, s, plan, w,
                sm_scale, out, true, st);
    }
    return e;
}

}  // namespace

template <int D, typename TOut, PvFormat F, QkFormat Q>
cudaError_t AttentionSm90<D, TOut, F, Q>::launch(const Shape& s, const PlanView& plan, const Quantized& w,
                                                 float sm_scale, MutView out, int heads, cudaStream_t st) {
#ifdef PARO_HAVE_SM90A
    return attention_sm90_t<D, TOut, F, Q>(s, plan, w, sm_scale, out, heads, st);
#else
    (void)s, (void)plan, (void)w, (void)sm_scale, (void)out, (void)heads, (void)st;
    return cudaErrorInvalidDeviceFunction;
#endif
}

PARO_ATTENTION_INSTANCES(AttentionSm90, PvFormat::fp16, QkFormat::int8);
PARO_ATTENTION_INSTANCES(AttentionSm90, PvFormat::int8, QkFormat::int8);
PARO_ATTENTION_INSTANCES(AttentionSm90, PvFormat::fp8_e4m3, QkFormat::int8);
PARO_ATTENTION_INSTANCES(AttentionSm90, PvFormat::fp16, QkFormat::fp16);
PARO_ATTENTION_INSTANCES(AttentionSm90, PvFormat::int8, QkFormat::fp16);
PARO_ATTENTION_INSTANCES(AttentionSm90, PvFormat::fp8_e4m3, QkFormat::fp16);

}  // namespace paro::gpu
