#pragma once
// The plain CPU reference for attention: fp32 inputs, double accumulation, no tricks.
// Everything fast (the CUDA runtime, `paro validate`) is checked against this by normalized error.
//
//   out[i] = sum_j softmax_j(scale * q[i] . k[j]) v[j]
//
// Dense: over all keys j. Masked: over the keys whose tile is kept, where tiles are block x block
// squares of the PERMUTED sequence: query i sits at permuted position perm.position[i], key j at
// perm.position[j], and (i, j) is kept when mask.get(position[i] / block, position[j] / block).
// A query whose tile row keeps no key gets an output of zeros (this is the runtime's contract too).
// Inputs and outputs are row-major in ORIGINAL token order: q, k [n, d], v, out [n, dv].
#include <cstddef>
#include <cstdint>

#include "paro/axis_order.hpp"
#include "paro/block_mask.hpp"

namespace paro {

void attention_dense(const float* q, const float* k, const float* v, int64_t n, int64_t d, int64_t dv,
                     double scale, float* out);

// Throws InputError when the mask's tiles_per_side does not match ceil(n / block) or the
// permutation's size is not n.
void attention_masked(const float* q, const float* k, const float* v, int64_t n, int64_t d, int64_t dv,
                      double scale, const Permutation& perm, const BlockMask& mask, int block, float* out);

// Normalized error of `out` against `ref` (n values).
struct ErrorStats {
    double cosine = 1;   // <out, ref> / (|out| |ref|); 1 when both are zero, 0 when one is
    double rel_l1 = 0;   // sum |out - ref| / sum |ref|  (0 when both are zero)
    double rel_l2 = 0;   // |out - ref| / |ref|
    double max_abs = 0;  // max |out - ref|
    double psnr = 0;     // 20 log10(max |ref| / rms(out - ref)) in dB; +inf when identical
    bool finite = true;  // false when out holds NaN or Inf
};
ErrorStats compare_outputs(const float* out, const float* ref, size_t n);

}  // namespace paro
