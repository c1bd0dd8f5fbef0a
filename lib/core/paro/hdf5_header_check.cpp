#include "paro/hdf5_header_check.hpp"

#include <cstring>
#include <optional>
#include <set>
#include <vector>

// Layouts from the HDF5 file format specification (version 3.0), sections IV.A (object headers)
// and IV.A.2.m (attribute message), IV.A.2.b (dataspace), IV.A.2.d (datatype), IV.A.2.q
// (continuation).
namespace paro::h5 {

namespace {

constexpr unsigned kAttributeMessage = 0x000C, kContinuationMessage = 0x0010;
constexpr unsigned kSharedMessageFlag = 0x02;  // the body is a reference to a shared message
// Bounds on what one header may make the check read (a hostile chain of continuations): past
// them the check ends quietly, and libhdf5 has its own limits.
constexpr size_t kMaxChunks = 4096;
constexpr uint64_t kMaxHeaderBytes = uint64_t(64) << 20;
constexpr uint64_t kClaimsEverything = ~uint64_t(0);

uint64_t little_endian(const uint8_t* p, unsigned n) {
    uint64_t v = 0;
    for (unsigned i = 0; i < n; ++i) v |= uint64_t(p[i]) << (8 * i);
    return v;
}

uint64_t add(uint64_t a, uint64_t b) { return a > kClaimsEverything - b ? kClaimsEverything : a + b; }
uint64_t multiply(uint64_t a, uint64_t b) {
    uint64_t r = 0;
    return __builtin_mul_overflow(a, b, &r) ? kClaimsEverything : r;
}

// The number of elements a dataspace message describes; nullopt where it cannot be told.
std::optional<uint64_t> dataspace_points(const uint8_t* p, uint64_t n, unsigned sizeof_size) {
    if (n < 4) return std::nullopt;
    const unsigned version = p[0], rank = p[1];
    uint64_t dims_at = 0;
    if (version == 1) {
        dims_at = 8;  // version, rank, flags, 5 reserved bytes; rank 0 is a scalar
    } else if (version == 2) {
        dims_at = 4;  // version, rank, flags, type
        if (p[3] == 0) return 1;  // scalar
        if (p[3] == 2) return 0;  // null
        if (p[3] != 1) return std::nullopt;
    } else {
        return std::nullopt;
    }
    if (rank > 32 || dims_at + uint64_t(rank) * sizeof_size > n) return std::nullopt;
    uint64_t points = 1;
    for (unsigned r = 0; r < rank; ++r) points = multiply(points, little_endian(p + dims_at + r * sizeof_size, sizeof_size));
    return points;
}

// An attribute message's body (`size` bytes) against what its fields claim.
std::optional<AttributeOverrun> check_attribute(const uint8_t* b, uint64_t size, unsigned sizeof_size) {
    if (size < 8) return std::nullopt;
    const unsigned version = b[0];
    if (version < 1 || version > 3) return std::nullopt;
    const unsigned flags = version >= 2 ? b[1] : 0;  // bit 0: datatype shared, bit 1: dataspace shared
    const uint64_t name_len = little_endian(b + 2, 2), type_len = little_endian(b + 4, 2),
                   space_len = little_endian(b + 6, 2);
    // Version 1 pads each part to 8 bytes; version 3 adds a character-set byte to the header.
    auto part = [&](uint64_t n) { return version == 1 ? (n + 7) / 8 * 8 : n; };
    const uint64_t name_at = version == 3 ? 9 : 8, type_at = name_at + part(name_len),
                   space_at = type_at + part(type_len), data_at = space_at + part(space_len);
    uint64_t data = 0;
    if (!(flags & 1) && !(flags & 2) && type_len >= 8 && type_at + 8 <= size && space_at + space_len <= size) {
        const uint64_t element = little_endian(b + type_at + 4, 4);  // every datatype's size field
        if (const auto points = dataspace_points(b + space_at, space_len, sizeof_size))
            data = multiply(*points, element);
    }
    const uint64_t claim = add(data_at, data);
    if (claim <= size) return std::nullopt;
    std::string name(reinterpret_cast<const char*>(b + std::min(name_at, size)),
                     size_t(std::min(name_len, size - std::min(name_at, size))));
    name = name.substr(0, std::min(name.find('\0'), size_t(64)));
    for (char& c : name)  // raw bytes go into an error line
        if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) c = '?';
    return AttributeOverrun{name, size, claim};
}

struct Chunk {
    uint64_t addr, size;  // where the messages are, and how many bytes of them
};

}  // namespace

