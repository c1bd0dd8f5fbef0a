// Do the exponentials (MUFU.EX2 on the XU pipe) run while the tensor cores run other warpgroups' wgmma?
//
// The fp16-PV attention kernel's ncu profile (bench/RESULTS.md) has tensor use + XU use at ~100% of
// its time at D 64 and D 128, dense and sparse, as if the two never overlapped. This probe takes the
// attention kernel out of the question: one CTA per SM of four warpgroups, each given a role, that
// loop on one pipe only:
//   T: wgmma (8 per group, one group in flight while the next is issued): s8 with A from registers
//      (RS, as the attention kernel's QK^T) or from shared memory (SS, FlashAttention-3's QK^T), or
//      f16 SS;
//   X: 32 independent chains of FFMA + EX2 per thread (the softmax's exponentials); U: the same with
//      arguments that underflow;
//   - : nothing.
// Each role's time is reported alone and beside the others: overlap means T and X together take
// max(T, X), none means T + X.
// A second table runs the D 64 fp16-PV consumer step itself (QK^T, PV with the ones rows, the
// softmax of softmax.cuh between the waits, as attention_sm90.cu orders them) on fixed tiles, with no
// producer, barrier or global memory, in several orders (Step) and with 1 to 4 consumer warpgroups
// per SM: cycles per tile. A third puts the step's wgmma and its softmax in warpgroups of their own,
// and a fourth splits the step by roles with P through shared memory (split_kernel).
// Usage: paro_pipe_overlap [iters_t] [iters_x]   (prints the tables; sm_90a only)
#include <cuda_runtime.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "ptx_sm90.cuh"
#include "softmax.cuh"

