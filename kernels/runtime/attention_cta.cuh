#pragma once
// What the attention kernels share with their launch: a warpgroup (4 warps x 16 query rows)
// computes one 64-row query tile of one (batch, head) at a time, keeping Q in registers for the
// whole row of key tiles; the sm_80 grid has one CTA per (item of the plan's schedule, batch), the
// Hopper kernel a persistent grid that takes items from a RowQueue.
#include "common.cuh"

namespace paro::gpu {

constexpr int kAttnThreads = 128;  // one warpgroup: 4 warps x 16 query rows

// Q fragments of the warp's 16 rows, straight from global memory (row-major): the A operand of
// mma.m16n8k32 for int8 Q, of mma.m16n8k16 for fp16 Q (16-bit QK); the wgmma register-A layout too.
// A 32-bit fragment holds E consecutive channels; fragment set kk covers 8 E channels.
template <int D, typename T>
__device__ __forceinline__ void load_q_fragments(const T* qw, int g, int t, uint32_t (&qa)[D * sizeof(T) / 32][4]) {
    constexpr int E = 4 / sizeof(T);
#pragma unroll
    for (int kk = 0; kk < D * int(sizeof(T)) / 32; ++kk) {
        const T* row0 = qw + g * D + kk * 8 * E + t * E;
        const T* row8 = row0 + 8 * D;
        qa[kk][0] = *reinterpret_cast<const uint32_t*>(row0);
        qa[kk][1] = *reinterpret_cast<const uint32_t*>(row8);
        qa[kk][2] = *reinterpret_cast<const uint32_t*>(row0 + 4 * E);
        qa[kk][3] = *reinterpret_cast<const uint32_t*>(row8 + 4 * E);
    }
}

// The (head, query tile row) of this CTA: its item of the schedule (PlanView::schedule).
struct RowTile {
    int head, row;
};
__device__ __forceinline__ RowTile row_tile_of(uint32_t item) { return {int(item >> 16), int(item & 0xffffu)}; }
__device__ __forceinline__ RowTile row_tile(const uint32_t* schedule) { return row_tile_of(schedule[blockIdx.x]); }

// A warp's 16 query rows of a 64-row query tile: the tile's (head, row) and batch entry, and the warp.
struct WarpRows {
    RowTile rt;
    int b, warp;
};

// Warps' rows that a persistent grid has to compute again (the fp16-PV Hopper kernel's exponentials
// ahead of the row max failed for them: softmax_tile_fp16_exp_ahead), for a grid launched behind it:
// entries {item as in the schedule, 4 * batch entry + warp}, *count of them; the launch zeroes count.
// A jump that fails all four warps of a tile has the tile computed four times, each for its own
// warp's rows: rare, where one entry per tile would need a mask per tile zeroed at every launch.
static_assert(kAttnThreads / 32 == kRedoEntriesPerTile, "a RedoList entry per warp of a query tile, in two bits");
struct RedoList {
    uint2* entries;  // room for every warp's rows of the launch
    uint32_t* count;
    __device__ __forceinline__ void push(const WarpRows& w) const {
        entries[atomicAdd(count, 1u)] =
            make_uint2(uint32_t(w.rt.head) << 16 | uint32_t(w.rt.row), 4 * uint32_t(w.b) + uint32_t(w.warp));
    }
};

// The persistent kernels' work for every batch entry, item index i = b * items + j for the queue's
// j-th item: schedule entry j, or (TRIPLES) the triple of entries 3j .. 3j + 2, named by its first,
// and after those the `tails` tail triples (PlanView::schedule): rows nb - 3 .. nb - 1 of the head of
// each group of `tail_rows` entries. Or (REDO) the entries of a RedoList, whose length is known only
// once the grid that filled it has completed: a query tile, of which only the rows of one warp are
// wanted. Handed out in index order from a counter that the launch zeroes, so the longest rows start
// first and whichever warpgroup is free takes the next.
struct RowQueue {
    const uint32_t* schedule;
    uint32_t items, total;  // per batch entry, and in all
    uint32_t* counter;
    const uint2* redo = nullptr;  // REDO: RedoList::entries and count
    const uint32_t* redo_count = nullptr;
    uint32_t tails = 0, tail_rows = 0;  // TRIPLES: the last `tails` items are tail triples (nb % 3 rows each)
    __device__ __forceinline__ uint32_t fetch() const { return atomicAdd(counter, 1u); }
    template <bool REDO>
    __device__ __forceinline__ uint32_t end() const {
        return REDO ? __ldcg(redo_count) : total;
    }
    // Item i; warp -1: every warp's rows.
    template <bool TRIPLES, bool REDO>
    __device__ __forceinline__ WarpRows at(uint32_t i) const {
        if constexpr (REDO) {
            const uint2 e = __ldcg(redo + i);  // written by an earlier grid: past L1, which this grid's start may have filled
            return {row_tile_of(e.x), int(e.y >> 2), int(e.y & 3)};
        }
        const uint32_t b = i / items, j = i - b * items;
        if constexpr (TRIPLES) {
            const uint32_t full = items - tails;
            if (j >= full) {  // named by the head's first row after its last triple, nb - tail_rows
                RowTile rt = row_tile_of(schedule[3 * full + tail_rows * (j - full)]);
                rt.row -= 3 - int(tail_rows);
                return {rt, int(b), -1};
            }
        }
        return {row_tile_of(schedule[TRIPLES ? 3 * j : j]), int(b), -1};
    }
};

// Launches an attention kernel over `heads` heads' rows (their schedule items) and the batch, with
// `bytes` of dynamic shared memory (opting in above 48 KB; per device, cheap enough to set on every
// call); the launch's error.
template <typename Kernel>
cudaError_t launch_row_tiles(Kernel kernel, int bytes, const Shape& s, int heads, const PlanView& plan,
                             const Quantized& w, float sm_scale, MutView out, cudaStream_t st) {
    if (bytes > 48 * 1024) {
        const cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes);
        if (e != cudaSuccess) return e;
    }
    const dim3 grid(unsigned(heads) * unsigned(s.nb), 1, s.batch);
    kernel<<<grid, kAttnThreads, bytes, st>>>(s, plan, w, sm_scale * 1.4426950408889634f, out);  // log2(e)
    return cudaGetLastError();
}

}  // namespace paro::gpu
