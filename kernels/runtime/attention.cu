// Block-sparse INT8 attention over 64 x 64 tiles of the permuted sequence: the sm_80 kernel
// (mma.sync; also the fallback on Hopper), the fp16-PV kernel and the launch dispatch. The Hopper
// kernel (warpgroup MMA, overlapped) is attention_sm90.cu; both share the per-tile arithmetic of
// attention_tile.cuh.
//
// One CTA = one 64-row query tile of one (batch, head); 4 warps, each owning 16 query rows.
// For every kept key tile of the row (CSR list, built once at plan load):
//   S = Q_i8 K_i8^T          mma.sync m16n8k32 s8 (int32 accumulate)
//   online softmax in fp32   (exp2 domain; scale folded into the Q/K scales)
//   P_u8 = round(255 * 2^(s - rho)), rho = ceil(rowmax_tile(s)) (>= running max - 64; the exponent
//          carries a small guard against rounding past 255, attention_tile.cuh)  per row and tile
//   O = O * beta + (P_u8 V_i8) * v_scale[tile][channel]                 mma.sync m16n8k32 u8 x s8
// where O and the row sum l are kept in units of the current tile's P scale, beta = 2^(rho_prev - rho)
// rescales them when the reference moves; the output is O / l.
// K and V^T tiles stream through shared memory with cp.async (3 stages); Q fragments stay
// in registers. The epilogue divides by the row sum and scatters each row to its original token
// (inverse permutation fused).
// Heads whose plan says pv_bits = 16 run attention_pv16_kernel instead (fp16 P and V, mma.m16n8k16
// with fp32 accumulation; see its comment); measured slower than INT8 PV on H100, so opt-in per head.
#include <cstdlib>

#include "attention_sm90.hpp"
#include "attention_tile.cuh"

namespace paro::gpu {

namespace {

#ifndef PARO_D64_MIN_BLOCKS
#define PARO_D64_MIN_BLOCKS 4  // CTAs per SM the D = 64 kernel is register-capped for (4: 128 regs)
#endif
#ifndef PARO_D128_MIN_BLOCKS
#define PARO_D128_MIN_BLOCKS 3  // D = 128: 3 CTAs per SM (168 regs)
#endif
constexpr int kStages = 3;

__device__ __forceinline__ void ldmatrix_x4_at(uint32_t& r0, uint32_t& r1, uint32_t& r2, uint32_t& r3, uint32_t a) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3)
                 : "r"(a));
}
__device__ __forceinline__ void ldmatrix_x4(uint32_t& r0, uint32_t& r1, uint32_t& r2, uint32_t& r3, const void* p) {
    ldmatrix_x4_at(r0, r1, r2, r3, static_cast<uint32_t>(__cvta_generic_to_shared(p)));
}

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

template <int D>
struct AttnSmem {
    static constexpr int SK = D + 16;     // bytes per K row (16 B pad: conflict-free ldmatrix)
    static constexpr int SV = kTile + 16; // bytes per V^T row
    static constexpr int kBytes = kTile * SK;
    static constexpr int vBytes = D * SV;
    static constexpr int sBytes = D * 8;  // v scales of the tile (Quantized::v_scale)
    static constexpr int stage = kBytes + vBytes + sBytes;
    static constexpr int total = kStages * stage;
};

// One 64-key tile for a warp's 16 query rows: S = Q K^T (accumulators start at the magic bias),
// the softmax, then O = O * beta + (P'_u8 V_i8) * v_scale.
template <int D, bool RAGGED>
__device__ __forceinline__ void tile_step(const uint8_t* sk, const uint8_t* sv, const float* ss, float sc, int valid,
                                          int lane, const uint32_t (&qa)[D / 32][4], float (&o)[D / 8][4],
                                          RowState& rs) {
    using L = AttnSmem<D>;
    const int t = lane & 3;
    int acc[8][4];
    qk_tile<D, L::SK>(sk, lane, qa, acc);
    float beta0, beta1;
    uint32_t pa[2][4];
    softmax_tile<RAGGED, 0>(acc, sc, valid, t, rs, beta0, beta1, pa);
#pragma unroll
    for (int nb8 = 0; nb8 < D / 8; ++nb8) {
        uint32_t v0, v1, v2, v3;
        ldmatrix_x4(v0, v1, v2, v3, sv + (8 * nb8 + (lane & 7)) * L::SV + (lane >> 3) * 16);
        int pv[4] = {kMagic, kMagic, kMagic, kMagic};
        mma_i8<true>(pv, pa[0], v0, v1);
        mma_i8<true>(pv, pa[1], v2, v3);
        o_update<0>(o[nb8], pv, *reinterpret_cast<const float4*>(ss + 16 * nb8 + 4 * t), beta0, beta1);
    }
}

