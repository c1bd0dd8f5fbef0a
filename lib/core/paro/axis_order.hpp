#pragma once
// AxisOrder: one of the 3! orders of the video axes (F, H, W), named from outermost (slowest) to
// innermost (fastest). FHW is raster order. Permutation turns an order into index maps.
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "paro/token_layout.hpp"

namespace paro {

enum class AxisOrder : uint8_t { FHW = 0, FWH = 1, HFW = 2, HWF = 3, WFH = 4, WHF = 5 };

constexpr int kNumOrders = 6;
constexpr std::array<AxisOrder, kNumOrders> kAllOrders = {
    AxisOrder::FHW, AxisOrder::FWH, AxisOrder::HFW, AxisOrder::HWF, AxisOrder::WFH, AxisOrder::WHF};

std::string to_string(AxisOrder o);  // "FHW"
// Throws InputError naming `where` for anything but the six names (case-sensitive).
AxisOrder parse_axis_order(const std::string& name, const std::string& file = "",
                           const std::string& where = "order");
inline int index_of(AxisOrder o) { return static_cast<int>(o); }
// Axes (0 = F, 1 = H, 2 = W) from outermost to innermost.
std::array<int, 3> axes_of(AxisOrder o);

// Token permutation of one order over a whole sequence (text tokens fixed in place).
//   gather[p]   = original token at permuted position p   (permuted = original[gather])
//   position[i] = permuted position of original token i   (the inverse map)
struct Permutation {
    AxisOrder order = AxisOrder::FHW;
    std::vector<int32_t> gather;
    std::vector<int32_t> position;

    bool is_identity() const;
};

Permutation make_permutation(const TokenLayout& layout, AxisOrder order);
std::array<Permutation, kNumOrders> make_all_permutations(const TokenLayout& layout);

}  // namespace paro
