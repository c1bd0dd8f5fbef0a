// Preparation kernels: K channel mean, fused permute + INT8 quantization of Q, K, V, and the
// standalone permute / inverse-permute.
//
// Quantization (one launch; SPLIT: three CTAs per (64-token permuted tile, head, batch), one each for
// Q, K and V, else one CTA for all three; measured per head dim, quantize_t), per head by its QK and
// PV formats (PlanView::kernels):
//  - Q: one scale per row, symmetric, max |q| / 127 (bench/qk_quant_error.py: against one per 16 rows,
//    less QK error on rows of unequal norms, e.g. text beside video tokens; the attention kernels
//    fold it into each row's score step at no cost).
//  - K: one scale per 64-token tile, after subtracting the head's per-channel mean (smooth_k; softmax
//    is invariant to it since q . mean is constant along a query row).
//  - 16-bit-QK heads: Q and K in fp16 with the same granularity, but power-of-two scales putting the
//    maximum in [64, 128) (pow2_scale): Q exact for fp16 and bf16 inputs (but values below 2^-20 of the
//    maximum), K too without smooth_k (with it, the fp32 difference is rounded to 11 bits), fp32
//    inputs rounded to 11 bits, and never an fp16 overflow.
//  - V: one scale per (tile, channel), stored beside its product with -1.5 * 2^23 (Quantized::v_scale);
//    written transposed, [D][64] per tile, with the keys of each
//    group of 16 shuffled so that the attention kernel can feed its 8-bit P' accumulator fragments
//    straight into mma.m16n8k32 as the A operand: logical position L holds key
//    k = 8 * ((L >> 1) & 1) + 2 * (L >> 2) + (L & 1), i.e. L(k) = ((k >> 1) & 3) << 2 | (k >> 3) << 1 | (k & 1).
//    FP8-PV heads get the same layout in e4m3 (scale: max |v| / 448).
//    Heads of PV format fp16 get V as fp16 instead: transposed to [D][64] per
//    tile, keys in permuted order, no scale (the fp16-PV attention kernels).
// K and both V^T layouts are stored as SwizzledRows tiles (common.cuh): the layout the Hopper
// kernel's shared memory needs, so each tile is one bulk copy; the sm_80 kernels un-swizzle as they
// copy. The permutation costs only the address of each row read (gather[p]).

#include <cuda_fp8.h>

#include <atomic>
#include <cfloat>
#include <type_traits>

#include "common.cuh"

