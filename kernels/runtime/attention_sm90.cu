// Block-sparse attention on Hopper (sm_90a): warp-specialized, persistent, warpgroup MMA overlapped
// with the softmax, two consumer warpgroups per 128-row query block sharing its K and V.
//
// Same plan, workspace and math as the sm_80 kernel (attention_sm80.cu), sharing its per-tile
// arithmetic (softmax.cuh, epilogue.cuh). One CTA per SM (a persistent grid) of 1 + C warpgroups
// (C = kConsumers) in C / G groups of G consumers (G = kGroup) that compute one query block of G
// 64-row tile rows together, warpgroup c of a group tile row G * block + c:
//  - the producer warpgroup gives up its registers (setmaxnreg) and runs one thread per group: it
//    takes the group's next block from the RowQueue (the plan's block schedule, longest first,
//    whichever group is free takes the next), hands it over (RowHandoff), and feeds the union of the
//    block's rows' kept K and V^T tiles and their v scales into the group's stage ring with bulk
//    copies (TMA), S stages ahead, storing beside each the tile's k scale, its count of valid keys and
//    which of the group's rows keep it (TileMeta): the prep kernel stored each tile in the swizzled
//    layout wgmma reads (SwizzledRows), so a tile is one contiguous copy, loaded once for the whole
//    block, and the consumers issue no global load and no per-tile index arithmetic;
//  - each consumer warpgroup walks the ring and computes the tiles its own row keeps (its own list:
//    no work on its partner's tiles, bench/mask_geometry.py), waiting on the stage's mbarrier instead
//    of a CTA-wide barrier. Before it passes over a partner's tile it finishes its pending PV, so it
//    never holds a stage while waiting for a later one (the producer may need that stage first).
//    With masks calibrated per 128 x 64 (both rows keep the same tiles) nothing is passed over.
// QK^T is wgmma.mma_async m64n64k32 s8 (int32 accumulators); PV is one of
//   INT8 (PvFormat::int8): m64n64k32 u8 x s8 on P'_u8 (per row and tile scale) and V_i8 (per tile and channel),
//       int32 accumulators folded into fp32 O after each tile;
//   FP8 (PvFormat::fp8_e4m3): m64n64k32 e4m3 x e4m3 on P'_e4m3 (the same per-tile reference) and V_e4m3
//       (per tile and channel), fp32 accumulators of the tile folded into O after each tile: two-level
//       accumulation, so the tensor cores' reduced-precision FP8 accumulation spans one tile only;
//   fp16 (PvFormat::fp16): m64n64k16 f16 with fp32 accumulators: the tensor cores accumulate straight
//       into O, which is rescaled only when the lazily updated row max moves.
// A (Q, then P) comes from registers in the mma.m16n8 fragment layout, B (K, then V^T) from shared
// memory in 64B/128B-swizzled rows. The overlap (FlashAttention-3's intra-warpgroup pipelining), for
// kept key tile i:
//     issue QK(i), issue PV(i-1) -> wait QK(i) -> softmax(i) -> wait PV(i-1) -> O update
// so the tensor cores compute the previous tile's PV while the warps run this tile's softmax, and
// the other consumer warpgroups fill the waits. Nothing stays in flight from one tile to the next:
// with wgmma groups in flight across iterations ptxas cannot prove the waits exact and serializes
// every wgmma (C7514).
#include "attention_cta.cuh"
#include "attention_kernels.hpp"
#include "epilogue.cuh"
#include "pipeline_sm90.cuh"
#include "softmax.cuh"

#include <algorithm>
#include <type_traits>

