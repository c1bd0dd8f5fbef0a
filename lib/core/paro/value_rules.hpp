#pragma once
// Rules on the values of tensors that both the readers and `paro check` apply (one definition:
// the schemas name them, schema_check.cpp and the readers call these).
#include <cmath>
#include <cstdint>

namespace paro {

// A dump's `attn`: post-softmax rows. Every row must sum to 1 within this tolerance (the rows of
// real bf16/fp16 maps are off by a few 1e-3, but float-to-half conversions that truncate and flush
// small values (libhdf5 1.10's, used by `paro synth --maps`) lose up to 12.5% of diffuse rows; the rule
// refuses rows of zeros and rows of another scale, not rounding; schemas' "row_sum").
constexpr double kAttentionRowSumTolerance = 0.25;

// The first of `rows` rows of `cols` values whose sum is off 1 by more than the tolerance, or -1;
// its sum in *sum.
template <typename T>
int64_t attention_row_off(const T* v, int64_t rows, int64_t cols, double* sum) {
    for (int64_t r = 0; r < rows; ++r) {
        double s = 0;
        for (int64_t c = 0; c < cols; ++c) s += static_cast<double>(v[r * cols + c]);
        if (!(std::abs(s - 1.0) <= kAttentionRowSumTolerance)) {
            *sum = s;
            return r;
        }
    }
    return -1;
}

// Attention mass of a statistics file (`mass`, one [NB, NB] block per head and sample): a block of
// zeros keeps no attention at all, and would give any mask recall 1 (schemas' "nonzero_per_box").
template <typename T>
bool all_zero(const T* v, int64_t n) {
    for (int64_t i = 0; i < n; ++i)
        if (v[i] != 0) return false;
    return true;
}

}  // namespace paro
