#pragma once
// The producer / consumer pipeline of the Hopper attention kernel (attention_sm90.cu): each consumer
// warpgroup owns a ring of key-tile stages in shared memory (or the three consumers of a triple share
// one) that a producer thread fills with bulk copies, and a two-entry hand-off through which the
// producer passes it the rows to compute.
// A stage's "full" barrier completes when its bytes have landed (the producer's arrive.expect_tx plus
// the copies' complete_tx), its "empty" barrier when the warps that read it (a consumer warpgroup's
// four, or all consumers' for a ring they share) are done with it.
// Both sides walk the same sequence of tiles, numbered by a running position p: stage p % S, phase
// parity (p / S) & 1, so nothing but the barriers passes between them.
#include "ptx_sm90.cuh"

namespace paro::gpu {

// Shared-memory bytes of a TileRing<S> and of a RowHandoff (kept outside the device pass: the
// launch sizes shared memory from them).
constexpr int tile_ring_bytes(int stages) { return 2 * stages * 8; }
constexpr int kRowHandoffBytes = 2 * 8 + 2 * 8 + 2 * 4;

#ifdef PARO_SM90_DEVICE
// EVERY_LANE: each reader thread releases a stage itself instead of its warp's first lane for the
// warp, where threads read the stage from shared memory each for itself (8-bit PV's v scales).
// Both orders those reads before the refill (__syncwarp, then a release), but compute-sanitizer's
// racecheck follows only a thread's own arrival, and for the 8-bit formats one arrival per warp
// bought nothing (H200, v27 in bench/gpu/NOTES.md).
template <int S, bool EVERY_LANE = false>
struct TileRing {
    static_assert(S > 1, "two stages at least");
    uint32_t full, empty;  // shared addresses of S mbarriers each

    __device__ __forceinline__ TileRing(uint32_t bars) : full(bars), empty(bars + S * 8) {}
    __device__ __forceinline__ void init(uint32_t reader_warps) const {
        for (int i = 0; i < S; ++i) {
            mbar_init(full + 8 * i, 1);  // the producer's arrive.expect_tx (the bytes complete it)
            mbar_init(empty + 8 * i, EVERY_LANE ? 32 * reader_warps : reader_warps);
        }
    }
    // p % S: a mask for powers of two. For S = 3 the sequence would break where p wraps, after 2^32
    // tiles through one consumer in one launch: at 0.2 us or more a tile, a launch of 15 minutes.
    __device__ __forceinline__ static uint32_t stage(uint32_t p) { return p % S; }
    __device__ __forceinline__ static uint32_t parity(uint32_t p) { return (p / S) & 1; }

    // Producer: wait until stage p % S is free (the consumers released position p - S; the first
    // S positions pass at once); then, once it has written what it stores into the stage itself,
    // announce the copies' `bytes` on its full barrier (the arrive releases those stores).
    __device__ __forceinline__ void acquire(uint32_t p) const { mbar_wait(empty + 8 * stage(p), parity(p) ^ 1); }
    __device__ __forceinline__ void expect(uint32_t p, uint32_t bytes) const {
        mbar_arrive_expect_tx(full + 8 * stage(p), bytes);
    }
    __device__ __forceinline__ uint32_t full_bar(uint32_t p) const { return full + 8 * stage(p); }
    // Consumers: wait for position p's bytes; release it once every read of it (wgmma included) is done.
    __device__ __forceinline__ void wait(uint32_t p) const { mbar_wait(full + 8 * stage(p), parity(p)); }
    // One arrival per warp, by its first lane once the warp's lanes are past their reads (a warp-wide
    // arrive is 32 arrivals on one barrier: for fp16 PV 1-4% slower); EVERY_LANE: one per thread.
    __device__ __forceinline__ void release(uint32_t p) const {
        if constexpr (!EVERY_LANE) {
            __syncwarp();
            if ((threadIdx.x & 31) != 0) return;
        }
        mbar_arrive(empty + 8 * stage(p));
    }
};

// The rows a producer hands its consumer warpgroup: the k-th value goes through entry k % 2.
struct RowHandoff {
    static constexpr uint32_t kEnd = 0xffffffffu;  // no more rows
    static constexpr uint32_t kConsumerThreads = 128;  // every thread of the warpgroup takes each value
    uint32_t full, empty, slots;  // 2 mbarriers, 2 mbarriers, 2 words

    __device__ __forceinline__ RowHandoff(uint32_t at) : full(at), empty(at + 16), slots(at + 32) {}
    __device__ __forceinline__ void init() const {
        for (int e = 0; e < 2; ++e) {
            mbar_init(full + 8 * e, 1);
            mbar_init(empty + 8 * e, kConsumerThreads);
        }
    }
    __device__ __forceinline__ void put(uint32_t k, uint32_t value) const {  // the producer thread
        const uint32_t e = k & 1;
        mbar_wait(empty + 8 * e, ((k >> 1) & 1) ^ 1);
        sts_u32(slots + 4 * e, value);
        mbar_arrive(full + 8 * e);  // release: the value is visible to whoever acquires this phase
    }
    __device__ __forceinline__ uint32_t take(uint32_t k) const {  // every consumer thread
        const uint32_t e = k & 1;
        mbar_wait(full + 8 * e, (k >> 1) & 1);
        const uint32_t value = lds_u32(slots + 4 * e);
        mbar_arrive(empty + 8 * e);
        return value;
    }
};
#endif  // PARO_SM90_DEVICE

}  // namespace paro::gpu