namespace paro::gpu {

namespace {

// The kernel's shape for (D, PV format): warpgroups, register split, stages, shared-memory layout.
template <int D, PvFormat F>
struct Sm90Config {
    static constexpr bool PV16 = F == PvFormat::fp16;
    // Consumer warpgroups per query block (its 64-row tile rows), and in all. D 64: three warpgroups on
    // rows of their own (two sharing 128-row blocks measured 28% slower: the third warpgroup hides more
    // latency than the shared loads save); D 128: two on 128-row blocks, in turns.
    static constexpr int kGroup = D == 64 ? 1 : kSm90BlockRows;
    static constexpr int kConsumers = D == 64 ? 3 : 2;
    static constexpr int kGroups = kConsumers / kGroup;
    static constexpr int kThreads = (kConsumers + 1) * kAttnThreads;
    // Registers: every thread starts with the launch's even share of the 64K file (128 at D 64, 168 at
    // D 128); the producer warpgroup drops to what its thread needs without spilling (48; at 32 it
    // spills 40 bytes), and setmaxnreg.inc hands the consumers only what it released (the pool is the
    // CTA's; asking for more blocks forever): 152 at D 64, 224 at D 128, where every PV format compiles
    // without spills (ptxas, CUDA 13.0).
    static constexpr int kEntryRegs = (65536 / kThreads) & ~7;
    static constexpr int kProducerRegs = 48;
    static constexpr int kConsumerRegs = (kEntryRegs + (kEntryRegs - kProducerRegs) / kConsumers) & ~7;
    // A stage: the K tile (kTile keys of D bytes) then V^T (D channels of 64 int8 / fp16 keys), both
    // SwizzledRows, at a 1024-byte boundary; its scales apart: the tile's v scales (8-bit PV:
    // Quantized::v_scale), then its TileMeta.
    static constexpr int vRowBytes = kTile * (PV16 ? 2 : 1);
    static constexpr int kBytes = kTile * D;
    static constexpr int vBytes = D * vRowBytes;
    static constexpr int tileBytes = kBytes + vBytes;  // a multiple of 1024
    static constexpr int vsBytes = PV16 ? 0 : D * 8;
    static constexpr int metaBytes = 16;
    static constexpr int scaleBytes = vsBytes + metaBytes;
    static constexpr int copyBytes = tileBytes + vsBytes;  // what the bulk copies land on a stage's full barrier
    // As many stages (a power of two, at most 8) as fit in the 227 KB a CTA may have.
    static constexpr int fit(int st) {
        const int bytes = kGroups * st * (copyBytes + metaBytes + kTileRingBytes<8>) + 4096;
        return st <= 2 || bytes <= 227 * 1024 ? st : fit(st / 2);
    }
    static constexpr int kStages = fit(8);
    static constexpr int scalesAt = kGroups * kStages * tileBytes;
    static constexpr int ringsAt = scalesAt + kGroups * kStages * scaleBytes;
    static constexpr int handoffsAt = ringsAt + kGroups * kTileRingBytes<kStages>;
    static constexpr int total = handoffsAt + kGroups * kRowHandoffBytes + 1024;  // + 1024: alignment of the base
    static_assert(kGroup == 1 || kGroup == kSm90BlockRows, "the plan has schedules of rows and of kSm90BlockRows-row blocks");
    static_assert(kConsumers % kGroup == 0 && kConsumers <= 15, "whole groups; a named barrier per consumer");
    static_assert(kConsumers * (kConsumerRegs - kEntryRegs) <= kEntryRegs - kProducerRegs, "registers released >= taken");
    static_assert(total <= 227 * 1024);
};

#ifdef PARO_SM90_DEVICE
// What the producer thread stores into a stage beside the copies (st.shared before its arrive, which
// releases it): the tile's k scale (Quantized::k_scale), and packed in one word the keys from its
// first to the sequence end (at most kTile; below it only in a ragged last tile), which of the group's
// rows keep the tile (bit c: warpgroup c) and whether it is the block's last. Each consumer thread
// reads them with one load where it would otherwise fetch the tile's column from the plan and index
// the scale itself.
struct TileMeta {
    float k_scale;
    uint32_t word;  // valid | members << 8 | last << 16
    __device__ __forceinline__ int valid() const { return int(word & 0xffu); }
    __device__ __forceinline__ bool kept_by(int c) const { return (word >> (8 + c)) & 1u; }
    __device__ __forceinline__ bool last() const { return word >> 16; }
    __device__ __forceinline__ static uint32_t pack(int valid, uint32_t members, bool last) {
        return uint32_t(min(valid, kTile)) | members << 8 | uint32_t(last) << 16;
    }
};

// Group g's part of shared memory.
template <int D, PvFormat F>
struct GroupSmem {
    using C = Sm90Config<D, F>;
    uint32_t tiles, scales;  // stage 0 of its tiles and of its scales
    TileRing<C::kStages, C::kGroup> ring;
    RowHandoff<C::kGroup> handoff;
    __device__ __forceinline__ GroupSmem(uint32_t base, int g)
        : tiles(base + g * C::kStages * C::tileBytes),
          scales(base + C::scalesAt + g * C::kStages * C::scaleBytes),
          ring(base + C::ringsAt + g * kTileRingBytes<C::kStages>),
          handoff(base + C::handoffsAt + g * kRowHandoffBytes) {}
    __device__ __forceinline__ uint32_t tile_at(uint32_t st) const { return tiles + st * C::tileBytes; }
    __device__ __forceinline__ uint32_t scales_at(uint32_t st) const { return scales + st * C::scaleBytes; }
    __device__ __forceinline__ uint32_t meta_at(uint32_t st) const { return scales_at(st) + C::vsBytes; }
    __device__ __forceinline__ void put_meta(uint32_t st, TileMeta m) const {
        sts_u32x2(meta_at(st), __float_as_uint(m.k_scale), m.word);
    }
    __device__ __forceinline__ TileMeta meta(uint32_t st) const {
        const uint2 m = lds_u32x2(meta_at(st));
        return {__uint_as_float(m.x), m.y};
    }
};

// A query block's place in the workspace and the plan: its G tile rows r0 .. r0 + G - 1 (those at or
// past nb, in a ragged last block, keep nothing).
template <int G>
struct BlockRef {
    int b, h, r0;
    size_t bh;
    uint32_t beg[G], n[G];  // row r0 + m's kept tiles: plan.cols[beg[m] .. beg[m] + n[m])
    __device__ __forceinline__ BlockRef(const RowQueue& q, uint32_t i, const Shape& s, const PlanView& plan) {
        const RowTile rt = q.at(i, b);
        h = rt.head;
        r0 = rt.row * G;
        bh = size_t(b) * s.heads + h;
        const uint32_t* rp = plan.row_ptr + size_t(h) * (s.nb + 1);
#pragma unroll
        for (int m = 0; m < G; ++m) {
            const bool in = r0 + m < s.nb;
            beg[m] = in ? rp[r0 + m] : 0;
            n[m] = in ? rp[r0 + m + 1] - beg[m] : 0;
        }
    }
};

// The producer thread of one group: blocks from the queue, handed over, then the union of their rows'
// tiles copied (the rows' column lists ascend, so a merge).
template <int D, PvFormat F>
__device__ __forceinline__ void produce(const GroupSmem<D, F>& sm, const RowQueue& queue, const Shape& s,
                                        const PlanView& plan, const Quantized& w) {
    using C = Sm90Config<D, F>;
    constexpr int G = C::kGroup;
    constexpr uint32_t kNone = 0xffffu;  // past a row's last column
    uint32_t pos = 0;  // ring position of the next tile
    for (uint32_t k = 0;; ++k) {
        const uint32_t i = queue.fetch();
        const bool done = i >= queue.total;
        sm.handoff.put(k, done ? RowHandoff<G>::kEnd : i);
        if (done) return;
        const BlockRef<G> blk(queue, i, s, plan);
        const int8_t* gk = w.k + blk.bh * s.npad * D;
        const int8_t* gv = w.vt + blk.bh * vt_head_bytes(s.nb, D);
        const float* gvs = w.v_scale + blk.bh * s.nb * D * 2;
        const float* gks = w.k_scale + blk.bh * s.nb;
        uint32_t cur[G], head[G];  // per row: its cursor and the column there
#pragma unroll
        for (int m = 0; m < G; ++m) {
            cur[m] = 0;
            head[m] = blk.n[m] > 0 ? plan.cols[blk.beg[m]] : kNone;
        }
        for (;; ++pos) {
            uint32_t c = head[0];
#pragma unroll
            for (int m = 1; m < G; ++m) c = min(c, head[m]);
            if (c == kNone) break;
            uint32_t members = 0;
            bool last = true;
#pragma unroll
            for (int m = 0; m < G; ++m) {
                if (head[m] == c) {  // the next column's load hides under the stage wait below
                    members |= 1u << m;
                    head[m] = ++cur[m] < blk.n[m] ? plan.cols[blk.beg[m] + cur[m]] : kNone;
                }
                last = last && cur[m] >= blk.n[m];
            }
            const float ks = gks[c];
            sm.ring.acquire(pos);
            const uint32_t st = sm.ring.stage(pos), bar = sm.ring.full_bar(pos);
            sm.put_meta(st, TileMeta{ks, TileMeta::pack(s.tokens - int(c) * kTile, members, last)});
            sm.ring.expect(pos, C::copyBytes);
            bulk_copy_g2s(sm.tile_at(st), gk + size_t(c) * C::kBytes, C::kBytes, bar);
            bulk_copy_g2s(sm.tile_at(st) + C::kBytes, gv + size_t(c) * C::vBytes, C::vBytes, bar);
            if constexpr (!C::PV16) bulk_copy_g2s(sm.scales_at(st), gvs + size_t(c) * D * 2, C::vsBytes, bar);
        }
    }
}

// One consumer warpgroup's walk over the kept key tiles of its current row, at ring positions that
// need not be consecutive (its partners' tiles come between).
template <int D, PvFormat F>
struct Sm90Row {
    using C = Sm90Config<D, F>;
    static constexpr bool PV16 = C::PV16, FP8 = F == PvFormat::fp8_e4m3;
    using PvAcc = std::conditional_t<FP8, float, int>;  // a tile's 8-bit PV product

