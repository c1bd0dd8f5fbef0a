#pragma once
// What the CUDA runtime's kernels serve: one definition shared by the kernels, their host side and
// the tools that check a dump or pattern against the runtime (validate, bench, synth).
#include <array>
#include <cstdint>

namespace paro {

constexpr int kRuntimeTile = 64;  // query and key tokens per tile (square tiles)
constexpr std::array<int, 2> kRuntimeHeadDims = {64, 128};

constexpr bool runtime_supports_head_dim(int64_t d) {
    for (int s : kRuntimeHeadDims)
        if (d == s) return true;
    return false;
}
// Tiles per side of a sequence of `tokens` (the last one ragged when tokens is no multiple).
constexpr int64_t tiles_per_side(int64_t tokens, int64_t tile = kRuntimeTile) { return (tokens + tile - 1) / tile; }

}  // namespace paro
