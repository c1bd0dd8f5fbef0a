#include "paro/block_mask.hpp"

#include <bitset>

namespace paro {

bool BlockMask::from_bytes(int64_t tiles_per_side, std::vector<uint8_t> bytes, BlockMask& out) {
    if (tiles_per_side < 0 ||
        static_cast<int64_t>(bytes.size()) != (tiles_per_side * tiles_per_side + 7) / 8)
        return false;
    out.nb_ = tiles_per_side;
    out.bytes_ = std::move(bytes);
    // Bits past the last tile are padding and must not count.
    const int64_t tail = out.tiles() & 7;
    if (tail && !out.bytes_.empty()) out.bytes_.back() &= static_cast<uint8_t>((1u << tail) - 1);
    return true;
}

int64_t BlockMask::count() const {
    int64_t n = 0;
    for (uint8_t b : bytes_) n += static_cast<int64_t>(std::bitset<8>(b).count());
    return n;
}

std::vector<int32_t> BlockMask::kept_columns(int64_t r) const {
    std::vector<int32_t> cols;
    for (int64_t c = 0; c < nb_; ++c)
        if (get(r, c)) cols.push_back(static_cast<int32_t>(c));
    return cols;
}

}  // namespace paro