template <int D, typename TOut>
__global__ void __launch_bounds__(kAttnThreads, D == 64 ? PARO_D64_MIN_BLOCKS : PARO_D128_MIN_BLOCKS)
    attention_kernel(Shape s, PlanView plan, Quantized w, float sm_scale_log2, MutView out) {
    using L = AttnSmem<D>;
    extern __shared__ __align__(16) uint8_t smem[];
    const int r = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
    if (plan.pv16 && plan.pv16[h]) return;  // an fp16-PV head (attention_pv16_kernel does it)
    const size_t bh = size_t(b) * s.heads + h;
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, t = lane & 3;

    const uint32_t* rp = plan.row_ptr + size_t(h) * (s.nb + 1);
    const uint32_t beg = rp[r], n = rp[r + 1] - beg;
    const uint16_t* cols = plan.cols + beg;

    // Tile loads: every thread copies fixed 16-byte chunks, so its offsets are computed once here and
    // each tile costs a few cp.async with compile-time strides (no per-tile index math).
    constexpr int KCH = D / 16;                       // 16-byte chunks per K row
    constexpr int KIT = kTile * KCH / kAttnThreads;   // K chunks per thread (2 or 4)
    constexpr int KROWS = kAttnThreads / KCH;         // K rows covered per step
    constexpr int VIT = D * 4 / kAttnThreads;         // V^T chunks per thread (4 per 64-byte row)
    constexpr int VROWS = kAttnThreads / 4;
    const uint32_t smem_base = static_cast<uint32_t>(__cvta_generic_to_shared(smem));
    constexpr int KSTEP = KROWS * L::SK, VSTEP = VROWS * L::SV;
    const uint32_t k_so = (tid / KCH) * L::SK + (tid % KCH) * 16;
    const uint32_t v_so = L::kBytes + (tid >> 2) * L::SV + (tid & 3) * 16;
    const uint32_t k_go = (tid / KCH) * D + (tid % KCH) * 16, v_go = (tid >> 2) * kTile + (tid & 3) * 16;
    const int8_t* k_head = w.k + bh * s.npad * D + k_go;
    const int8_t* v_head = w.vt + bh * vt_head_bytes(s.nb, D) + v_go;
    const float* vs_head = w.v_scale + bh * s.nb * D * 2 + tid * 4;
    auto load_tile = [&](int c, int stage) {
        const uint32_t s0 = smem_base + stage * L::stage;
        const int8_t* gk = k_head + c * (kTile * D);
        const int8_t* gv = v_head + c * (kTile * D);
#pragma unroll
        for (int it = 0; it < KIT; ++it) cp_async16(s0 + k_so + it * KSTEP, gk + it * KROWS * D);
#pragma unroll
        for (int it = 0; it < VIT; ++it) cp_async16(s0 + v_so + it * VSTEP, gv + it * VROWS * kTile);
        if (tid < D / 2) cp_async16(s0 + L::kBytes + L::vBytes + tid * 16, vs_head + c * D * 2);
    };

    // Three-stage cp.async ring: tiles i + 1 and i + 2 are in flight while tile i is computed, and
    // one barrier per tile suffices (the stage refilled at iteration i was last read at i - 1).
    // Column indices run two tiles ahead of the loads and K scales one ahead of their use, so no
    // global load sits on the critical path.
    auto col = [&](uint32_t i) { return i < n ? int(cols[i]) : 0; };
    int c0 = col(0), c1 = col(1), c2 = col(2), c3 = col(3);  // tiles i, i+1, i+2, i+3
    float ks0 = 0.f, ks1 = 0.f;
    if (n > 0) {
        load_tile(c0, 0);
        ks0 = __ldg(w.k_scale + bh * s.nb + c0);
    }
    cp_async_commit();
    if (n > 1) {
        load_tile(c1, 1);
        ks1 = __ldg(w.k_scale + bh * s.nb + c1);
    }
    cp_async_commit();

    uint32_t qa[D / 32][4];
    load_q_fragments<D>(w.q + (bh * s.npad + size_t(r) * kTile + warp * 16) * D, g, t, qa);
    const float qscale = w.q_scale[(bh * s.nb + r) * kQGroupsPerTile + warp] * sm_scale_log2;

    float o[D / 8][4];
#pragma unroll
    for (int j = 0; j < D / 8; ++j) o[j][0] = o[j][1] = o[j][2] = o[j][3] = 0.f;
    RowState rs;

    for (uint32_t i = 0; i < n; ++i) {
        cp_async_wait<1>();  // tile i has landed (tile i + 1 may still be in flight)
        __syncthreads();     // ...for every thread; and every thread is done with tile i - 1
        float ks2 = 0.f;
        if (i + 2 < n) {
            load_tile(c2, (i + 2) % kStages);
            ks2 = __ldg(w.k_scale + bh * s.nb + c2);
        }
        cp_async_commit();
        const int c4 = col(i + 4);
        const uint8_t* sk = smem + (i % kStages) * L::stage;
        const uint8_t* sv = sk + L::kBytes;
        const float* ss = reinterpret_cast<const float*>(sv + L::vBytes);
        const float sc = qscale * ks0;
        const int valid = s.tokens - c0 * kTile;  // keys of this tile inside the sequence
        // Two copies of the tile step: the ragged one (last key tile only) masks keys past the end.
        // A uniform branch instead of predicated selects on every element of every tile.
        if (valid < kTile)
            tile_step<D, true>(sk, sv, ss, sc, valid, lane, qa, o, rs);
        else
            tile_step<D, false>(sk, sv, ss, sc, valid, lane, qa, o, rs);
        c0 = c1;
        c1 = c2;
        c2 = c3;
        c3 = c4;
        ks0 = ks1;
        ks1 = ks2;
    }
    cp_async_wait<0>();
    // l already holds the full row sum in every thread of the row (the ones-mma sums all 64 keys).
    store_rows<D, TOut>(s, plan, out, b, h, r * kTile + warp * 16 + g, t, o, rs.l0, rs.l1);
}