namespace paro::gpu {

namespace {

constexpr int kPrepThreads = 256;

__device__ inline int shuffled_key(int row) {  // row in [0, 64): storage position of key `row`
    const int k = row & 15;
    return (row & ~15) | (((k >> 1) & 3) << 2) | ((k >> 3) << 1) | (k & 1);
}

enum class PrepPart { q, k, v };

// 16-bit QK's scale for a row or tile of maximum |x| m: a power of two putting m in [64, 128), so
// x / scale is x with its exponent moved (inv: 1 / scale, exact; 0 when m is 0 or not finite).
__device__ inline float pow2_scale(float m, float& inv) {
    if (!(m > 0.f) || isinf(m)) {
        inv = 0.f;
        return 1.f;
    }
    int e;
    frexpf(m, &e);     // m = f * 2^e, f in [0.5, 1)
    e = max(e, -118);  // inv stays finite (<= 2^125)
    inv = ldexpf(1.f, 7 - e);
    return ldexpf(1.f, e - 7);
}

// SPLIT = true: CTA blockIdx.x quantizes part blockIdx.x % 3 of tile blockIdx.x / 3, holding one
// tensor's rows in registers; false: CTA blockIdx.x quantizes all three parts of tile blockIdx.x,
// their loads in flight together.
template <int D, typename T, bool SPLIT>
__global__ void __launch_bounds__(kPrepThreads) quantize_kernel(Shape s, PlanView plan, View qv, View kv, View vv,
                                                                int smooth_k, Quantized w) {
    constexpr int CH = D / 8;                     // 8-element chunks per row
    constexpr int NC = kTile * CH / kPrepThreads; // chunks per thread
    constexpr int SVT = kTile + 16;               // smem row stride of int8 V^T (bytes)
    constexpr int SVT16 = kTile * 2 + 16;         // smem row stride of fp16 V^T (bytes)
    // The lanes of one store into V^T write channels 8 apart (the same bank at either stride), so each
    // channel row's 16-byte chunks are stored XOR-permuted by bits 3.. of the channel: 8 (fp16) or
    // 4 (8-bit) banks instead of one. The copy-out reads chunk `part` of row `ch` from vt_chunk.
    constexpr int kChunks16 = kTile * 2 / 16, kChunks8 = kTile / 16;
    auto vt_chunk = [](int ch, int part, int chunks) { return part ^ ((ch >> 3) & (chunks - 1)); };
    constexpr int kParts = SPLIT ? 1 : 3;  // parts of this CTA
    const int tile = SPLIT ? blockIdx.x / 3 : blockIdx.x, h = blockIdx.y, b = blockIdx.z;
    const size_t bh = size_t(b) * s.heads + h;
    const int tid = threadIdx.x, lane = tid & 31;
    auto part_of = [&](int i) { return SPLIT ? PrepPart(blockIdx.x % 3) : PrepPart(i); };
    const bool qk16 = plan.qk_format(h) == QkFormat::fp16;  // the head's formats: uniform over the CTA
    const PvFormat pv = plan.pv_format(h);
    // This tile's Q and K in their head's regions (Quantized): int8 or fp16 elements.
    const size_t qk_at = bh * qk_head_bytes(s.npad, D) + size_t(tile) * kTile * D * (qk16 ? 2 : 1);

    __shared__ int s_src[kTile];
    __shared__ int s_kmax;  // abs maximum as int bits
    __shared__ int s_vmax[D];
    __shared__ __align__(16) int8_t s_vt[D * SVT16];  // V^T of the tile, int8 or fp16

    if (tid < kTile) {
        const int p = tile * kTile + tid;
        int src = -1;
        if (p < s.tokens) src = plan.orders ? plan.gathers[size_t(plan.orders[h]) * s.tokens + p] : p;
        s_src[tid] = src;
    }
    if (tid == 0) s_kmax = 0;
    for (int c = tid; c < D; c += kPrepThreads) s_vmax[c] = 0;
    __syncthreads();

    // The tile's rows of this CTA's parts, loaded up front (raw 16-byte chunks, all in flight
    // together), then widened part by part into x.
    using Raw = typename Elem<T>::Raw;
    Raw r[kParts][NC];
#pragma unroll
    for (int i = 0; i < kParts; ++i) {
        const PrepPart part = part_of(i);
        const View in = part == PrepPart::q ? qv : part == PrepPart::k ? kv : vv;  // by value: no local copy of the parameters
        const T* base = static_cast<const T*>(in.data) + b * in.sb + h * in.sh;
#pragma unroll
        for (int n = 0; n < NC; ++n) {
            const int c = tid + n * kPrepThreads, row = c / CH, col = (c % CH) * 8;
            const int src = s_src[row];
            r[i][n] = src >= 0 ? Elem<T>::load_raw(base + src * in.st + col) : Raw{};
        }
    }
    float x[NC][8];

    // swizzled: the tile's rows in the SwizzledRows<D> layout (K), else row-major (Q). inv[NC]: the
    // factor of each of the thread's chunks (a pointer: an array reference here crashes cudafe++ 13).
    auto store = [&](auto swizzled, int8_t* dst_tile, const float* inv) {
#pragma unroll
        for (int i = 0; i < NC; ++i) {
            const int c = tid + i * kPrepThreads, row = c / CH, col = (c % CH) * 8;
            int qv8[8];
#pragma unroll
            for (int j = 0; j < 8; ++j) qv8[j] = quant_s8(x[i][j] * inv[i]);
            uint2 packed;
            packed.x = pack_s8x4(qv8[0], qv8[1], qv8[2], qv8[3]);
            packed.y = pack_s8x4(qv8[4], qv8[5], qv8[6], qv8[7]);
            const uint32_t at = decltype(swizzled)::value ? SwizzledRows<D>::offset(row, col >> 4) + (col & 8)
                                                          : uint32_t(row * D + col);
            *reinterpret_cast<uint2*>(dst_tile + at) = packed;
        }
    };
    // The same in fp16 (16-bit QK; inv a power of two): swizzled, the K tile's D / 64 blocks of 64 keys
    // x 128 bytes, each SwizzledRows<128>; else row-major (Q).
    auto store16 = [&](auto swizzled, int8_t* dst_tile, const float* inv) {
#pragma unroll
        for (int i = 0; i < NC; ++i) {
            const int c = tid + i * kPrepThreads, row = c / CH, col = (c % CH) * 8;
            uint4 packed;
            __half2* h2 = reinterpret_cast<__half2*>(&packed);
#pragma unroll
            for (int j = 0; j < 4; ++j) h2[j] = __floats2half2_rn(x[i][2 * j] * inv[i], x[i][2 * j + 1] * inv[i]);
            const uint32_t at = decltype(swizzled)::value
                                    ? uint32_t(col / 64) * kTile * 128 + SwizzledRows<128>::offset(row, (col % 64) / 8)
                                    : uint32_t(row * D + col) * 2;
            *reinterpret_cast<uint4*>(dst_tile + at) = packed;
        }
    };

    // ---- Q: per row. A row's CH chunks are CH consecutive lanes of one warp.
    static_assert(32 % CH == 0, "a row's chunks must fall in one warp");
    auto quantize_q = [&] {
        float inv[NC];
#pragma unroll
        for (int i = 0; i < NC; ++i) {
            float m = 0.f;
#pragma unroll
            for (int j = 0; j < 8; ++j) m = fmaxf(m, fabsf(x[i][j]));
#pragma unroll
            for (int o = CH / 2; o > 0; o >>= 1) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, o));
            float scale;
            if (qk16) {
                scale = pow2_scale(m, inv[i]);
            } else {
                inv[i] = m > 0.f ? 127.f / m : 0.f;
                scale = m > 0.f ? m / 127.f : 1.f;
            }
            const int c = tid + i * kPrepThreads;
            if (c % CH == 0) w.q_scale[bh * s.npad + size_t(tile) * kTile + c / CH] = scale;
        }
        if (qk16)
            store16(std::false_type{}, w.q + qk_at, inv);
        else
            store(std::false_type{}, w.q + qk_at, inv);
    };