    const GroupSmem<D, F> sm;
    uint32_t desc_base;  // descriptor low word of the group's stage 0
    int lane;
    uint32_t prev;       // ring position of the tile whose PV is pending (pa and beta are its)

    uint32_t qa[D / 32][4];
    float qscale;
    float o[D / 8][4];
    int s[8][4];                        // S of the current tile
    PvAcc pv[PV16 ? 1 : D / 64][8][4];  // 8-bit PV: P'V of the previous tile
    uint32_t pa[PV16 ? 4 : 2][4];       // P of the previous tile (A fragments)
    RowState rs;
    float beta0, beta1;                 // INT8: of the previous tile

    __device__ __forceinline__ Sm90Row(const GroupSmem<D, F>& sm_, int lane_)
        : sm(sm_), desc_base(desc_lo(sm_.tiles)), lane(lane_) {}

    __device__ __forceinline__ void start() {
        rs = RowState{};
        beta0 = beta1 = 0.f;
#pragma unroll
        for (int j = 0; j < D / 8; ++j) o[j][0] = o[j][1] = o[j][2] = o[j][3] = 0.f;
    }

    // S = Q K^T of the tile in stage st, issued (not waited for).
    __device__ __forceinline__ void issue_qk(uint32_t st) {
        const uint32_t k0 = desc_base + st * (C::tileBytes >> 4);
        wgmma_fence();
        wgmma_s8_n64<false>(s, qa[0], wgmma_desc<D>(k0));
#pragma unroll
        for (int kk = 1; kk < D / 32; ++kk) wgmma_s8_n64<true>(s, qa[kk], wgmma_desc<D>(k0 + kk * 2));
    }