// ---- fp16-PV path: heads whose plan says pv_bits = 16 (paro_plan_set_pv_bits, the pattern file).
// S = Q_i8 K_i8^T exactly as above; then softmax_tile16 (attention_tile.cuh): p = 2^(s - m) in fp16
// A fragments with m a lazily updated row max. V is fp16 as the prep kernel wrote it ([D][64] per
// tile, transposed, permuted, unquantized) and is read with ldmatrix from an unpadded, XOR-swizzled
// shared tile (16-byte chunk c of channel row r at c ^ (r & 7)); O = O * beta + P V with fp32
// accumulation (mma.m16n8k16.f32.f16.f16.f32, accumulating straight into O).
#ifndef PARO_D64_MIN_BLOCKS16
#define PARO_D64_MIN_BLOCKS16 4
#endif
#ifndef PARO_D128_MIN_BLOCKS16
#define PARO_D128_MIN_BLOCKS16 3
#endif
template <int D>
struct AttnSmem16 {
    static constexpr int SK = D + 16;  // bytes per K row (16 B pad, as AttnSmem)
    static constexpr int RV = kTile * 2;  // bytes per fp16 V^T row (one channel, 64 keys): no pad
    static constexpr int kBytes = kTile * SK;
    static constexpr int vBytes = D * RV;
    static constexpr int stage = kBytes + vBytes;
    static constexpr int total = kStages * stage;  // D 64: 39936 B; D 128: 76800 B (3 CTAs per SM still fit)
};

template <int D, bool RAGGED>
__device__ __forceinline__ void tile_step16(const uint8_t* sk, uint32_t sv, uint32_t v_xor, float sc, int valid,
                                            int lane, const uint32_t (&qa)[D / 32][4], float (&o)[D / 8][4],
                                            RowState& rs) {
    using L = AttnSmem16<D>;
    const int t = lane & 3;
    int acc[8][4];
    qk_tile<D, L::SK>(sk, lane, qa, acc);
    float beta0, beta1;
    uint32_t pa[4][4];
    softmax_tile16<RAGGED, 0>(acc, sc, valid, t, rs, beta0, beta1, pa);
#pragma unroll
    for (int nb8 = 0; nb8 < D / 8; ++nb8) {
        o[nb8][0] *= beta0;
        o[nb8][1] *= beta0;
        o[nb8][2] *= beta1;
        o[nb8][3] *= beta1;
        // Lane l addresses channel row 8 nb8 + (l & 7), key chunk l >> 3 (+ 4): ldmatrix hands each
        // thread keys (2t, 2t + 1) of channel g, the B fragment of m16n8k16.
        const uint32_t row = sv + uint32_t(nb8) * 8u * L::RV;
        uint32_t v0, v1, v2, v3;
        ldmatrix_x4_at(v0, v1, v2, v3, row + ((uint32_t(lane >> 3) * 16u) ^ v_xor));
        mma_f16(o[nb8], pa[0], v0, v1);
        mma_f16(o[nb8], pa[1], v2, v3);
        ldmatrix_x4_at(v0, v1, v2, v3, row + ((uint32_t(4 + (lane >> 3)) * 16u) ^ v_xor));
        mma_f16(o[nb8], pa[2], v0, v1);
        mma_f16(o[nb8], pa[3], v2, v3);
    }
}

