// Host conveniences for paro's tools: device buffers, random fills, conversions, event timing.
#include <algorithm>
#include <string>
#include <vector>

#include "common.cuh"
#include "gpu_helpers.hpp"
#include "paro/error.hpp"

namespace paro::gpu {

void cuda_check(int error, const char* what) {
    const auto e = static_cast<cudaError_t>(error);
    if (e != cudaSuccess)
        throw RuntimeError(e == cudaErrorMemoryAllocation ? PARO_ERROR_OUT_OF_MEMORY : PARO_ERROR_CUDA,
                           std::string(what) + ": " + cudaGetErrorName(e) + ": " + cudaGetErrorString(e));
}

namespace {

__device__ inline uint64_t splitmix(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

template <typename T>
__device__ inline T from_float(float x);
template <>
__device__ inline float from_float<float>(float x) { return x; }
template <>
__device__ inline __half from_float<__half>(float x) { return __float2half_rn(x); }
template <>
__device__ inline __nv_bfloat16 from_float<__nv_bfloat16>(float x) { return __float2bfloat16_rn(x); }
// fp32 needs no conversion kernel (convert_to_f32 copies).
__device__ inline float to_float(__half x) { return __half2float(x); }
__device__ inline float to_float(__nv_bfloat16 x) { return __bfloat162float(x); }

template <typename T>
__global__ void random_kernel(T* dst, size_t n, unsigned long long seed, float sigma) {
    for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
        const uint64_t r = splitmix(seed * 0x100000001B3ull + i);
        // Box-Muller from two 24-bit uniforms.
        const float u1 = (float((r >> 40) & 0xffffff) + 0.5f) / 16777216.0f;
        const float u2 = float((r >> 8) & 0xffffff) / 16777216.0f;
        const float z = sqrtf(-2.0f * logf(u1)) * cospif(2.0f * u2);
        dst[i] = from_float<T>(z * sigma);
    }
}

template <typename T>
__global__ void from_f32_kernel(const float* src, T* dst, size_t n) {
    for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
        dst[i] = from_float<T>(src[i]);
}
template <typename T>
__global__ void to_f32_kernel(const T* src, float* dst, size_t n) {
    for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
        dst[i] = to_float(src[i]);
}

unsigned blocks_for(size_t n) { return unsigned(std::min<size_t>((n + 255) / 256, 65535 * 8)); }

}  // namespace

paro_dtype parse_dtype(const std::string& name) {
    if (name == "fp16") return PARO_FLOAT16;
    if (name == "bf16") return PARO_BFLOAT16;
    if (name == "fp32") return PARO_FLOAT32;
    throw ParameterError("dtype", "must be fp16, bf16 or fp32, got '" + name + "'");
}

const char* dtype_name(paro_dtype dtype) {
    return dtype == PARO_FLOAT32 ? "fp32" : dtype == PARO_BFLOAT16 ? "bf16" : "fp16";
}

void check(paro_status s, const char* context) {
    if (s != PARO_OK)
        throw RuntimeError(s, std::string(context) + ": " + paro_status_string(s) + ": " + paro_last_error());
}

DeviceBuffer::DeviceBuffer(size_t bytes) : bytes_(bytes) {
    if (bytes) cuda_check(cudaMalloc(&ptr_, bytes), "cudaMalloc");
}
DeviceBuffer::~DeviceBuffer() {
    if (ptr_) cudaFree(ptr_);
}
PinnedBuffer::~PinnedBuffer() {
    if (ptr_) cudaFreeHost(ptr_);
}
void PinnedBuffer::reserve(size_t bytes) {
    if (bytes <= bytes_) return;
    if (ptr_) cudaFreeHost(ptr_);
    ptr_ = nullptr;
    bytes_ = 0;
    // Portable: pinned for every device's context, as the buffers of a multi-GPU calibration are
    // filled on one thread and copied by another device's.
    cuda_check(cudaHostAlloc(&ptr_, bytes, cudaHostAllocPortable), "cudaHostAlloc");
    bytes_ = bytes;
}
DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& o) noexcept {
    if (this != &o) {
        if (ptr_) cudaFree(ptr_);
        ptr_ = o.ptr_;
        bytes_ = o.bytes_;
        o.ptr_ = nullptr;
        o.bytes_ = 0;
    }
    return *this;
}
void DeviceBuffer::upload(const void* host, size_t bytes, size_t offset) {
    if (offset + bytes > bytes_) throw RuntimeError(PARO_ERROR_INVALID_ARGUMENT, "upload out of range");
    cuda_check(cudaMemcpy(static_cast<char*>(ptr_) + offset, host, bytes, cudaMemcpyHostToDevice), "upload");
}
void DeviceBuffer::download(void* host, size_t bytes, size_t offset) const {
    if (offset + bytes > bytes_) throw RuntimeError(PARO_ERROR_INVALID_ARGUMENT, "download out of range");
    cuda_check(cudaMemcpy(host, static_cast<const char*>(ptr_) + offset, bytes, cudaMemcpyDeviceToHost), "download");
}
void DeviceBuffer::fill_byte(int value) { cuda_check(cudaMemset(ptr_, value, bytes_), "cudaMemset"); }

