// Plain fp32 reference attention on the GPU, kept apart from the fast kernels (validation only).
// One warp per query row (in permuted order), keys in chunks of 32 (one per lane), fp32 online
// softmax with expf, output channels spread over the lanes. Dense when plan.row_ptr is null.
#include <cfloat>

#include "common.cuh"

namespace paro::gpu {

namespace {

constexpr int kRefWarps = 4;

template <int D>
__global__ void __launch_bounds__(kRefWarps * 32)
    reference_kernel(Shape s, PlanView plan, const float* q, const float* k, const float* v, float* out,
                     float scale) {
    __shared__ float sq[kRefWarps][D];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int h = blockIdx.y, b = blockIdx.z;
    const int p = blockIdx.x * kRefWarps + warp;  // permuted query position
    if (p >= s.tokens) return;                    // whole warp leaves together
    const size_t bh = size_t(b) * s.heads + h;
    const int32_t* gather = plan.orders ? plan.gathers + size_t(plan.orders[h]) * s.tokens : nullptr;
    const int i = gather ? gather[p] : p;
    const float* qb = q + bh * size_t(s.tokens) * D;
    const float* kb = k + bh * size_t(s.tokens) * D;
    const float* vb = v + bh * size_t(s.tokens) * D;
    for (int d = lane; d < D; d += 32) sq[warp][d] = qb[size_t(i) * D + d];
    __syncwarp();

    // Key ranges in permuted positions: one range for dense, the kept tiles otherwise.
    uint32_t nranges = 1, beg = 0;
    if (plan.row_ptr) {
        const uint32_t* rp = plan.row_ptr + size_t(h) * (s.nb + 1);
        const int r = p / kTile;
        beg = rp[r];
        nranges = rp[r + 1] - beg;
    }
    float m = -INFINITY, l = 0.f;
    float acc[D / 32];
#pragma unroll
    for (int u = 0; u < D / 32; ++u) acc[u] = 0.f;
    for (uint32_t ri = 0; ri < nranges; ++ri) {
        int lo = 0, hi = s.tokens;
        if (plan.row_ptr) {
            const int c = plan.cols[beg + ri];
            lo = c * kTile;
            hi = min(s.tokens, lo + kTile);
        }
        for (int base = lo; base < hi; base += 32) {
            const int pk = base + lane;
            float sc = -INFINITY;
            int j = 0;
            if (pk < hi) {
                j = gather ? gather[pk] : pk;
                const float* kr = kb + size_t(j) * D;
                float dot = 0.f;
                for (int d = 0; d < D; ++d) dot = fmaf(sq[warp][d], kr[d], dot);
                sc = dot * scale;
            }
            const float cm = warp_max(sc);
            const float mn = fmaxf(m, cm);
            const float alpha = expf(m - mn);  // m = -inf at first: alpha = 0
            const float pj = pk < hi ? expf(sc - mn) : 0.f;
            l = l * alpha + warp_sum(pj);
#pragma unroll
            for (int u = 0; u < D / 32; ++u) acc[u] *= alpha;
            const int count = min(32, hi - base);
            for (int jj = 0; jj < count; ++jj) {
                const float pb = __shfl_sync(0xffffffffu, pj, jj);
                const int jb = __shfl_sync(0xffffffffu, j, jj);
                const float* vr = vb + size_t(jb) * D;
#pragma unroll
                for (int u = 0; u < D / 32; ++u) acc[u] = fmaf(pb, vr[lane + 32 * u], acc[u]);
            }
            m = mn;
        }
    }
    const float inv = l > 0.f ? 1.f / l : 0.f;
    float* orow = out + (bh * size_t(s.tokens) + i) * D;
#pragma unroll
    for (int u = 0; u < D / 32; ++u) orow[lane + 32 * u] = acc[u] * inv;
}

}  // namespace

cudaError_t launch_reference(const Shape& s, const PlanView& plan, const float* q, const float* k, const float* v,
                             float* out, float sm_scale, cudaStream_t st) {
    const dim3 grid((s.tokens + kRefWarps - 1) / kRefWarps, s.heads, s.batch);
    if (s.head_dim == 64)
        reference_kernel<64><<<grid, kRefWarps * 32, 0, st>>>(s, plan, q, k, v, out, sm_scale);
    else if (s.head_dim == 128)
        reference_kernel<128><<<grid, kRefWarps * 32, 0, st>>>(s, plan, q, k, v, out, sm_scale);
    else
        return cudaErrorInvalidValue;
    return cudaGetLastError();
}

}  // namespace paro::gpu