// LOW = true: one CTA per SM fewer (D 64: 3 CTAs at 168 registers instead of 4 at 128; D 128: 2 at
// 255 instead of 3 at 168), no register spills; picked at run time with PARO_PV16_LOW_OCCUPANCY=1 (for
// measurement only).
template <int D, typename TOut, bool LOW>
__global__ void __launch_bounds__(kAttnThreads, D == 64 ? PARO_D64_MIN_BLOCKS16 - (LOW ? 1 : 0)
                                                        : PARO_D128_MIN_BLOCKS16 - (LOW ? 1 : 0))
    attention_pv16_kernel(Shape s, PlanView plan, Quantized w, float sm_scale_log2, MutView out) {
    using L = AttnSmem16<D>;
    extern __shared__ __align__(16) uint8_t smem[];
    const int r = blockIdx.x, b = blockIdx.z;
    const int h = plan.head_map ? plan.head_map[blockIdx.y] : int(blockIdx.y);
    const size_t bh = size_t(b) * s.heads + h;
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, t = lane & 3;

    const uint32_t* rp = plan.row_ptr + size_t(h) * (s.nb + 1);
    const uint32_t beg = rp[r], n = rp[r + 1] - beg;
    const uint16_t* cols = plan.cols + beg;

    constexpr int KCH = D / 16;                       // 16-byte chunks per int8 K row
    constexpr int KIT = kTile * KCH / kAttnThreads;
    constexpr int KROWS = kAttnThreads / KCH;
    constexpr int VIT = D * 8 / kAttnThreads;         // 16-byte chunks per thread: 8 per V^T row
    constexpr int VROWS = kAttnThreads / 8;           // 16 rows per step: a thread's swizzle is fixed
    constexpr int KSTEP = KROWS * L::SK, VSTEP = VROWS * L::RV;
    const uint32_t smem_base = static_cast<uint32_t>(__cvta_generic_to_shared(smem));
    const uint32_t k_so = (tid / KCH) * L::SK + (tid % KCH) * 16;
    const int vrow = tid / 8, vch = tid % 8;
    const uint32_t v_so = L::kBytes + vrow * L::RV + ((vch ^ (vrow & 7)) * 16);
    const uint32_t k_go = (tid / KCH) * D + (tid % KCH) * 16;
    const int8_t* k_head = w.k + bh * s.npad * D + k_go;
    const uint8_t* v_head = reinterpret_cast<const uint8_t*>(w.vt + bh * vt_head_bytes(s.nb, D)) + tid * 16;
    auto load_tile = [&](int c, int stage) {
        const uint32_t s0 = smem_base + stage * L::stage;
        const int8_t* gk = k_head + c * (kTile * D);
        const uint8_t* gv = v_head + size_t(c) * (kTile * D * 2);
#pragma unroll
        for (int it = 0; it < KIT; ++it) cp_async16(s0 + k_so + it * KSTEP, gk + it * KROWS * D);
#pragma unroll
        for (int it = 0; it < VIT; ++it) cp_async16(s0 + v_so + it * VSTEP, gv + it * kAttnThreads * 16);
    };

    auto col = [&](uint32_t i) { return i < n ? int(cols[i]) : 0; };
    int c0 = col(0), c1 = col(1), c2 = col(2), c3 = col(3);
    float ks0 = 0.f, ks1 = 0.f;
    if (n > 0) {
        load_tile(c0, 0);
        ks0 = __ldg(w.k_scale + bh * s.nb + c0);
    }
    cp_async_commit();
    if (n > 1) {
        load_tile(c1, 1);
        ks1 = __ldg(w.k_scale + bh * s.nb + c1);
    }
    cp_async_commit();

    uint32_t qa[D / 32][4];
    load_q_fragments<D>(w.q + (bh * s.npad + size_t(r) * kTile + warp * 16) * D, g, t, qa);
    const float qscale = w.q_scale[(bh * s.nb + r) * kQGroupsPerTile + warp] * sm_scale_log2;

    float o[D / 8][4];
#pragma unroll
    for (int j = 0; j < D / 8; ++j) o[j][0] = o[j][1] = o[j][2] = o[j][3] = 0.f;
    RowState rs;
    const uint32_t v_lane = L::kBytes + (lane & 7) * L::RV, v_xor = uint32_t(lane & 7) * 16u;

    for (uint32_t i = 0; i < n; ++i) {
        cp_async_wait<1>();
        __syncthreads();
        float ks2 = 0.f;
        if (i + 2 < n) {
            load_tile(c2, (i + 2) % kStages);
            ks2 = __ldg(w.k_scale + bh * s.nb + c2);
        }
        cp_async_commit();
        const int c4 = col(i + 4);
        const uint32_t so = (i % kStages) * L::stage;
        const uint8_t* sk = smem + so;
        const uint32_t sv = smem_base + so + v_lane;
        const float sc = qscale * ks0;
        const int valid = s.tokens - c0 * kTile;
        if (valid < kTile)
            tile_step16<D, true>(sk, sv, v_xor, sc, valid, lane, qa, o, rs);
        else
            tile_step16<D, false>(sk, sv, v_xor, sc, valid, lane, qa, o, rs);
        c0 = c1;
        c1 = c2;
        c2 = c3;
        c3 = c4;
        ks0 = ks1;
        ks1 = ks2;
    }
    cp_async_wait<0>();
    store_rows<D, TOut>(s, plan, out, b, h, r * kTile + warp * 16 + g, t, o, rs.l0, rs.l1);
}