std::optional<AttributeOverrun> attribute_message_overrun(const RawFile& file, uint64_t header) {
    uint8_t prefix[40] = {};
    if (!file.read(header, prefix, 16)) return std::nullopt;
    bool v2 = false;
    unsigned message_header = 8;  // version 1: type (2), size (2), flags (1), reserved (3)
    std::vector<Chunk> chunks;
    if (std::memcmp(prefix, "OHDR", 4) == 0) {
        // "OHDR", version, flags, [4 times], [2 attribute phase limits], chunk 0's size (1-8 bytes).
        const unsigned flags = prefix[5], width = 1u << (flags & 3);
        const unsigned at = 6 + (flags & 0x20 ? 16 : 0) + (flags & 0x10 ? 4 : 0);
        if (prefix[4] != 2 || !file.read(header, prefix, at + width)) return std::nullopt;
        v2 = true;
        message_header = flags & 0x04 ? 6 : 4;  // type (1), size (2), flags (1), [creation order (2)]
        chunks.push_back({header + at + width, little_endian(prefix + at, width)});
    } else if (prefix[0] == 1) {
        // Version, reserved, message count (2), reference count (4), header size (4), padding (4).
        chunks.push_back({header + 16, little_endian(prefix + 8, 4)});
    } else {
        return std::nullopt;
    }
    std::set<uint64_t> seen{header};
    uint64_t read = 0;
    for (size_t c = 0; c < chunks.size(); ++c) {
        const Chunk chunk = chunks[c];
        if (chunk.size > kMaxHeaderBytes - read) return std::nullopt;
        read += chunk.size;
        std::vector<uint8_t> bytes(chunk.size);
        if (!file.read(chunk.addr, bytes.data(), bytes.size())) return std::nullopt;
        for (uint64_t at = 0; at + message_header <= chunk.size;) {
            const uint8_t* m = bytes.data() + at;
            const unsigned type = v2 ? m[0] : unsigned(little_endian(m, 2));
            const uint64_t size = little_endian(m + (v2 ? 1 : 2), 2), body = at + message_header;
            const unsigned flags = m[v2 ? 3 : 4];
            if (size > chunk.size - body) return std::nullopt;  // libhdf5 refuses this itself
            if (type == kAttributeMessage && !(flags & kSharedMessageFlag)) {
                if (auto overrun = check_attribute(bytes.data() + body, size, file.sizeof_size)) return overrun;
            }
            if (type == kContinuationMessage && size >= file.sizeof_addr + file.sizeof_size) {
                const uint64_t addr = little_endian(bytes.data() + body, file.sizeof_addr),
                               length = little_endian(bytes.data() + body + file.sizeof_addr, file.sizeof_size);
                if (chunks.size() < kMaxChunks && seen.insert(addr).second) {
                    char signature[4] = {};
                    // Version 2 continuation chunks: "OCHK", the messages, a checksum.
                    if (!v2) chunks.push_back({addr, length});
                    else if (length >= 8 && file.read(addr, signature, 4) && std::memcmp(signature, "OCHK", 4) == 0)
                        chunks.push_back({addr + 4, length - 8});
                }
            }
            at = body + size;
        }
    }
    return std::nullopt;
}

}  // namespace paro::h5
