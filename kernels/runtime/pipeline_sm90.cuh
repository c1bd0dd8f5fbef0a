#pragma once
// The producer / consumer pipeline of the Hopper attention kernel (attention_sm90.cu): the G consumer
// warpgroups of a query block share a ring of key-tile stages in shared memory that one producer
// thread fills with bulk copies, and a two-entry hand-off through which the producer passes them the
// blocks to compute. A stage's "full" barrier completes when its bytes have landed (the producer's
// arrive.expect_tx plus the copies' complete_tx), its "empty" barrier when all G * 128 consumer
// threads are done with it (every consumer releases every position, its own tiles or not). Both
// sides walk the same sequence of tiles, numbered by a running position p: stage p % S, phase parity
// (p / S) & 1, so nothing but the barriers passes between them.
#include "ptx_sm90.cuh"

namespace paro::gpu {

// Shared-memory bytes of a TileRing<S> and of a RowHandoff (kept outside the device pass: the
// launch sizes shared memory from them).
template <int S>
constexpr int kTileRingBytes = 2 * S * 8;
constexpr int kRowHandoffBytes = 2 * 8 + 2 * 8 + 2 * 4;

#ifdef PARO_SM90_DEVICE
constexpr uint32_t kWarpgroupThreads = 128;

template <int S, int G>
struct TileRing {
    static_assert(S > 1 && (S & (S - 1)) == 0, "a power of two: stage and phase by bit operations");
    static constexpr uint32_t kConsumerThreads = G * kWarpgroupThreads;
    uint32_t full, empty;  // shared addresses of S mbarriers each

    __device__ __forceinline__ TileRing(uint32_t bars) : full(bars), empty(bars + S * 8) {}
    __device__ __forceinline__ void init() const {
        for (int i = 0; i < S; ++i) {
            mbar_init(full + 8 * i, 1);  // the producer's arrive.expect_tx (the bytes complete it)
            mbar_init(empty + 8 * i, kConsumerThreads);
        }
    }
    __device__ __forceinline__ static uint32_t stage(uint32_t p) { return p & (S - 1); }
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
    __device__ __forceinline__ void release(uint32_t p) const { mbar_arrive(empty + 8 * stage(p)); }
};

// The query blocks a producer hands its G consumer warpgroups: the k-th value goes through entry k % 2.
template <int G>
struct RowHandoff {
    static constexpr uint32_t kEnd = 0xffffffffu;  // no more rows
    uint32_t full, empty, slots;  // 2 mbarriers, 2 mbarriers, 2 words

    __device__ __forceinline__ RowHandoff(uint32_t at) : full(at), empty(at + 16), slots(at + 32) {}
    __device__ __forceinline__ void init() const {
        for (int e = 0; e < 2; ++e) {
            mbar_init(full + 8 * e, 1);
            mbar_init(empty + 8 * e, G * kWarpgroupThreads);
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
// Turns in which the G consumer warpgroups of a group issue their MMAs, warpgroup 0, 1, .., G - 1, 0,
// .. (FlashAttention-3's ping-pong): they wait on the same stages, so left alone they run in step,
// every softmax at once and then every MMA; in turns, one's softmax runs while another's MMAs occupy
// the tensor cores. Every warpgroup of the group takes the same number of turns (one per ring position
// and one per block, passing its turn where it has nothing to issue), so the named barriers balance:
// warpgroup c's turn begins on barrier first_id + c once warpgroup c - 1's turn ended (an arrive on it);
// warpgroup G - 1 arrives once at the start so that 0 goes first, and warpgroup 0 takes the last
// arrive with one more begin() at the end. Nothing for G = 1.
template <int G>
struct IssueTurns {
    static constexpr uint32_t kThreads = G * kWarpgroupThreads;
    uint32_t first;  // named barrier id of warpgroup 0's turns
    int c;           // this warpgroup
    __device__ __forceinline__ IssueTurns(uint32_t first_id, int c_) : first(first_id), c(c_) {}
    __device__ __forceinline__ void open() const {
        if (G > 1 && c == G - 1) end();
    }
    __device__ __forceinline__ void begin() const {
        if (G > 1) named_bar_sync(first + uint32_t(c), kThreads);
    }
    __device__ __forceinline__ void end() const {
        if (G > 1) named_bar_arrive(first + uint32_t((c + 1) % G), kThreads);
    }
    __device__ __forceinline__ void close() const {
        if (G > 1 && c == 0) begin();
    }
};
#endif  // PARO_SM90_DEVICE

}  // namespace paro::gpu
