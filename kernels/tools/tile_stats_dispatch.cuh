#pragma once
// Host-side selection of the kernel instantiation for a (dtype, head dim): the launchers call
// dispatch(dtype, head_dim, f) and f receives a value of the element type and the head dim as an
// std::integral_constant. Only 64 and 128 exist; can_implement rejects the rest before.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <type_traits>

#include "tile_stats_launch.hpp"

namespace paro::gpu::tilestats {

template <typename F>
cudaError_t dispatch(Elt dtype, int head_dim, F&& f) {
    auto by_dim = [&](auto tag) -> cudaError_t {
        if (head_dim == 64) return f(tag, std::integral_constant<int, 64>{});
        return f(tag, std::integral_constant<int, 128>{});
    };
    switch (dtype) {
        case Elt::f16: return by_dim(__half{});
        case Elt::bf16: return by_dim(__nv_bfloat16{});
        case Elt::f32: break;
    }
    return by_dim(float{});
}

}  // namespace paro::gpu::tilestats
