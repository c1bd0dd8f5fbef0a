#include "paro/axis_order.hpp"

#include <fmt/format.h>

#include <limits>

#include "paro/error.hpp"

namespace paro {

namespace {
constexpr std::array<const char*, kNumOrders> kNames = {"FHW", "FWH", "HFW", "HWF", "WFH", "WHF"};
}

std::string to_string(AxisOrder o) { return kNames[index_of(o)]; }

AxisOrder parse_axis_order(const std::string& name, const std::string& file, const std::string& where) {
    for (int i = 0; i < kNumOrders; ++i)
        if (name == kNames[i]) return static_cast<AxisOrder>(i);
    throw InputError(file, where,
                     fmt::format("unknown axis order '{}' (expected one of FHW FWH HFW HWF WFH WHF)", name));
}

std::array<int, 3> axes_of(AxisOrder o) {
    const char* n = kNames[index_of(o)];
    std::array<int, 3> axes{};
    for (int k = 0; k < 3; ++k) axes[k] = n[k] == 'F' ? 0 : n[k] == 'H' ? 1 : 2;
    return axes;
}

bool Permutation::is_identity() const {
    for (size_t i = 0; i < gather.size(); ++i)
        if (gather[i] != static_cast<int32_t>(i)) return false;
    return true;
}

Permutation make_permutation(const TokenLayout& layout, AxisOrder order) {
    const int64_t n = layout.tokens();
    if (n > std::numeric_limits<int32_t>::max())
        throw InputError("", "grid", fmt::format("{} tokens exceed the 2^31 supported", n));
    Permutation p;
    p.order = order;
    p.gather.resize(n);
    p.position.resize(n);
    for (int64_t t = 0; t < layout.text_tokens; ++t)
        p.gather[layout.text_begin() + t] = static_cast<int32_t>(layout.text_begin() + t);

    const auto axes = axes_of(order);
    const auto& g = layout.grid;
    int64_t pos = layout.video_begin();
    int64_t c[3];
    for (c[0] = 0; c[0] < g[axes[0]]; ++c[0])
        for (c[1] = 0; c[1] < g[axes[1]]; ++c[1])
            for (c[2] = 0; c[2] < g[axes[2]]; ++c[2]) {
                int64_t fhw[3];
                for (int k = 0; k < 3; ++k) fhw[axes[k]] = c[k];
                p.gather[pos++] = static_cast<int32_t>(layout.token({fhw[0], fhw[1], fhw[2]}));
            }
    for (int64_t i = 0; i < n; ++i) p.position[p.gather[i]] = static_cast<int32_t>(i);
    return p;
}

std::array<Permutation, kNumOrders> make_all_permutations(const TokenLayout& layout) {
    std::array<Permutation, kNumOrders> all;
    for (auto o : kAllOrders) all[index_of(o)] = make_permutation(layout, o);
    return all;
}

}  // namespace paro