    // ---- K: one scale per tile, mean-subtracted.
    auto quantize_k = [&] {
        float m = 0.f;
#pragma unroll
        for (int i = 0; i < NC; ++i) {
            const int c = tid + i * kPrepThreads, row = c / CH, col = (c % CH) * 8;
            if (smooth_k && s_src[row] >= 0) {
#pragma unroll
                for (int j = 0; j < 8; ++j) x[i][j] -= w.k_mean[bh * D + col + j];
            }
#pragma unroll
            for (int j = 0; j < 8; ++j) m = fmaxf(m, fabsf(x[i][j]));
        }
        m = warp_max(m);
        if (lane == 0) atomicMax(&s_kmax, __float_as_int(m));
        __syncthreads();
        const float km = __int_as_float(s_kmax);
        float inv1, inv[NC];
        const float scale = qk16 ? pow2_scale(km, inv1) : km > 0.f ? km / 127.f : 1.f;
        if (!qk16) inv1 = km > 0.f ? 127.f / km : 0.f;
#pragma unroll
        for (int i = 0; i < NC; ++i) inv[i] = inv1;
        if (qk16)
            store16(std::true_type{}, w.k + qk_at, inv);
        else
            store(std::true_type{}, w.k + qk_at, inv);
        if (tid == 0) w.k_scale[bh * s.nb + tile] = scale;
    };

