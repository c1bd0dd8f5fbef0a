#pragma once
// Device helpers shared by the kernels: 8-wide loads/stores of fp32/fp16/bf16, warp reductions.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "launch.hpp"

namespace paro::gpu {

// as_float(kMagic + x) = 1.5 * 2^23 + x for |x| < 2^22: integers become floats with one add
// (softmax.cuh; prep.cu stores -kMagicF * v_scale for the O update, epilogue.cuh).
constexpr int kMagic = 0x4B400000;  // bits of 1.5 * 2^23
constexpr float kMagicF = 12582912.0f;

template <typename T>
struct Elem;
// 8 consecutive elements as loaded from memory (16 or 32 bytes), converted to float later: lets a
// kernel issue all its loads before it needs any of them.
struct Raw8x2 {
    uint4 a;
};
struct Raw8x4 {
    float4 a, b;
};

template <>
struct Elem<float> {
    using Raw = Raw8x4;
    __device__ static inline Raw load_raw(const float* p) {
        return Raw{reinterpret_cast<const float4*>(p)[0], reinterpret_cast<const float4*>(p)[1]};
    }
    __device__ static inline void to_float(const Raw& r, float (&x)[8]) {
        x[0] = r.a.x; x[1] = r.a.y; x[2] = r.a.z; x[3] = r.a.w;
        x[4] = r.b.x; x[5] = r.b.y; x[6] = r.b.z; x[7] = r.b.w;
    }
    __device__ static inline void load8(const float* p, float (&x)[8]) {
        const float4 a = reinterpret_cast<const float4*>(p)[0];
        const float4 b = reinterpret_cast<const float4*>(p)[1];
        x[0] = a.x; x[1] = a.y; x[2] = a.z; x[3] = a.w;
        x[4] = b.x; x[5] = b.y; x[6] = b.z; x[7] = b.w;
    }
    __device__ static inline void store2(float* p, float a, float b) { *reinterpret_cast<float2*>(p) = make_float2(a, b); }
};
template <>
struct Elem<__half> {
    using Raw = Raw8x2;
    __device__ static inline Raw load_raw(const __half* p) { return Raw{*reinterpret_cast<const uint4*>(p)}; }
    __device__ static inline void to_float(const Raw& r, float (&x)[8]) {
        const __half2* h = reinterpret_cast<const __half2*>(&r.a);
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            const float2 f = __half22float2(h[i]);
            x[2 * i] = f.x;
            x[2 * i + 1] = f.y;
        }
    }
    __device__ static inline void load8(const __half* p, float (&x)[8]) {
        const uint4 u = *reinterpret_cast<const uint4*>(p);
        const __half2* h = reinterpret_cast<const __half2*>(&u);
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            const float2 f = __half22float2(h[i]);
            x[2 * i] = f.x;
            x[2 * i + 1] = f.y;
        }
    }
    __device__ static inline void store2(__half* p, float a, float b) {
        *reinterpret_cast<__half2*>(p) = __floats2half2_rn(a, b);
    }
};
template <>
struct Elem<__nv_bfloat16> {
    using Raw = Raw8x2;
    __device__ static inline Raw load_raw(const __nv_bfloat16* p) { return Raw{*reinterpret_cast<const uint4*>(p)}; }
    __device__ static inline void to_float(const Raw& r, float (&x)[8]) {
        const __nv_bfloat162* h = reinterpret_cast<const __nv_bfloat162*>(&r.a);
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            const float2 f = __bfloat1622float2(h[i]);
            x[2 * i] = f.x;
            x[2 * i + 1] = f.y;
        }
    }
    __device__ static inline void load8(const __nv_bfloat16* p, float (&x)[8]) {
        const uint4 u = *reinterpret_cast<const uint4*>(p);
        const __nv_bfloat162* h = reinterpret_cast<const __nv_bfloat162*>(&u);
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            const float2 f = __bfloat1622float2(h[i]);
            x[2 * i] = f.x;
            x[2 * i + 1] = f.y;
        }
    }
    __device__ static inline void store2(__nv_bfloat16* p, float a, float b) {
        *reinterpret_cast<__nv_bfloat162*>(p) = __floats2bfloat162_rn(a, b);
    }
};

// A tile of rows of RB = 64 or 128 bytes (one key of K, or one channel of V^T), swizzled the way
// wgmma's 64B / 128B K-major modes read it from shared memory: 16-byte chunk c of row r sits
// at chunk c ^ (bits 7.. of the row's address), so the eight rows a core matrix spans fall in
// different banks. (The unswizzled core-matrix layout reads at about 15% of the tensor cores' rate
// here: every core matrix starts on bank 0.) The tile must start on a 1024-byte boundary. The prep
// kernel stores the K and V^T tiles of the workspace in this layout (Quantized), so a tile is one
// contiguous bulk copy into shared memory on Hopper; the sm_80 kernels un-swizzle as they copy.
template <int RB>
struct SwizzledRows {
    static_assert(RB == 64 || RB == 128, "64B or 128B swizzle");
    static constexpr uint64_t kMode = RB == 128 ? 1 : 2;  // descriptor bits 62-63
    __host__ __device__ static constexpr uint32_t offset(uint32_t r, uint32_t c) {
        return r * RB + ((c ^ (RB == 128 ? (r & 7) : ((r >> 1) & 3))) << 4);
    }
};

__device__ inline float warp_max(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}
__device__ inline float warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// Round to nearest, clamp to [-127, 127].
__device__ inline int quant_s8(float x) {
    int q = __float2int_rn(x);
    return max(-127, min(127, q));
}
__device__ inline uint32_t pack_s8x4(int a, int b, int c, int d) {
    return (uint32_t(a) & 0xffu) | ((uint32_t(b) & 0xffu) << 8) | ((uint32_t(c) & 0xffu) << 16) |
           ((uint32_t(d) & 0xffu) << 24);
}

}  // namespace paro::gpu
