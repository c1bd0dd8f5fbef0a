#pragma once
// C++ conveniences over the C API for paro's own tools (validate, bench, tests): RAII device
// buffers, a status check that throws, random fills and timing.
#include <cstddef>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "capi_boundary.hpp"
#include "paro_runtime.h"
#include "plan_from_pattern.hpp"

namespace paro::gpu {

// The tools throw the runtime boundary's status-carrying exception.
using RuntimeError = paro::capi::StatusError;

// "fp16" | "bf16" | "fp32" (the tools' spelling of paro_dtype); parse throws InputError naming
// the dtype parameter for anything else.
paro_dtype parse_dtype(const std::string& name);
const char* dtype_name(paro_dtype dtype);

// Throws RuntimeError "context: status: last error" unless s is PARO_OK.
void check(paro_status s, const char* context);
// Throws RuntimeError (PARO_ERROR_OUT_OF_MEMORY or PARO_ERROR_CUDA) "what: name: description" unless
// error (a cudaError_t; int keeps cuda_runtime.h out of this header) is cudaSuccess.
void cuda_check(int error, const char* what);

// Device memory owned by the host side (cudaMalloc / cudaFree), with checked copies.
class DeviceBuffer {
public:
    DeviceBuffer() = default;
    explicit DeviceBuffer(size_t bytes);
    ~DeviceBuffer();
    DeviceBuffer(DeviceBuffer&& o) noexcept : ptr_(o.ptr_), bytes_(o.bytes_) { o.ptr_ = nullptr; o.bytes_ = 0; }
    DeviceBuffer& operator=(DeviceBuffer&& o) noexcept;
    DeviceBuffer(const DeviceBuffer&) = delete;
    DeviceBuffer& operator=(const DeviceBuffer&) = delete;

    void* get() const { return ptr_; }
    template <typename T>
    T* as() const { return static_cast<T*>(ptr_); }
    size_t bytes() const { return bytes_; }
    void upload(const void* host, size_t bytes, size_t offset = 0);
    void download(void* host, size_t bytes, size_t offset = 0) const;
    void fill_byte(int value);

private:
    void* ptr_ = nullptr;
    size_t bytes_ = 0;
};

// Page-locked host memory (cudaHostAlloc, portable across devices): copies from and to it run at
// the link's full rate and asynchronously. Grows on demand; growing drops the contents.
class PinnedBuffer {
public:
    PinnedBuffer() = default;
    ~PinnedBuffer();
    PinnedBuffer(const PinnedBuffer&) = delete;
    PinnedBuffer& operator=(const PinnedBuffer&) = delete;

    void reserve(size_t bytes);
    void* get() const { return ptr_; }
    size_t bytes() const { return bytes_; }

private:
    void* ptr_ = nullptr;
    size_t bytes_ = 0;
};

// Makes `device` current for a scope and restores the caller's device (the engines run inside
// other people's code, PyTorch's among them).
class DeviceGuard {
public:
    explicit DeviceGuard(int device);
    ~DeviceGuard();
    DeviceGuard(const DeviceGuard&) = delete;
    DeviceGuard& operator=(const DeviceGuard&) = delete;

private:
    int prev_ = -1;
};

// Name of the current device ("NVIDIA H100 80GB HBM3"), or "" when none.
std::string device_name();
// Fills n values of dtype at dst with deterministic pseudo-random N(0, sigma) numbers (device side).
void fill_random(void* dst, paro_dtype dtype, size_t n, unsigned long long seed, float sigma);
// Converts n floats to dtype on the device (dst may not alias src).
void convert_from_f32(const float* src, void* dst, paro_dtype dtype, size_t n);
void convert_to_f32(const void* src, paro_dtype dtype, float* dst, size_t n);
void synchronize();

// Times a callable with CUDA events: median milliseconds of `iters` runs after `warmup` runs.
double median_ms_impl(void (*call)(void*), void* ctx, int warmup, int iters);
template <typename F>
double median_ms(F&& f, int warmup, int iters) {
    using G = std::remove_reference_t<F>;
    auto tramp = [](void* c) { (*static_cast<G*>(c))(); };
    return median_ms_impl(tramp, const_cast<void*>(static_cast<const void*>(&f)), warmup, iters);
}

}  // namespace paro::gpu
