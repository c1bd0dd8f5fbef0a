#pragma once
// BlockMask: which tiles of the (permuted) N x N attention grid the kernel computes.
// Stored as bits, row-major over tiles: tile (r, c) is bit t = r * nb + c, in byte t / 8 at bit
// t % 8 (least significant first). 1 = compute the tile. This is also the pattern file's layout.
#include <cstddef>
#include <cstdint>
#include <vector>

namespace paro {

class BlockMask {
public:
    BlockMask() = default;
    explicit BlockMask(int64_t tiles_per_side)
        : nb_(tiles_per_side), bytes_(static_cast<size_t>((tiles_per_side * tiles_per_side + 7) / 8), 0) {}
    // Takes packed bytes as stored in a pattern file; returns an empty mask on a size mismatch.
    static bool from_bytes(int64_t tiles_per_side, std::vector<uint8_t> bytes, BlockMask& out);

    int64_t tiles_per_side() const { return nb_; }
    int64_t tiles() const { return nb_ * nb_; }
    bool get(int64_t r, int64_t c) const { return get_tile(r * nb_ + c); }
    void set(int64_t r, int64_t c) { set_tile(r * nb_ + c); }
    // By row-major tile index t = r * nb + c (loops over all tiles avoid a division per tile).
    bool get_tile(int64_t t) const { return (bytes_[static_cast<size_t>(t >> 3)] >> (t & 7)) & 1u; }
    void set_tile(int64_t t) { bytes_[static_cast<size_t>(t >> 3)] |= static_cast<uint8_t>(1u << (t & 7)); }
    int64_t count() const;
    double density() const { return nb_ ? static_cast<double>(count()) / static_cast<double>(tiles()) : 0.0; }
    const std::vector<uint8_t>& bytes() const { return bytes_; }
    // Kept column tiles of tile row r, ascending (the runtime's per-row index list).
    std::vector<int32_t> kept_columns(int64_t r) const;

    bool operator==(const BlockMask& o) const { return nb_ == o.nb_ && bytes_ == o.bytes_; }

private:
    int64_t nb_ = 0;
    std::vector<uint8_t> bytes_;
};

}  // namespace paro