    // ---- V, fp16-PV heads (PvFormat::fp16): fp16, transposed to [D][64] per tile (keys in
    // permuted order), not quantized. Keys past the end of the sequence are zeros.
    auto transpose_v16 = [&] {
        __half* s_vt16 = reinterpret_cast<__half*>(s_vt);  // [D][SVT16 / 2]
#pragma unroll
        for (int i = 0; i < NC; ++i) {
            const int c = tid + i * kPrepThreads, row = c / CH, col = (c % CH) * 8;
#pragma unroll
            for (int j = 0; j < 8; ++j)
                s_vt16[(col + j) * (SVT16 / 2) + vt_chunk(col + j, row >> 3, kChunks16) * 8 + (row & 7)] =
                    __float2half_rn(x[i][j]);
        }
        __syncthreads();
        uint8_t* vt = reinterpret_cast<uint8_t*>(w.vt + bh * vt_head_bytes(s.nb, D)) + size_t(tile) * D * kTile * 2;
        for (int c = tid; c < D * 8; c += kPrepThreads) {
            const int row = c / 8, part16 = c % 8;
            *reinterpret_cast<uint4*>(vt + SwizzledRows<kTile * 2>::offset(row, part16)) =
                *reinterpret_cast<const uint4*>(s_vt + row * SVT16 + vt_chunk(row, part16, kChunks16) * 16);
        }
    };

    // ---- V, 8-bit PV heads (INT8, FP8 e4m3): one scale per (tile, channel) mapping its max |v| to
    // 127 or 448; transposed and shuffled through shared memory.
    auto quantize_v8 = [&](bool fp8) {
        const float vmax8 = fp8 ? 448.f : 127.f;
#pragma unroll
        for (int i = 0; i < NC; ++i) {
            float m[8];
#pragma unroll
            for (int j = 0; j < 8; ++j) m[j] = fabsf(x[i][j]);
            // Lanes CH, 2CH, ... apart hold the same columns of other rows.
#pragma unroll
            for (int o = CH; o < 32; o <<= 1)
#pragma unroll
                for (int j = 0; j < 8; ++j) m[j] = fmaxf(m[j], __shfl_xor_sync(0xffffffffu, m[j], o));
            if (lane < CH) {
                const int col = ((tid + i * kPrepThreads) % CH) * 8;
#pragma unroll
                for (int j = 0; j < 8; ++j) atomicMax(&s_vmax[col + j], __float_as_int(m[j]));
            }
        }
        __syncthreads();
#pragma unroll
        for (int i = 0; i < NC; ++i) {
            const int c = tid + i * kPrepThreads, row = c / CH, col = (c % CH) * 8;
            const int pos = shuffled_key(row);
#pragma unroll
            for (int j = 0; j < 8; ++j) {
                const float m = __int_as_float(s_vmax[col + j]), y = m > 0.f ? x[i][j] * fminf(vmax8 / m, FLT_MAX) : 0.f;  // tiny m: no inf (0 * inf)
                s_vt[(col + j) * SVT + vt_chunk(col + j, pos >> 4, kChunks8) * 16 + (pos & 15)] =
                    fp8 ? static_cast<int8_t>(__nv_cvt_float_to_fp8(y, __NV_SATFINITE, __NV_E4M3)) : static_cast<int8_t>(quant_s8(y));
            }
        }
        for (int c = tid; c < D; c += kPrepThreads) {
            const float m = __int_as_float(s_vmax[c]), vs = m > 0.f ? m / vmax8 : 1.f;
            float* pair = w.v_scale + ((bh * s.nb + tile) * D + (c & ~1)) * 2 + (c & 1);
            pair[0] = vs;
            pair[2] = fp8 ? 0.f : -kMagicF * vs;
        }
        __syncthreads();
        int8_t* vt = w.vt + bh * vt_head_bytes(s.nb, D) + size_t(tile) * D * kTile;
        for (int c = tid; c < D * kTile / 16; c += kPrepThreads) {
            const int row = c / (kTile / 16), part16 = c % (kTile / 16);
            *reinterpret_cast<uint4*>(vt + SwizzledRows<kTile>::offset(row, part16)) =
                *reinterpret_cast<const uint4*>(s_vt + row * SVT + vt_chunk(row, part16, kChunks8) * 16);
        }
    };

#pragma unroll
    for (int i = 0; i < kParts; ++i) {
#pragma unroll
        for (int n = 0; n < NC; ++n) Elem<T>::to_float(r[i][n], x[n]);
        switch (part_of(i)) {
            case PrepPart::q: quantize_q(); break;
            case PrepPart::k: quantize_k(); break;
            case PrepPart::v:  // the head's PV format: uniform over the CTA (one head)
                if (pv == PvFormat::fp16)
                    transpose_v16();
                else
                    quantize_v8(pv == PvFormat::fp8_e4m3);
                break;
        }
    }
}