DeviceGuard::DeviceGuard(int device) {
    cuda_check(cudaGetDevice(&prev_), "cudaGetDevice");
    if (prev_ == device)
        prev_ = -1;
    else
        cuda_check(cudaSetDevice(device), "cudaSetDevice");
}

DeviceGuard::~DeviceGuard() {
    if (prev_ >= 0) cudaSetDevice(prev_);
}

std::string device_name() {
    int dev = 0, n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0) {
        cudaGetLastError();
        return "";
    }
    cudaDeviceProp p{};
    if (cudaGetDevice(&dev) != cudaSuccess || cudaGetDeviceProperties(&p, dev) != cudaSuccess) return "";
    return p.name;
}

void fill_random(void* dst, paro_dtype dtype, size_t n, unsigned long long seed, float sigma) {
    switch (dtype) {
        case PARO_FLOAT32: random_kernel<<<blocks_for(n), 256>>>(static_cast<float*>(dst), n, seed, sigma); break;
        case PARO_FLOAT16: random_kernel<<<blocks_for(n), 256>>>(static_cast<__half*>(dst), n, seed, sigma); break;
        case PARO_BFLOAT16:
            random_kernel<<<blocks_for(n), 256>>>(static_cast<__nv_bfloat16*>(dst), n, seed, sigma);
            break;
    }
    cuda_check(cudaGetLastError(), "fill_random");
}

void convert_from_f32(const float* src, void* dst, paro_dtype dtype, size_t n) {
    switch (dtype) {
        case PARO_FLOAT32: cuda_check(cudaMemcpy(dst, src, n * 4, cudaMemcpyDeviceToDevice), "copy"); return;
        case PARO_FLOAT16: from_f32_kernel<<<blocks_for(n), 256>>>(src, static_cast<__half*>(dst), n); break;
        case PARO_BFLOAT16: from_f32_kernel<<<blocks_for(n), 256>>>(src, static_cast<__nv_bfloat16*>(dst), n); break;
    }
    cuda_check(cudaGetLastError(), "convert_from_f32");
}

void convert_to_f32(const void* src, paro_dtype dtype, float* dst, size_t n) {
    switch (dtype) {
        case PARO_FLOAT32: cuda_check(cudaMemcpy(dst, src, n * 4, cudaMemcpyDeviceToDevice), "copy"); return;
        case PARO_FLOAT16: to_f32_kernel<<<blocks_for(n), 256>>>(static_cast<const __half*>(src), dst, n); break;
        case PARO_BFLOAT16:
            to_f32_kernel<<<blocks_for(n), 256>>>(static_cast<const __nv_bfloat16*>(src), dst, n);
            break;
    }
    cuda_check(cudaGetLastError(), "convert_to_f32");
}

void synchronize() {
    cuda_check(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
    cuda_check(cudaGetLastError(), "kernel");
}

double median_ms_impl(void (*call)(void*), void* ctx, int warmup, int iters) {
    for (int i = 0; i < warmup; ++i) call(ctx);
    synchronize();
    cudaEvent_t a, b;
    cuda_check(cudaEventCreate(&a), "cudaEventCreate");
    cuda_check(cudaEventCreate(&b), "cudaEventCreate");
    std::vector<float> ts;
    for (int i = 0; i < iters; ++i) {
        cuda_check(cudaEventRecord(a), "cudaEventRecord");
        call(ctx);
        cuda_check(cudaEventRecord(b), "cudaEventRecord");
        cuda_check(cudaEventSynchronize(b), "cudaEventSynchronize");
        float ms = 0;
        cuda_check(cudaEventElapsedTime(&ms, a, b), "cudaEventElapsedTime");
        ts.push_back(ms);
    }
    cudaEventDestroy(a);
    cudaEventDestroy(b);
    synchronize();
    std::sort(ts.begin(), ts.end());
    return ts.empty() ? 0.0 : double(ts[ts.size() / 2]);
}

}  // namespace paro::gpu