namespace {

using namespace paro::gpu;

// (f16 with A from registers is left out: ptxas serializes this loop's wgmma there, C7512.)
enum class Mma { s8_rs, s8_ss, f16_ss };
const char* mma_name(Mma m) {
    switch (m) {
        case Mma::s8_rs: return "s8 m64n64k32, A regs";
        case Mma::s8_ss: return "s8 m64n64k32, A smem";
        case Mma::f16_ss: return "f16 m64n64k16, A smem";
    }
    return "";
}

constexpr int kWarpgroups = 4, kThreads = 128 * kWarpgroups;
constexpr int kOperandBytes = 16 * 1024;                 // A (64 x 128 B) and B (64 x 128 B), 128B-swizzled
constexpr int kSmemBytes = 2 * kOperandBytes + 1024 + 96 * 1024;  // the padding keeps one CTA per SM

// The D 64 fp16-PV consumer step (attention_sm90.cu, Sm90Row::step) on the K tile at k_lo and the V^T
// tile (with its ones rows) at v_lo, `iters` times, in one of these forms:
enum class Step {
    kernel,        // as the kernel: issue QK(i), PV(i - 1); wait QK(i); softmax(i); wait PV(i - 1); pack P(i)
    phases,        // the same, timing each phase (g_phases)
    qk_ahead,      // issue QK(i + 1), PV(i - 1); softmax(i); wait both; pack P(i) (two S, alternating)
    pv_late,       // issue QK(i); wait QK(i); issue PV(i - 1); softmax(i); wait PV(i - 1); pack P(i)
    ahead,         // the kernel's order, each tile's exponentials against the running max (softmax_tile_fp16_exp_ahead)
    ping_pong,     // the kernel's order, the warpgroups issuing their wgmma in turn (FlashAttention-3)
    qk_ss,         // the kernel's order with QK^T's A operand (Q) from shared memory, not registers
    no_exp,        // the kernel's order with each exponential replaced by an FMUL (no XU pipe)
    mma_only,      // the kernel's wgmma (QK, PV) and waits, no softmax
    softmax_only,  // the kernel's softmax and packing of P on an S never recomputed, no wgmma
};

// Step::phases: cycles per phase (issue, QK^T wait, softmax, PV wait, packing), summed over a warpgroup's
// tiles, per (CTA, warpgroup), for the first kMaxCtas CTAs.
constexpr int kPhases = 5, kMaxCtas = 256;
__device__ long long g_phases[kMaxCtas * 4 * kPhases];

#ifdef PARO_SM90_DEVICE
#define PROBE_OPS_SS                                                                                 \
    "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "                        \
    "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, %32, %33"
#define PROBE_ACC1(C, j) C(d[j][0]), C(d[j][1]), C(d[j][2]), C(d[j][3])
#define PROBE_ACC8(C)                                                                                \
    PROBE_ACC1(C, 0), PROBE_ACC1(C, 1), PROBE_ACC1(C, 2), PROBE_ACC1(C, 3), PROBE_ACC1(C, 4),       \
        PROBE_ACC1(C, 5), PROBE_ACC1(C, 6), PROBE_ACC1(C, 7)
#define PROBE_R(x) "+r"(x)
#define PROBE_F(x) "+f"(x)
#define PROBE_W(x) "=r"(x)
// ACC = false: d = a * b (d's old values are not read).
template <bool ACC = true>
__device__ __forceinline__ void wgmma_s8_ss(int (&d)[8][4], uint64_t da, uint64_t db) {
    if constexpr (ACC)
        asm volatile("wgmma.mma_async.sync.aligned.m64n64k32.s32.s8.s8 " PROBE_OPS_SS ", 1;\n"
                     : PROBE_ACC8(PROBE_R)
                     : "l"(da), "l"(db));
    else
        asm volatile("wgmma.mma_async.sync.aligned.m64n64k32.s32.s8.s8 " PROBE_OPS_SS ", 0;\n"
                     : PROBE_ACC8(PROBE_W)
                     : "l"(da), "l"(db));
}
__device__ __forceinline__ void wgmma_f16_ss(float (&d)[8][4], uint64_t da, uint64_t db) {
    asm volatile("wgmma.mma_async.sync.aligned.m64n64k16.f32.f16.f16 " PROBE_OPS_SS ", 1, 1, 1, 0, 0;\n"
                 : PROBE_ACC8(PROBE_F)
                 : "l"(da), "l"(db));
}
// d += P[64 x 16] (f16, A from shared memory) * B[16 x 72] (f16): the PV with the ones rows, SS.
__device__ __forceinline__ void wgmma_f16_n72_ss(float (&d)[9][4], uint64_t da, uint64_t db) {
    asm volatile("wgmma.mma_async.sync.aligned.m64n72k16.f32.f16.f16 "
                 "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, "
                 "%20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35}, %36, %37, "
                 "1, 1, 1, 0, 0;\n"
                 : PROBE_ACC8(PROBE_F), PROBE_ACC1(PROBE_F, 8)
                 : "l"(da), "l"(db));
}
#undef PROBE_OPS_SS
#undef PROBE_ACC1
#undef PROBE_ACC8
#undef PROBE_R
#undef PROBE_W
#undef PROBE_F

template <Mma M>
__device__ void tensor_loop(uint32_t a_lo, uint32_t b_lo, int iters, float* sink) {
    constexpr bool S8 = M == Mma::s8_rs || M == Mma::s8_ss;
    using Acc = std::conditional_t<S8, int, float>;
    Acc d[8][4];
#pragma unroll
    for (int j = 0; j < 8; ++j) d[j][0] = d[j][1] = d[j][2] = d[j][3] = 0;
    const uint32_t lane = threadIdx.x & 127;
    uint32_t a[4] = {0x3c013c00u ^ lane, 0x3c003c02u ^ (lane << 3), 0x3c043c00u, 0x3c003c08u ^ lane};
    if (S8) a[2] ^= 0x01020304u * (lane + 1);
    for (int it = 0; it < iters; ++it) {
        wgmma_fence();
#pragma unroll
        for (int k = 0; k < 8; ++k) {
            const uint64_t db = wgmma_desc<128>(b_lo + (k % 4) * 2), da = wgmma_desc<128>(a_lo + (k % 4) * 2);
            if constexpr (M == Mma::s8_rs) wgmma_s8_n64<true>(d, a, db);
            if constexpr (M == Mma::s8_ss) wgmma_s8_ss(d, da, db);
            if constexpr (M == Mma::f16_ss) wgmma_f16_ss(d, da, db);
        }
        wgmma_commit();
        wgmma_wait<1>();
    }
    wgmma_wait<0>();
    fence_operand(d);
    float s = 0.f;
#pragma unroll
    for (int j = 0; j < 8; ++j) s += float(d[j][0]) + float(d[j][3]);
    if (s == 1.2345f) *sink = s;  // keeps the loop alive
}

// UNDERFLOW: arguments far below -126, whose exponentials flush to zero (as a tile's keys far below
// its row maximum do).
template <bool UNDERFLOW>
__device__ void xu_loop(int iters, float* sink) {
    float v[32];
#pragma unroll
    for (int j = 0; j < 32; ++j) v[j] = 0.01f * float((threadIdx.x + 7 * j) & 63);
    for (int it = 0; it < iters; ++it)
#pragma unroll
        for (int j = 0; j < 32; ++j) v[j] = ex2(fmaf(v[j], -0.5f, UNDERFLOW ? -200.f : 0.25f));
    float s = 0.f;
#pragma unroll
    for (int j = 0; j < 32; ++j) s += v[j];
    if (s == 1.2345f) *sink = s;
}

// Four int8 in [-16, 16) from a hash of i.
__device__ __forceinline__ uint32_t small_bytes(uint32_t i) {
    uint32_t h = i * 0x9e3779b9u;
    h ^= h >> 15;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    return __vsub4(h & 0x1f1f1f1fu, 0x10101010u);
}

// The probe's Q fragments (D 64, int8) and score step: Q and K bytes in [-16, 16) and this step spread
// the scores over a few log2 units as in real attention (exponentials that underflow might not cost
// what real ones do).
__device__ __forceinline__ void probe_q_fragments(uint32_t lane, uint32_t (&qa)[2][4]) {
#pragma unroll
    for (int i = 0; i < 8; ++i) qa[i / 4][i % 4] = small_bytes(lane * 8 + i + 12345u);
}
constexpr ScoreStep kProbeScoreStep{4e-3f, 4e-3f};

// Named barriers between two warpgroups: 128 threads wait on one (bar.sync) while 128 arrive (bar.arrive).
__device__ __forceinline__ void named_sync(int id) { asm volatile("bar.sync %0, 256;\n" ::"r"(id) : "memory"); }
__device__ __forceinline__ void named_arrive(int id) { asm volatile("bar.arrive %0, 256;\n" ::"r"(id) : "memory"); }

template <Step M, int NWG>
__device__ void consumer_loop(uint32_t k_lo, uint32_t v_lo, int iters, float* sink) {
    constexpr bool kAhead = M == Step::qk_ahead;
    int s[kAhead ? 2 : 1][8][4];
    float o[9][4];
#pragma unroll
    for (int j = 0; j < 9; ++j) o[j][0] = o[j][1] = o[j][2] = o[j][3] = 0.f;
    uint32_t pa[4][4] = {};
    const uint32_t lane = threadIdx.x & 127;
    uint32_t qa[2][4];
    probe_q_fragments(lane, qa);
    RowState rs;
    const ScoreStep sc = kProbeScoreStep;
    const int t = threadIdx.x & 3;
    long long phase[kPhases] = {}, clock = 0;
    const auto mark = [&](int k) {
        if constexpr (M == Step::phases) {
            const long long now = clock64();
            phase[k] += now - clock;
            clock = now;
        }
    };
    const auto issue_qk = [&](auto b) {
        wgmma_fence();
        if constexpr (M == Step::qk_ss) {  // the K tile stands in for a Q tile of the same layout
            wgmma_s8_ss<false>(s[b], wgmma_desc<64>(k_lo), wgmma_desc<64>(k_lo));
            wgmma_s8_ss<true>(s[b], wgmma_desc<64>(k_lo + 2), wgmma_desc<64>(k_lo + 2));
        } else {
            wgmma_s8_n64<false>(s[b], qa[0], wgmma_desc<64>(k_lo));
            wgmma_s8_n64<true>(s[b], qa[1], wgmma_desc<64>(k_lo + 2));
        }
        wgmma_commit();
    };
    const auto issue_pv = [&] {
        wgmma_fence();
#pragma unroll
        for (int kc = 0; kc < 4; ++kc) wgmma_f16_pv_sums<64>(o, pa[kc], wgmma_desc<128>(v_lo + kc * 2));
        wgmma_commit();
    };
    // softmax(S in s[b]), the wait for what is in flight, P packed, O rescaled.
    const auto softmax = [&](auto b, auto wait_before) {
        mark(0);  // issue
        if constexpr (decltype(wait_before)::value) {
            wgmma_wait<1>();
            fence_operand(s[b]);
        }
        mark(1);  // QK^T wait
        float f[8][4], b0, b1;
        if constexpr (M == Step::no_exp) {
#pragma unroll
            for (int j = 0; j < 8; ++j)
#pragma unroll
                for (int e = 0; e < 4; ++e) f[j][e] = __int_as_float(s[b][j][e] + kMagic) * sc.row0;
            b0 = b1 = 1.f;
        } else if constexpr (M == Step::ahead) {
            softmax_tile_fp16_exp_ahead<false, kMagic>(s[b], sc, kTile, t, rs, b0, b1, f);
        } else {
            softmax_tile_fp16_exp<false, kMagic>(s[b], sc, kTile, t, rs, b0, b1, f);
        }
        if constexpr (M == Step::phases) fence_operand(f);
        mark(2);  // softmax
        wgmma_wait<0>();
        mark(3);  // PV wait
        if constexpr (kAhead) fence_operand(s[b ^ 1]);
        pack_p16<true, false>(f, b0, b1, rs, pa);
        fence_operand(o);
        if (__any_sync(0xffffffffu, b0 != 1.f || b1 != 1.f)) scale_rows(o, b0, b1);
        if constexpr (M == Step::phases)
#pragma unroll
            for (int i = 0; i < 16; ++i) asm volatile("" : "+r"(pa[i / 4][i % 4])::"memory");
        mark(4);  // packing
    };
    using I0 = std::integral_constant<int, 0>;
    using I1 = std::integral_constant<int, 1>;
    if constexpr (M == Step::mma_only) {
        // P of fp16 values around 1 (zeros might be cheaper for the tensor cores than a real P).
#pragma unroll
        for (int i = 0; i < 16; ++i) pa[i / 4][i % 4] = 0x3c003800u ^ (small_bytes(lane * 16 + i) & 0x00ff00ffu);
        for (int it = 0; it < iters; ++it) {
            issue_qk(I0{});
            issue_pv();
            wgmma_wait<1>();
            fence_operand(s[0]);
            wgmma_wait<0>();
            fence_operand(o);
        }
    } else if constexpr (M == Step::softmax_only) {
#pragma unroll
        for (int j = 0; j < 8; ++j)
#pragma unroll
            for (int e = 0; e < 4; ++e) s[0][j][e] = int(small_bytes(lane * 32 + j * 4 + e) & 0xfff) - 2048;
        for (int it = 0; it < iters; ++it) {
            fence_operand(s[0]);  // S is opaque to the compiler each time: nothing is hoisted
            softmax(I0{}, std::false_type{});
        }
    } else if constexpr (kAhead) {
        issue_qk(I0{});
        wgmma_wait<0>();
        fence_operand(s[0]);
        for (int it = 0; it < iters; it += 2) {
            issue_qk(I1{});
            issue_pv();
            softmax(I0{}, std::false_type{});
            issue_qk(I0{});
            issue_pv();
            softmax(I1{}, std::false_type{});
        }
    } else if constexpr (M == Step::ping_pong) {
        // Named barrier 1 + w: warpgroup w's turn, given by the one before it.
        const int w = threadIdx.x / 128;
        const auto turn_wait = [&] {
            if constexpr (NWG > 1) named_sync(1 + w);
        };
        const auto turn_pass = [&] {
            if constexpr (NWG > 1) named_arrive(1 + (w + 1) % NWG);
        };
        if (NWG > 1 && w == NWG - 1) named_arrive(1);  // warpgroup 0 goes first
        for (int it = 0; it < iters; ++it) {
            turn_wait();
            issue_qk(I0{});
            issue_pv();
            turn_pass();
            softmax(I0{}, std::true_type{});
        }
    } else if constexpr (M == Step::pv_late) {
        for (int it = 0; it < iters; ++it) {
            issue_qk(I0{});
            wgmma_wait<0>();
            fence_operand(s[0]);
            issue_pv();
            softmax(I0{}, std::false_type{});
        }
    } else {
        if constexpr (M == Step::ahead) {  // the row's first tile sets m (the kernel's order)
            issue_qk(I0{});
            wgmma_wait<0>();
            fence_operand(s[0]);
            float f[8][4], b0, b1;
            softmax_tile_fp16_exp<false, kMagic>(s[0], sc, kTile, t, rs, b0, b1, f);
            pack_p16<true, false>(f, b0, b1, rs, pa);
        }
        if constexpr (M == Step::phases) clock = clock64();
        for (int it = 0; it < iters; ++it) {
            issue_qk(I0{});
            issue_pv();
            softmax(I0{}, std::true_type{});
        }
        if (M == Step::phases && lane == 0 && blockIdx.x < kMaxCtas)
            for (int k = 0; k < kPhases; ++k) g_phases[(blockIdx.x * 4 + threadIdx.x / 128) * kPhases + k] = phase[k];
    }
    issue_pv();
    wgmma_wait<0>();
    fence_operand(o);
    float sum = 0.f;
#pragma unroll
    for (int j = 0; j < 9; ++j) sum += o[j][0] + o[j][3];
    if (sum == 1.2345f) *sink = sum;
}

// NWG consumer warpgroups per CTA, each running consumer_loop; cycles[cta * NWG + wg].
// The step split by roles, with P through shared memory: C warpgroups each compute QK^T and the softmax
// of their own row and store P (fp16, K-major, 128B-swizzled, two slots each); one PV warpgroup holds
// the C rows' O and runs every PV with P from shared memory (SS), taking the slots in turn. Named
// barriers hand the slots over: ready(c, slot) and free(c, slot), 128 threads waiting and 128
// arriving. (The probe's rows never move their maximum after the first tile, so the PV warpgroup
// skips the O rescale a kernel would take from the consumer with P.)
__device__ __forceinline__ int split_ready(int c, int slot) { return 1 + 4 * c + slot; }
__device__ __forceinline__ int split_free(int c, int slot) { return 3 + 4 * c + slot; }
constexpr int kPSlotBytes = kTile * kTile * 2;

__device__ void split_softmax_loop(uint32_t k_lo, uint32_t p_base, int c, int iters) {
    int s[8][4];
    const uint32_t lane = threadIdx.x & 127;
    uint32_t qa[2][4];
    probe_q_fragments(lane, qa);
    RowState rs;
    const ScoreStep sc = kProbeScoreStep;
    const int t = lane & 3, g = (lane & 31) >> 2, row0 = (lane >> 5) * 16 + g;
    for (int it = 0; it < iters; ++it) {
        wgmma_fence();
        wgmma_s8_n64<false>(s, qa[0], wgmma_desc<64>(k_lo));
        wgmma_s8_n64<true>(s, qa[1], wgmma_desc<64>(k_lo + 2));
        wgmma_commit();
        wgmma_wait<0>();
        fence_operand(s);
        float f[8][4], b0, b1;
        softmax_tile_fp16_exp<false, kMagic>(s, sc, kTile, t, rs, b0, b1, f);
        const int slot = it & 1;
        if (it >= 2) named_sync(split_free(c, slot));
        const uint32_t p = p_base + (2 * c + slot) * kPSlotBytes;
#pragma unroll
        for (int j = 0; j < 8; ++j) {  // keys 8j + 2t, 8j + 2t + 1 of rows row0 and row0 + 8: 16-byte chunk j
            sts_u32(p + SwizzledRows<128>::offset(row0, j) + 4 * t, f2h2(f[j][0], f[j][1]));
            sts_u32(p + SwizzledRows<128>::offset(row0 + 8, j) + 4 * t, f2h2(f[j][2], f[j][3]));
        }
        fence_proxy_async();
        named_arrive(split_ready(c, slot));
    }
}

template <int C>
__device__ void split_pv_loop(uint32_t v_lo, uint32_t p_base, int iters, float* sink) {
    float o[C][9][4];
#pragma unroll
    for (int c = 0; c < C; ++c)
#pragma unroll
        for (int j = 0; j < 9; ++j) o[c][j][0] = o[c][j][1] = o[c][j][2] = o[c][j][3] = 0.f;
    const uint32_t p_lo = desc_lo(p_base);
    for (int it = 0; it < iters; ++it) {
#pragma unroll
        for (int c = 0; c < C; ++c) {
            const int slot = it & 1;
            named_sync(split_ready(c, slot));
            wgmma_fence();
#pragma unroll
            for (int kc = 0; kc < 4; ++kc)
                wgmma_f16_n72_ss(o[c], wgmma_desc<128>(p_lo + (2 * c + slot) * (kPSlotBytes >> 4) + kc * 2),
                                 wgmma_desc<128>(v_lo + kc * 2));
            wgmma_commit();
            wgmma_wait<1>();  // the previous PV has read its slot: free it
            const int pc = c == 0 ? C - 1 : c - 1, pit = c == 0 ? it - 1 : it;
            if (pit >= 0 && pit + 2 < iters) named_arrive(split_free(pc, pit & 1));
        }
    }
    wgmma_wait<0>();
    float sum = 0.f;
#pragma unroll
    for (int c = 0; c < C; ++c) {
        fence_operand(o[c]);
        sum += o[c][0][0] + o[c][8][2];
    }
    if (sum == 1.2345f) *sink = sum;
}
#endif

// Warpgroup 0: the PV of C rows; warpgroups 1 .. C: QK^T and softmax of one row each (split_*_loop).
// cycles[cta]: the PV warpgroup's loop.
template <int C>
__global__ void __launch_bounds__(128 * (C + 1), 1) split_kernel(int iters, long long* cycles, float* sink) {
#ifdef PARO_SM90_DEVICE
    extern __shared__ __align__(128) uint8_t smem[];
    const uint32_t base = (static_cast<uint32_t>(__cvta_generic_to_shared(smem)) + 1023) & ~1023u;
    constexpr int kK = kTile * 64, kV = (64 + 8) * kTile * 2, kPAt = (kK + kV + 1023) / 1024 * 1024;
    for (int i = threadIdx.x; i < kK / 4; i += blockDim.x) sts_u32(base + 4 * i, small_bytes(i));
    for (int i = threadIdx.x; i < kV / 4; i += blockDim.x)
        sts_u32(base + kK + 4 * i, i >= 64 * kTile * 2 / 4 ? kOnesH2 : 0x3c003c00u ^ (i & 0x01ff01ffu));
    fence_proxy_async();
    __syncthreads();
    const long long t0 = clock64();
    // Three rows' O need more than the even share of registers (128 each with four warpgroups).
    if (threadIdx.x < 128) {
        if constexpr (C == 3) setmaxnreg_inc<184>();
        split_pv_loop<C>(desc_lo(base + kK), base + kPAt, iters, sink);
        if (threadIdx.x == 0) cycles[blockIdx.x] = clock64() - t0;
    } else {
        if constexpr (C == 3) setmaxnreg_dec<104>();
        split_softmax_loop(desc_lo(base), base + kPAt, threadIdx.x / 128 - 1, iters);
    }
#else
    (void)iters, (void)cycles, (void)sink;
    __trap();
#endif
}

// Warpgroup 0 runs step M, the others step M1.
template <Step M, Step M1, int NWG>
__global__ void __launch_bounds__(128 * NWG, 1) consumer_kernel(int iters, long long* cycles, float* sink) {
#ifdef PARO_SM90_DEVICE
    extern __shared__ __align__(128) uint8_t smem[];
    const uint32_t base = (static_cast<uint32_t>(__cvta_generic_to_shared(smem)) + 1023) & ~1023u;
    constexpr int kK = kTile * 64, kV = (64 + 8) * kTile * 2;  // K tile (s8), V^T and ones rows (fp16)
    for (int i = threadIdx.x; i < kK / 4; i += 128 * NWG) sts_u32(base + 4 * i, small_bytes(i));
    for (int i = threadIdx.x; i < kV / 4; i += 128 * NWG)
        sts_u32(base + kK + 4 * i, i >= 64 * kTile * 2 / 4 ? kOnesH2 : 0x3c003c00u ^ (i & 0x01ff01ffu));
    fence_proxy_async();
    __syncthreads();
    const long long t0 = clock64();
    if (threadIdx.x < 128)
        consumer_loop<M, NWG>(desc_lo(base), desc_lo(base + kK), iters, sink);
    else
        consumer_loop<M1, NWG>(desc_lo(base), desc_lo(base + kK), iters, sink);
    if (threadIdx.x % 128 == 0) cycles[blockIdx.x * NWG + threadIdx.x / 128] = clock64() - t0;
#else
    (void)iters, (void)cycles, (void)sink;
    __trap();
#endif
}

// roles: one char per warpgroup ('T', 'X' or '-'); cycles[cta * kWarpgroups + wg]: that warpgroup's loop.
template <Mma M>
__global__ void __launch_bounds__(kThreads, 1) probe_kernel(uint32_t roles, int iters_t, int iters_x,
                                                            long long* cycles, float* sink) {
#ifdef PARO_SM90_DEVICE
    extern __shared__ __align__(128) uint8_t smem[];
    const uint32_t base = (static_cast<uint32_t>(__cvta_generic_to_shared(smem)) + 1023) & ~1023u;
    // Operands of small values (fp16 around 1, int8 mixed), so the tensor cores do real work.
    for (int i = threadIdx.x; i < 2 * kOperandBytes / 4; i += kThreads)
        sts_u32(base + 4 * i, M == Mma::s8_rs || M == Mma::s8_ss ? 0x05fb13edu * (i + 1) : 0x3c003c00u ^ (i & 0x00ff00ffu));
    fence_proxy_async();
    __syncthreads();
    const int wg = threadIdx.x / 128;
    const char role = char((roles >> (8 * wg)) & 0xff);
    const long long t0 = clock64();
    if (role == 'T') tensor_loop<M>(desc_lo(base), desc_lo(base + kOperandBytes), iters_t, sink);
    if (role == 'X') xu_loop<false>(iters_x, sink);
    if (role == 'U') xu_loop<true>(iters_x, sink);
    if (threadIdx.x % 128 == 0) cycles[blockIdx.x * kWarpgroups + wg] = role == '-' ? 0 : clock64() - t0;
#else
    (void)roles, (void)iters_t, (void)iters_x, (void)cycles, (void)sink;
    __trap();
#endif
}

void check(cudaError_t e, const char* what) {
    if (e != cudaSuccess) {
        std::fprintf(stderr, "paro_pipe_overlap: %s: %s\n", what, cudaGetErrorString(e));
        std::exit(1);
    }
}

struct Timing {
    double t_cycles = 0, x_cycles = 0;  // mean over CTAs of the slowest warpgroup of each role
};

template <Mma M>
Timing run(const std::string& roles, int iters_t, int iters_x, int sms, long long* d_cycles, float* sink) {
    uint32_t packed = 0;
    for (int wg = 0; wg < kWarpgroups; ++wg) packed |= uint32_t(uint8_t(roles[wg])) << (8 * wg);
    check(cudaFuncSetAttribute(probe_kernel<M>, cudaFuncAttributeMaxDynamicSharedMemorySize, kSmemBytes), "smem");
    std::vector<long long> cycles(size_t(sms) * kWarpgroups);
    Timing best{1e30, 1e30};
    for (int rep = 0; rep < 3; ++rep) {  // the fastest of three (the first warms the clocks)
        probe_kernel<M><<<sms, kThreads, kSmemBytes>>>(packed, iters_t, iters_x, d_cycles, sink);
        check(cudaDeviceSynchronize(), "probe");
        check(cudaMemcpy(cycles.data(), d_cycles, cycles.size() * sizeof(long long), cudaMemcpyDeviceToHost), "copy");
        Timing t;
        for (int c = 0; c < sms; ++c) {
            long long tc = 0, xc = 0;
            for (int wg = 0; wg < kWarpgroups; ++wg) {
                const long long v = cycles[size_t(c) * kWarpgroups + wg];
                if (roles[wg] == 'T') tc = std::max(tc, v);
                if (roles[wg] == 'X' || roles[wg] == 'U') xc = std::max(xc, v);
            }
            t.t_cycles += double(tc) / sms;
            t.x_cycles += double(xc) / sms;
        }
        if (t.t_cycles + t.x_cycles < best.t_cycles + best.x_cycles) best = t;
    }
    return best;
}

template <Mma M>
void table(int iters_t, int iters_x, int sms, long long* d_cycles, float* sink) {
    std::printf("\n%s: T = %d groups of 8 wgmma per warpgroup, X = %d x 32 FFMA+EX2 per thread\n", mma_name(M),
                iters_t, iters_x);
    std::printf("| roles | T kcycles | X kcycles | T / T alone | X / X alone | verdict |\n|---|---|---|---|---|---|\n");
    const Timing t1 = run<M>("T---", iters_t, iters_x, sms, d_cycles, sink);
    const Timing t2 = run<M>("TT--", iters_t, iters_x, sms, d_cycles, sink);
    const Timing x1 = run<M>("X---", iters_t, iters_x, sms, d_cycles, sink);
    const Timing x2 = run<M>("XX--", iters_t, iters_x, sms, d_cycles, sink);
    const Timing x3 = run<M>("XXX-", iters_t, iters_x, sms, d_cycles, sink);
    auto row = [&](const char* roles, const Timing& t, const Timing& t_alone, const Timing& x_alone) {
        const double rt = t_alone.t_cycles > 0 ? t.t_cycles / t_alone.t_cycles : 0;
        const double rx = x_alone.x_cycles > 0 ? t.x_cycles / x_alone.x_cycles : 0;
        const char* verdict = rt == 0 || rx == 0 ? "alone" : std::max(rt, rx) < 1.15 ? "overlap" : "contend";
        std::printf("| %s | %.0f | %.0f | %.2f | %.2f | %s |\n", roles, t.t_cycles / 1e3, t.x_cycles / 1e3, rt, rx,
                    verdict);
    };
    row("T---", t1, t1, x1);
    row("TT--", t2, t2, x1);
    row("X---", x1, t1, x1);
    row("XX--", x2, t1, x2);
    row("XXX-", x3, t1, x3);
    if (M == Mma::s8_rs) row("U---", run<M>("U---", iters_t, iters_x, sms, d_cycles, sink), t1, x1);
    for (const char* r : {"TX--", "TXX-", "TTX-", "TTXX", "TXXX"}) {
        const std::string s(r);
        const int nt = int(std::count(s.begin(), s.end(), 'T')), nx = int(std::count(s.begin(), s.end(), 'X'));
        row(r, run<M>(s, iters_t, iters_x, sms, d_cycles, sink), nt == 1 ? t1 : t2, nx == 1 ? x1 : nx == 2 ? x2 : x3);
    }
}

// Cycles per tile of warpgroup 0 (first) and the mean of the others (second; M1 = M: of all).
template <Step M, Step M1, int NWG>
std::pair<double, double> step_cycles(int iters, int sms, long long* d_cycles, float* sink) {
    constexpr int kBytes = 64 * 1024;
    check(cudaFuncSetAttribute(consumer_kernel<M, M1, NWG>, cudaFuncAttributeMaxDynamicSharedMemorySize, kBytes), "smem");
    std::vector<long long> cycles(size_t(sms) * NWG);
    std::pair<double, double> best{1e30, 1e30};
    for (int rep = 0; rep < 3; ++rep) {
        consumer_kernel<M, M1, NWG><<<sms, 128 * NWG, kBytes>>>(iters, d_cycles, sink);
        check(cudaDeviceSynchronize(), "consumer probe");
        check(cudaMemcpy(cycles.data(), d_cycles, cycles.size() * sizeof(long long), cudaMemcpyDeviceToHost), "copy");
        double sum[2] = {0, 0};  // cycles per tile, summed over warpgroup 0 and over the others
        for (int c = 0; c < sms; ++c)
            for (int wg = 0; wg < NWG; ++wg) sum[wg > 0] += double(cycles[size_t(c) * NWG + wg]) / iters;
        const std::pair<double, double> t =
            M == M1 ? std::pair{(sum[0] + sum[1]) / (sms * NWG), (sum[0] + sum[1]) / (sms * NWG)}
                    : std::pair{sum[0] / sms, NWG > 1 ? sum[1] / (sms * (NWG - 1)) : 0.0};
        if (t.first + t.second < best.first + best.second) best = t;
    }
    return best;
}
// Cycles per tile of the SM of split_kernel<C>.
template <int C>
double split_cycles(int iters, int sms, long long* d_cycles, float* sink) {
    constexpr int kBytes = 64 * 1024;
    check(cudaFuncSetAttribute(split_kernel<C>, cudaFuncAttributeMaxDynamicSharedMemorySize, kBytes), "smem");
    std::vector<long long> cycles(sms);
    double best = 1e30;
    for (int rep = 0; rep < 3; ++rep) {
        split_kernel<C><<<sms, 128 * (C + 1), kBytes>>>(iters, d_cycles, sink);
        check(cudaDeviceSynchronize(), "split probe");
        check(cudaMemcpy(cycles.data(), d_cycles, cycles.size() * sizeof(long long), cudaMemcpyDeviceToHost), "copy");
        double mean = 0;
        for (long long c : cycles) mean += double(c) / sms;
        best = std::min(best, mean / (double(iters) * C));
    }
    return best;
}

template <Step M, int NWG>
double consumer_cycles(int iters, int sms, long long* d_cycles, float* sink) {
    return step_cycles<M, M, NWG>(iters, sms, d_cycles, sink).first;
}

}  // namespace