// Per-channel mean of K over every KMeanSampling::stride-th token of a head (k_mean zeroed first).
// Any vector subtracted from every key leaves softmax unchanged; the mean is only the one that
// centres K best for quantization, and ~2,000 tokens estimate it to ~2% of a channel's spread (so
// the quantization range moves by that much at most) for an eighth (CogVideoX) to a 36th (Wan 720p)
// of the reads of the full mean. A CTA sums 256 sampled rows: each thread loads 8 channels (16 or 32
// bytes) of every (256 / (D / 8))-th of them, then the partial sums of each channel meet in shared
// memory.
constexpr int kMeanSamples = 2048;
// The tokens the mean reads: every `stride`-th, `count` of them.
struct KMeanSampling {
    int stride, count;
    __host__ __device__ explicit KMeanSampling(int tokens)
        : stride(tokens / kMeanSamples > 1 ? tokens / kMeanSamples : 1), count((tokens + stride - 1) / stride) {}
};

template <int D, typename T>
__global__ void __launch_bounds__(256) k_mean_kernel(Shape s, View kv, float* k_mean) {
    constexpr int CH = D / 8, ROWS = 256 / CH;  // 8-channel chunks per row, rows per pass
    const int h = blockIdx.y, b = blockIdx.z;
    const size_t bh = size_t(b) * s.heads + h;
    const int c = threadIdx.x % CH, r0 = threadIdx.x / CH;
    const T* base = static_cast<const T*>(kv.data) + b * kv.sb + h * kv.sh + c * 8;
    const KMeanSampling sampling(s.tokens);
    const int begin = blockIdx.x * 256, end = min(sampling.count, begin + 256);
    float acc[8] = {};
    for (int i = begin + r0; i < end; i += ROWS) {
        float x[8];
        Elem<T>::load8(base + int64_t(i) * sampling.stride * kv.st, x);
#pragma unroll
        for (int j = 0; j < 8; ++j) acc[j] += x[j];
    }
    __shared__ float red[ROWS][D + 1];
#pragma unroll
    for (int j = 0; j < 8; ++j) red[r0][c * 8 + j] = acc[j];
    __syncthreads();
    if (threadIdx.x < D) {
        float sum = 0.f;
        for (int r = 0; r < ROWS; ++r) sum += red[r][threadIdx.x];
        atomicAdd(&k_mean[bh * D + threadIdx.x], sum / float(sampling.count));
    }
}

// Row copy by the permutation of each head, 16 bytes per thread.
__global__ void permute_kernel(Shape s, int elem_bytes, const int32_t* gathers, const uint8_t* orders, int inverse,
                               View in, MutView out) {
    const int row_bytes = s.head_dim * elem_bytes, chunks = row_bytes / 16;
    const int h = blockIdx.y, b = blockIdx.z;
    const int64_t idx = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    const int p = int(idx / chunks), c = int(idx % chunks);
    if (p >= s.tokens) return;
    const int g = orders ? gathers[size_t(orders[h]) * s.tokens + p] : p;
    const int src = inverse ? p : g, dst = inverse ? g : p;
    const char* ip = static_cast<const char*>(in.data) + (b * in.sb + h * in.sh + int64_t(src) * in.st) * elem_bytes;
    char* op = static_cast<char*>(out.data) + (b * out.sb + h * out.sh + int64_t(dst) * out.st) * elem_bytes;
    reinterpret_cast<uint4*>(op)[c] = reinterpret_cast<const uint4*>(ip)[c];
}