    // PV of the tile in stage st with the P in pa, issued: 8-bit formats into pv, fp16 accumulating into o.
    __device__ __forceinline__ void issue_pv(uint32_t st) {
        wgmma_fence();
        constexpr int RB = C::vRowBytes;
        const uint32_t v0 = desc_base + st * (C::tileBytes >> 4) + (C::kBytes >> 4);
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

    // fp16: rescale O when this tile moved a row's max (b = 2^(m_prev - m); rare).
    __device__ __forceinline__ void rescale_o(float b0, float b1) {
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
    }

    // After PV(prev) completed. 8-bit: O = O * beta + PV * v_scale (the tile in stage st). fp16: O is
    // current; rescale it by b.
    __device__ __forceinline__ void fold_pv(uint32_t st, float b0, float b1) {
        if constexpr (PV16) {
            rescale_o(b0, b1);
        } else {
            (void)b0, (void)b1;
            const uint32_t ss = sm.scales_at(st) + (lane & 3) * 16;
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

    // The kept key tile at ring position p (landed; tm its TileMeta). PENDING: the PV of the tile at
    // prev is still to do (pa and beta are its); else none is (a row's first tile, or the first after
    // a finish()).
    //   issue QK(p), issue PV(prev) -> wait QK(p) -> softmax(p) -> wait PV(prev) -> pack P(p), O update
    // The MMAs are issued in the warpgroup's turn.
    template <bool PENDING>
    __device__ __forceinline__ void step(uint32_t p, TileMeta tm, const IssueTurns<C::kGroup>& turns) {
        const uint32_t sp = sm.ring.stage(p);
        turns.begin();
        issue_qk(sp);
        wgmma_commit();
        if (PENDING) {
            issue_pv(sm.ring.stage(prev));
            wgmma_commit();
        }
        turns.end();
        if (PENDING)
            wgmma_wait<1>();  // QK(p)
        else
            wgmma_wait<0>();
        fence_operand(s);
        const float sc = qscale * tm.k_scale;
        const int valid = tm.valid();
        float f[8][4];  // the values of P (p)
        float b0, b1;
        const int t = lane & 3;
        if constexpr (PV16) {
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
        if (PENDING) wgmma_wait<0>();  // PV(prev): pa is free
        // P (p) packed straight into pa, each fragment by a volatile instruction below the wait (no copy).
        if constexpr (PV16)
            pack_p16<true>(f, b0, b1, rs, pa);
        else
            pack_p8<FP8, true>(f, b0, b1, rs, pa);
        if (PENDING) {
            fold_pv(sm.ring.stage(prev), b0, b1);
            sm.ring.release(prev);
        } else if constexpr (PV16) {
            rescale_o(b0, b1);  // O holds the tiles before a finish(), in units of the old max (0 at a row's start)
        }
        beta0 = b0;
        beta1 = b1;
        prev = p;
    }

    // The pending PV (of the tile at prev), issued in the warpgroup's turn, and its O update; its stage released.
    __device__ __forceinline__ void finish(const IssueTurns<C::kGroup>& turns) {
        turns.begin();
        issue_pv(sm.ring.stage(prev));
        wgmma_commit();
        turns.end();
        wgmma_wait<0>();
        fold_pv(sm.ring.stage(prev), 1.f, 1.f);
        sm.ring.release(prev);
    }
};

// Consumer warpgroup c of a group: the blocks its producer hands over, one after the other; of each,
// tile row r0 + c.
template <int D, typename TOut, PvFormat F>
__device__ __forceinline__ void consume(const GroupSmem<D, F>& sm, int c, const IssueTurns<Sm90Config<D, F>::kGroup>& turns,
                                        const RowQueue& queue, const Shape& s, const PlanView& plan, const Quantized& w,
                                        float sm_scale_log2, const MutView& out, int tid) {
    constexpr int G = Sm90Config<D, F>::kGroup;
    const int warp = tid >> 5, lane = tid & 31, g = lane >> 2, t = lane & 3;
    Sm90Row<D, F> walk(sm, lane);
    uint32_t pos = 0;  // ring position of the next tile
    turns.open();
    for (uint32_t k = 0;; ++k) {
        const uint32_t i = sm.handoff.take(k);
        if (i == RowHandoff<G>::kEnd) return turns.close();
        const BlockRef<G> blk(queue, i, s, plan);
        const int r = blk.r0 + c;
        const int p0 = r * kTile + warp * 16 + g;  // the thread's first query row (permuted position)
        bool any = false, mine = false;  // whether the block, and this row, keep a tile at all (else no tile comes)
#pragma unroll
        for (int m = 0; m < G; ++m) {  // (indexing n by c, a run-time value, would put blk in local memory)
            any = any || blk.n[m] > 0;
            mine = mine || (m == c && blk.n[m] > 0);
        }
        walk.start();
        if (mine) {
            load_q_fragments<D>(w.q + (blk.bh * s.npad + size_t(r) * kTile + warp * 16) * D, g, t, walk.qa);
            walk.qscale = w.q_scale[(blk.bh * s.nb + r) * kQGroupsPerTile + warp] * sm_scale_log2;
        }
        // A turn per ring position and one at the end of a block with tiles, for every warpgroup of the group.
        bool pending = false;  // a PV in flight in walk
        const auto flush = [&] {
            if (pending)
                walk.finish(turns);
            else
                turns.begin(), turns.end();
            pending = false;
        };
        for (bool more = any; more; ++pos) {
            sm.ring.wait(pos);  // the tile at pos has landed
            const TileMeta tm = sm.meta(sm.ring.stage(pos));
            more = !tm.last();
            if (tm.kept_by(c)) {
                if (pending)
                    walk.template step<true>(pos, tm, turns);
                else
                    walk.template step<false>(pos, tm, turns);
                pending = true;
            } else {
                flush();  // hold no stage while passing a partner's tiles
                sm.ring.release(pos);
            }
        }
        if (any) flush();
        if (r < s.nb) store_rows<D, TOut>(s, plan, out, blk.b, blk.h, p0, t, walk.o, walk.rs.l0, walk.rs.l1);
    }
}
#endif  // PARO_SM90_DEVICE

template <int D, typename TOut, PvFormat F>
__global__ void __launch_bounds__(Sm90Config<D, F>::kThreads, 1)
    attention_sm90_kernel(Shape s, PlanView plan, Quantized w, RowQueue queue, float sm_scale_log2, MutView out) {
#ifdef PARO_SM90_DEVICE
    using C = Sm90Config<D, F>;
    extern __shared__ __align__(128) uint8_t smem[];
    const uint32_t base = (static_cast<uint32_t>(__cvta_generic_to_shared(smem)) + 1023) & ~1023u;
    const int wg = threadIdx.x / kAttnThreads, tid = threadIdx.x % kAttnThreads;
    if (threadIdx.x < C::kGroups) {
        const GroupSmem<D, F> sm(base, threadIdx.x);
        sm.ring.init();
        sm.handoff.init();
        mbar_init_fence();
    }
    __syncthreads();
    // Roles: one branch each (setmaxnreg applies per warpgroup).
    if (wg == 0) {
        setmaxnreg_dec<C::kProducerRegs>();
        if (tid % 32 == 0 && tid / 32 < C::kGroups) produce<D, F>(GroupSmem<D, F>(base, tid / 32), queue, s, plan, w);
    } else {
        setmaxnreg_inc<C::kConsumerRegs>();
        const int c = wg - 1, group = c / C::kGroup;
        const IssueTurns<C::kGroup> turns(1 + group * C::kGroup, c % C::kGroup);
        consume<D, TOut, F>(GroupSmem<D, F>(base, group), c % C::kGroup, turns, queue, s, plan, w, sm_scale_log2, out,
                            tid);
    }
#else
    (void)s, (void)plan, (void)w, (void)queue, (void)sm_scale_log2, (void)out;
    __trap();  // never launched: the host side runs this kernel only on sm_90a builds and devices
#endif
}

template <int D, typename TOut, PvFormat F>
cudaError_t attention_sm90_t(const Shape& s, const PlanView& plan, const Quantized& w, float sm_scale, MutView out,
                             int heads, cudaStream_t st) {
    using C = Sm90Config<D, F>;
    const auto kernel = attention_sm90_kernel<D, TOut, F>;
    cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, C::total);
    int dev = 0, sms = 0;
    if (e == cudaSuccess) e = cudaGetDevice(&dev);
    if (e == cudaSuccess) e = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev);
    if (e == cudaSuccess) e = cudaMemsetAsync(w.row_counter, 0, sizeof(uint32_t), st);
    if (e != cudaSuccess) return e;
    const uint32_t blocks = uint32_t(heads) * uint32_t((s.nb + C::kGroup - 1) / C::kGroup);
    const RowQueue queue{C::kGroup == 1 ? plan.schedule : plan.block_schedule, blocks, blocks * uint32_t(s.batch),
                         w.row_counter};
    const uint32_t ctas = std::min<uint32_t>(uint32_t(sms), (queue.total + C::kGroups - 1) / C::kGroups);
    kernel<<<ctas, C::kThreads, C::total, st>>>(s, plan, w, queue, sm_scale * 1.4426950408889634f, out);  // log2(e)
    return cudaGetLastError();
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