int main(int argc, char** argv) {
    const int iters_t = argc > 1 ? std::atoi(argv[1]) : 4000, iters_x = argc > 2 ? std::atoi(argv[2]) : 4000;
    int dev = 0, sms = 0;
    cudaDeviceProp prop{};
    check(cudaGetDevice(&dev), "device");
    check(cudaGetDeviceProperties(&prop, dev), "properties");
    check(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev), "SMs");
    if (prop.major != 9) {
        std::fprintf(stderr, "paro_pipe_overlap: needs a Hopper GPU (sm_90a), found %s (sm_%d%d)\n", prop.name,
                     prop.major, prop.minor);
        return 2;
    }
    long long* d_cycles = nullptr;
    float* sink = nullptr;
    check(cudaMalloc(&d_cycles, sizeof(long long) * sms * kWarpgroups), "malloc");
    check(cudaMalloc(&sink, sizeof(float)), "malloc");
    std::printf("%s, %d SMs: cycles per warpgroup loop (mean over CTAs, fastest of 3 launches)\n", prop.name, sms);
    table<Mma::s8_rs>(iters_t, iters_x, sms, d_cycles, sink);
    table<Mma::s8_ss>(iters_t, iters_x, sms, d_cycles, sink);
    table<Mma::f16_ss>(iters_t, iters_x, sms, d_cycles, sink);
    std::printf("\nD 64 fp16-PV consumer step on fixed tiles, %d tiles per warpgroup (a tile's 4,096 exponentials "
                "take 256 cycles at 16 a clock): cycles per tile of the SM\n"
                "| step | 1 consumer | 2 consumers | 3 consumers | 4 consumers (128 registers) |\n|---|---|---|---|---|\n",
                iters_t);
    const auto consumers = [&](auto m, const char* name) {
        constexpr Step M = decltype(m)::value;
        std::printf("| %s | %.0f | %.0f | %.0f | %.0f |\n", name, consumer_cycles<M, 1>(iters_t, sms, d_cycles, sink),
                    consumer_cycles<M, 2>(iters_t, sms, d_cycles, sink) / 2,
                    consumer_cycles<M, 3>(iters_t, sms, d_cycles, sink) / 3,
                    consumer_cycles<M, 4>(iters_t, sms, d_cycles, sink) / 4);
    };
    consumers(std::integral_constant<Step, Step::kernel>{}, "as the kernel");
    // Where a warpgroup's step goes, in the kernel's order.
    std::vector<std::array<double, kPhases>> phases;
    const auto phase_means = [&](int nwg) {
        std::vector<long long> raw(size_t(kMaxCtas) * 4 * kPhases);
        check(cudaMemcpyFromSymbol(raw.data(), g_phases, raw.size() * sizeof(long long)), "phases");
        std::array<double, kPhases> mean{};
        const int ctas = std::min(sms, kMaxCtas);  // the CTAs g_phases holds
        for (int c = 0; c < ctas; ++c)
            for (int wg = 0; wg < nwg; ++wg)
                for (int k = 0; k < kPhases; ++k)
                    mean[k] += double(raw[(size_t(c) * 4 + wg) * kPhases + k]) / (double(iters_t) * ctas * nwg);
        phases.push_back(mean);
    };
    consumer_cycles<Step::phases, 1>(iters_t, sms, d_cycles, sink);
    phase_means(1);
    consumer_cycles<Step::phases, 2>(iters_t, sms, d_cycles, sink);
    phase_means(2);
    consumer_cycles<Step::phases, 3>(iters_t, sms, d_cycles, sink);
    phase_means(3);
    consumer_cycles<Step::phases, 4>(iters_t, sms, d_cycles, sink);
    phase_means(4);
    consumers(std::integral_constant<Step, Step::qk_ahead>{}, "QK one tile ahead");
    consumers(std::integral_constant<Step, Step::pv_late>{}, "PV issued after the QK^T wait");
    consumers(std::integral_constant<Step, Step::ahead>{}, "exponentials ahead of the row max");
    consumers(std::integral_constant<Step, Step::ping_pong>{}, "ping-pong issue turns");
    consumers(std::integral_constant<Step, Step::qk_ss>{}, "Q from shared memory");
    consumers(std::integral_constant<Step, Step::no_exp>{}, "no exponentials");
    consumers(std::integral_constant<Step, Step::mma_only>{}, "wgmma only");
    consumers(std::integral_constant<Step, Step::softmax_only>{}, "softmax only");
    std::printf("\nA warpgroup's step in the kernel's order by phase (cycles per tile of the warpgroup, clock64 "
                "around each phase)\n| consumers | issue QK, PV | QK^T wait | softmax | PV wait | packing | step |\n"
                "|---|---|---|---|---|---|---|\n");
    for (size_t n = 0; n < phases.size(); ++n) {
        const auto& p = phases[n];
        std::printf("| %zu | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f |\n", n + 1, p[0], p[1], p[2], p[3], p[4],
                    p[0] + p[1] + p[2] + p[3] + p[4]);
    }
    std::printf("\nThe step's wgmma (M) and softmax (S) in warpgroups of their own, side by side: cycles per tile of "
                "each warpgroup (alone: the rows above x warpgroups)\n| warpgroups | M | S |\n|---|---|---|\n");
    const auto mixed = [&](auto p, const char* name) {
        const auto c = p();
        std::printf("| %s | %.0f | %.0f |\n", name, c.first, c.second);
    };
    mixed([&] { return step_cycles<Step::mma_only, Step::softmax_only, 2>(iters_t, sms, d_cycles, sink); }, "M S");
    mixed([&] { return step_cycles<Step::mma_only, Step::softmax_only, 3>(iters_t, sms, d_cycles, sink); }, "M S S");
    mixed([&] { return step_cycles<Step::mma_only, Step::softmax_only, 4>(iters_t, sms, d_cycles, sink); }, "M S S S");
    std::printf("\nThe step split by roles, P through shared memory (split_kernel): cycles per tile of the SM\n"
                "| softmax warpgroups + 1 PV warpgroup | cycles |\n|---|---|\n| 2 + 1 | %.0f |\n| 3 + 1 | %.0f |\n",
                split_cycles<2>(iters_t, sms, d_cycles, sink), split_cycles<3>(iters_t, sms, d_cycles, sink));
    cudaFree(d_cycles);
    cudaFree(sink);
    return 0;
}