template <int D, typename TOut, bool PV16>
cudaError_t attention_t(const Shape& s, const PlanView& plan, const Quantized& w, float sm_scale, MutView out,
                        int heads, cudaStream_t st) {
    constexpr int bytes = PV16 ? AttnSmem16<D>::total : AttnSmem<D>::total;
    static const bool low = [] {
        const char* e = std::getenv("PARO_PV16_LOW_OCCUPANCY");
        return e && e[0] == '1';
    }();
    auto kernel = !PV16 ? attention_kernel<D, TOut>
                  : low ? attention_pv16_kernel<D, TOut, true> : attention_pv16_kernel<D, TOut, false>;
    return launch_row_tiles(kernel, bytes, s, heads, plan, w, sm_scale, out, st);
}

template <typename TOut, bool PV16>
cudaError_t attention_d(const Shape& s, const PlanView& plan, const Quantized& w, float sm_scale, MutView out,
                        int heads, cudaStream_t st) {
    return s.head_dim == 64 ? attention_t<64, TOut, PV16>(s, plan, w, sm_scale, out, heads, st)
                            : attention_t<128, TOut, PV16>(s, plan, w, sm_scale, out, heads, st);
}

template <typename TOut>
cudaError_t attention_heads(DType out_dt, const Shape& s, const PlanView& plan, const Quantized& w, float sm_scale,
                            MutView out, cudaStream_t st) {
    // One launch per PV precision. The INT8-PV kernel runs over every head (its CTAs of fp16-PV heads
    // return at once), the fp16-PV kernel only over the fp16-PV heads (plan.head_map lists the INT8
    // ones first, then those). On Hopper both are the wgmma kernels (attention_sm90.cu).
    const bool hopper = attention_kernel_for_current_device() == AttentionKernel::wgmma;
    const int n16 = plan.head_map ? plan.n_pv16 : 0, n8 = s.heads - n16;
    if (n8 > 0) {
        const cudaError_t e = hopper ? launch_attention_sm90(out_dt, false, s, plan, w, sm_scale, out, s.heads, st)
                                     : attention_d<TOut, false>(s, plan, w, sm_scale, out, s.heads, st);
        if (e != cudaSuccess) return e;
    }
    if (n16 > 0) {
        PlanView p16 = plan;
        p16.head_map += n8;
        return hopper ? launch_attention_sm90(out_dt, true, s, p16, w, sm_scale, out, n16, st)
                      : attention_d<TOut, true>(s, p16, w, sm_scale, out, n16, st);
    }
    return cudaSuccess;
}

}  // namespace

cudaError_t launch_attention(DType out_dt, const Shape& s, const PlanView& plan, const Quantized& w, float sm_scale,
                             MutView out, cudaStream_t st) {
    switch (out_dt) {
        case DType::f32: return attention_heads<float>(out_dt, s, plan, w, sm_scale, out, st);
        case DType::f16: return attention_heads<__half>(out_dt, s, plan, w, sm_scale, out, st);
        case DType::bf16: return attention_heads<__nv_bfloat16>(out_dt, s, plan, w, sm_scale, out, st);
    }
    return cudaErrorInvalidValue;
}

}  // namespace paro::gpu
