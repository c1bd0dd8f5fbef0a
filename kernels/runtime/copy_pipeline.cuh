#pragma once
// The copy pipeline of the sm_80 main loop (attention_sm80.cu): key tiles stream through shared
// memory in a three-stage cp.async ring. A stage holds the K tile (KTileCopy) and then the PV
// policy's part (V^T, and its scales; pv_sm80.cuh). Every thread copies fixed 16-byte chunks, so its
// offsets are computed once and each tile costs a few cp.async with compile-time strides (no
// per-tile index math).
#include "attention_cta.cuh"
#include "ptx.cuh"

namespace paro::gpu {

constexpr int kStages = 3;

// The K tile of a stage: kTile keys of D int8, rows padded to SK bytes.
template <int D>
struct KTileCopy {
    static constexpr int SK = D + 16;  // bytes per K row (16 B pad: conflict-free ldmatrix)
    static constexpr int kBytes = kTile * SK;
    static constexpr int KCH = D / 16;                      // 16-byte chunks per K row
    static constexpr int KIT = kTile * KCH / kAttnThreads;  // K chunks per thread (2 or 4)
    static constexpr int KROWS = kAttnThreads / KCH;        // K rows covered per step
    static constexpr int KSTEP = KROWS * SK;

    uint32_t so;          // the thread's first chunk in a stage
    const int8_t* head;   // ... and in the head's K
    __device__ __forceinline__ KTileCopy(int tid, const int8_t* k_head) {
        so = (tid / KCH) * SK + (tid % KCH) * 16;
        // The workspace tile is swizzled (Quantized); the thread's rows step by multiples of 8, so
        // its swizzle is the same at every step.
        head = k_head + SwizzledRows<D>::offset(tid / KCH, tid % KCH);
    }
    __device__ __forceinline__ void load(uint32_t s0, int c) const {
        const int8_t* gk = head + c * (kTile * D);
#pragma unroll
        for (int it = 0; it < KIT; ++it) cp_async16(s0 + so + it * KSTEP, gk + it * KROWS * D);
    }
};

// The kept key tiles of a query row, walked with look-ahead: tiles i + 1 and i + 2 are in flight
// while tile i is computed, and one barrier per tile suffices (the stage refilled at iteration i was
// last read at i - 1). Column indices run two tiles ahead of the loads and K scales one ahead of
// their use, so no global load sits on the critical path.
struct KeyTileRing {
    const uint16_t* cols;  // the row's kept key tiles
    uint32_t n;
    const float* k_scale;  // the head's, per key tile
    int c0, c1, c2, c3, c4;  // key tiles i .. i + 4
    float ks0 = 0.f, ks1 = 0.f, ks2 = 0.f;  // their k scales, i .. i + 2

    __device__ __forceinline__ KeyTileRing(const uint16_t* cols_, uint32_t n_, const float* k_scale_)
        : cols(cols_), n(n_), k_scale(k_scale_) {}
    __device__ __forceinline__ int col(uint32_t i) const { return i < n ? int(cols[i]) : 0; }

    // Prologue: tiles 0 and 1 in flight (one cp.async group each, empty past the end).
    template <typename LoadTile>
    __device__ __forceinline__ void start(LoadTile&& load_tile) {
        c0 = col(0);
        c1 = col(1);
        c2 = col(2);
        c3 = col(3);
        if (n > 0) {
            load_tile(c0, 0);
            ks0 = __ldg(k_scale + c0);
        }
        cp_async_commit();
        if (n > 1) {
            load_tile(c1, 1);
            ks1 = __ldg(k_scale + c1);
        }
        cp_async_commit();
    }
    // Top of iteration i: tile i is in shared memory for every thread; tile i + 2 goes into the
    // stage tile i - 1 used.
    template <typename LoadTile>
    __device__ __forceinline__ void next(uint32_t i, LoadTile&& load_tile) {
        cp_async_wait<1>();  // tile i has landed (tile i + 1 may still be in flight)
        __syncthreads();     // ...for every thread; and every thread is done with tile i - 1
        ks2 = 0.f;
        if (i + 2 < n) {
            load_tile(c2, (i + 2) % kStages);
            ks2 = __ldg(k_scale + c2);
        }
        cp_async_commit();
        c4 = col(i + 4);
    }
    // Bottom of an iteration: tile i + 1 becomes the current one.
    __device__ __forceinline__ void advance() {
        c0 = c1;
        c1 = c2;
        c2 = c3;
        c3 = c4;
        ks0 = ks1;
        ks1 = ks2;
    }
};

}  // namespace paro::gpu