template <typename T>
cudaError_t quantize_t(const Shape& s, const PlanView& plan, View q, View k, View v, bool smooth_k,
                       const Quantized& w, cudaStream_t st) {
    // D 128: a CTA per tensor (a fused CTA's 94 registers allowed 2 per SM, whose load, reduce and
    // store phases left DRAM idle: 45% of its bandwidth, 64 registers and 71% split, H200). D 64: fused
    // (52 registers, 4 CTAs per SM; split measured 5-11% slower there).
    if (s.head_dim == 64)
        quantize_kernel<64, T, false><<<dim3(s.nb, s.heads, s.batch), kPrepThreads, 0, st>>>(s, plan, q, k, v, smooth_k, w);
    else
        quantize_kernel<128, T, true><<<dim3(3 * s.nb, s.heads, s.batch), kPrepThreads, 0, st>>>(s, plan, q, k, v, smooth_k, w);
    return cudaGetLastError();
}

}  // namespace

cudaError_t launch_k_mean(DType dt, const Shape& s, View k, float* k_mean, cudaStream_t st) {
    cudaError_t e = cudaMemsetAsync(k_mean, 0, sizeof(float) * size_t(s.batch) * s.heads * s.head_dim, st);
    if (e != cudaSuccess) return e;
    const dim3 grid((KMeanSampling(s.tokens).count + 255) / 256, s.heads, s.batch);
    auto launch = [&](auto tag) {
        using T = decltype(tag);
        if (s.head_dim == 64) k_mean_kernel<64, T><<<grid, 256, 0, st>>>(s, k, k_mean);
        else k_mean_kernel<128, T><<<grid, 256, 0, st>>>(s, k, k_mean);
    };
    switch (dt) {
        case DType::f32: launch(float{}); break;
        case DType::f16: launch(__half{}); break;
        case DType::bf16: launch(__nv_bfloat16{}); break;
    }
    return cudaGetLastError();
}

cudaError_t launch_quantize(DType dt, const Shape& s, const PlanView& plan, View q, View k, View v, bool smooth_k,
                            const Quantized& w, cudaStream_t st) {
    switch (dt) {
        case DType::f32: return quantize_t<float>(s, plan, q, k, v, smooth_k, w, st);
        case DType::f16: return quantize_t<__half>(s, plan, q, k, v, smooth_k, w, st);
        case DType::bf16: return quantize_t<__nv_bfloat16>(s, plan, q, k, v, smooth_k, w, st);
    }
    return cudaErrorInvalidValue;
}

bool kernels_run_on_current_device() {
    // Every kernel file is built for the same architectures, so one kernel's image answers for all: a
    // device older than sm_80, or one the build's CMAKE_CUDA_ARCHITECTURES do not cover (no SASS for
    // it and no PTX it can JIT), has none. Cached per device: cudaFuncGetAttributes is not free.
    constexpr int kMaxDevices = 64;
    static std::atomic<int> known[kMaxDevices] = {};  // 0 not asked yet, 1 runs, 2 does not
    int dev = 0;
    if (cudaGetDevice(&dev) != cudaSuccess || dev < 0) return true;  // the launch will say what is wrong
    int v = dev < kMaxDevices ? known[dev].load(std::memory_order_relaxed) : 0;
    if (v == 0) {
        cudaFuncAttributes a{};
        v = cudaFuncGetAttributes(&a, permute_kernel) == cudaSuccess ? 1 : 2;
        cudaGetLastError();  // the probe's error is an answer, not a sticky state for the caller
        if (dev < kMaxDevices) known[dev].store(v, std::memory_order_relaxed);
    }
    return v == 1;
}

cudaError_t launch_permute(DType dt, const Shape& s, const int32_t* gathers, const uint8_t* orders, bool inverse,
                           View in, MutView out, cudaStream_t st) {
    const int eb = dt == DType::f32 ? 4 : 2;
    const int chunks = s.head_dim * eb / 16;
    const int64_t total = int64_t(s.tokens) * chunks;
    const dim3 grid(unsigned((total + 255) / 256), s.heads, s.batch);
    permute_kernel<<<grid, 256, 0, st>>>(s, eb, gathers, orders, inverse ? 1 : 0, in, out);
    return cudaGetLastError();
}

}  // namespace paro::gpu
