// The raw bounds check of attribute messages (hdf5_header_check) on object headers built byte by
// byte from the format specification: each layout it reads (version 1 and 2 headers, attribute
// messages 1-3, continuation chunks), sound messages passing, and each way a message can claim
// more than it holds being found. Files libhdf5 and h5py write are covered by cli.malformed_inputs.
#include <cstring>
#include <vector>

#include "catch.hpp"
#include "paro/hdf5_header_check.hpp"

using paro::h5::attribute_message_overrun;
using paro::h5::RawFile;

namespace {

using Bytes = std::vector<uint8_t>;

void put(Bytes& b, uint64_t v, unsigned n) {
    REQUIRE(n <= 8);
    for (unsigned i = 0; i < n; ++i) b.push_back(uint8_t(v >> (8 * i)));
}
void pad_to(Bytes& b, size_t multiple) {
    while (b.size() % multiple) b.push_back(0);
}

// An attribute message body: `version` 1-3, a scalar or 1-D dataspace of `dims` elements, an
// 8-byte integer datatype, and `value_bytes` bytes of value (8 x dims when sound). space_len_delta
// corrupts the dataspace's declared length, as the byte flips did.
Bytes attribute(unsigned version, const char* name, std::vector<uint64_t> dims, size_t value_bytes,
                int space_len_delta = 0) {
    Bytes type = {0x10, 0x08, 0, 0};  // fixed-point, version 1, little-endian signed
    put(type, 8, 4);                  // size
    put(type, 0, 2);                  // bit offset
    put(type, 64, 2);                 // precision
    Bytes space = {uint8_t(version == 1 ? 1 : 2), uint8_t(dims.size()), 0,
                   uint8_t(version == 1 ? 0 : (dims.empty() ? 0 : 1))};
    if (version == 1) put(space, 0, 4);
    for (uint64_t d : dims) put(space, d, 8);
    const size_t name_len = std::strlen(name) + 1;
    Bytes b = {uint8_t(version), 0};
    put(b, name_len, 2);
    put(b, type.size(), 2);
    put(b, uint64_t(int64_t(space.size()) + space_len_delta), 2);
    if (version == 3) b.push_back(0);  // character set
    auto part = [&](const uint8_t* p, size_t n) {
        b.insert(b.end(), p, p + n);
        if (version == 1) pad_to(b, 8);
    };
    part(reinterpret_cast<const uint8_t*>(name), name_len);
    part(type.data(), type.size());
    part(space.data(), space.size());
    b.insert(b.end(), value_bytes, uint8_t(0xab));
    if (version == 1) pad_to(b, 8);
    return b;
}

// A version 1 message: type (2), size (2), flags (1), reserved (3), body.
void message_v1(Bytes& chunk, unsigned type, const Bytes& body) {
    put(chunk, type, 2);
    put(chunk, body.size(), 2);
    put(chunk, 0, 4);
    chunk.insert(chunk.end(), body.begin(), body.end());
}

// A file of `bytes` at address 0.
RawFile raw(const Bytes& bytes) {
    RawFile f;
    f.read = [&bytes](uint64_t addr, void* out, size_t n) {
        if (addr > bytes.size() || n > bytes.size() - addr) return false;
        std::memcpy(out, bytes.data() + addr, n);
        return true;
    };
    return f;
}

// A version 1 object header at 0 holding `first`, and a continuation chunk holding `second`.
Bytes header_v1(const Bytes& first, const Bytes& second) {
    Bytes chunk0;
    message_v1(chunk0, 0x0C, first);
    Bytes cont_body;
    const uint64_t cont_addr = 16 + chunk0.size() + 8 + 16;
    Bytes cont;
    message_v1(cont, 0x0C, second);
    put(cont_body, cont_addr, 8);
    put(cont_body, cont.size(), 8);
    message_v1(chunk0, 0x10, cont_body);
    Bytes file = {1, 0};
    put(file, 2, 2);              // messages
    put(file, 1, 4);              // reference count
    put(file, chunk0.size(), 4);  // chunk 0's size
    put(file, 0, 4);              // padding
    file.insert(file.end(), chunk0.begin(), chunk0.end());
    file.insert(file.end(), cont.begin(), cont.end());
    return file;
}

// A version 2 object header ("OHDR", creation order tracked: 6-byte message headers) at 0.
Bytes header_v2(const Bytes& body) {
    Bytes chunk0;
    chunk0.push_back(0x0C);
    put(chunk0, body.size(), 2);
    chunk0.push_back(0);  // flags
    put(chunk0, 0, 2);    // creation order
    chunk0.insert(chunk0.end(), body.begin(), body.end());
    Bytes file = {'O', 'H', 'D', 'R', 2, 0x04 | 0x01};  // creation order tracked, 2-byte chunk size
    put(file, chunk0.size(), 2);
    file.insert(file.end(), chunk0.begin(), chunk0.end());
    put(file, 0, 4);  // checksum (libhdf5 verifies it, not this check)
    return file;
}

// A version 2 header at 0 with the times and attribute phase fields present (flags 0x20 | 0x10)
// and a 1-byte chunk size, whose chunk 0 continues into an "OCHK" chunk holding `second`; `shared`
// marks chunk 0's attribute message as a shared one (its body a reference, not checked).
Bytes header_v2_continued(const Bytes& first, const Bytes& second, bool shared = false) {
    const auto message = [](Bytes& chunk, unsigned type, const Bytes& body, unsigned flags = 0) {
        chunk.push_back(uint8_t(type));
        put(chunk, body.size(), 2);
        chunk.push_back(uint8_t(flags));
        chunk.insert(chunk.end(), body.begin(), body.end());
    };
    Bytes chunk0;
    message(chunk0, 0x0C, first, shared ? 0x02 : 0);
    const size_t prefix = 6 + 16 + 4 + 1;
    const uint64_t ochk = prefix + chunk0.size() + 4 + 16 + 4;  // after chunk 0's continuation and checksum
    Bytes cont_body;
    put(cont_body, ochk, 8);
    Bytes ochk_chunk = {'O', 'C', 'H', 'K'};
    message(ochk_chunk, 0x0C, second);
    put(ochk_chunk, 0, 4);  // checksum
    put(cont_body, ochk_chunk.size(), 8);
    message(chunk0, 0x10, cont_body);
    Bytes file = {'O', 'H', 'D', 'R', 2, 0x20 | 0x10};
    put(file, 0, 8);  // times (four of 4 bytes)
    put(file, 0, 8);
    put(file, 8, 2);   // max compact
    put(file, 6, 2);   // min dense
    file.push_back(uint8_t(chunk0.size()));
    file.insert(file.end(), chunk0.begin(), chunk0.end());
    put(file, 0, 4);
    REQUIRE(file.size() == ochk);
    file.insert(file.end(), ochk_chunk.begin(), ochk_chunk.end());
    return file;
}

}  // namespace

TEST_CASE("version 2 headers: optional prefix fields, OCHK continuations, shared messages", "[header_check]") {
    const Bytes good = attribute(3, "grid", {3}, 24), bad = attribute(3, "text_tokens", {}, 8, 32000);
    CHECK_FALSE(attribute_message_overrun(raw(header_v2_continued(good, good)), 0));
    const auto found = attribute_message_overrun(raw(header_v2_continued(good, bad)), 0);
    REQUIRE(found);
    CHECK(found->name == "text_tokens");
    CHECK(attribute_message_overrun(raw(header_v2_continued(bad, good)), 0));
    // A shared attribute message's body is a reference to the shared one: not an attribute message.
    CHECK_FALSE(attribute_message_overrun(raw(header_v2_continued(bad, good, true)), 0));
    // A continuation whose chunk does not start with OCHK is not followed.
    Bytes wrong = header_v2_continued(good, bad);
    wrong[wrong.size() - bad.size() - 4 - 4 - 4] = 'X';
    CHECK_FALSE(attribute_message_overrun(raw(wrong), 0));
}

TEST_CASE("sound attribute messages of every version pass", "[header_check]") {
    for (unsigned v : {1u, 2u, 3u}) {
        const Bytes a = attribute(v, "grid", {3}, 24), b = attribute(v, "text_tokens", {}, 8);
        const Bytes f1 = header_v1(a, b), f2 = header_v2(b);
        CHECK_FALSE(attribute_message_overrun(raw(f1), 0));
        CHECK_FALSE(attribute_message_overrun(raw(f2), 0));
    }
}

TEST_CASE("a dataspace length past the message is found, in a continuation chunk too", "[header_check]") {
    for (unsigned v : {1u, 2u, 3u}) {
        const Bytes bad = attribute(v, "text_tokens", {}, 8, 32000), good = attribute(v, "grid", {3}, 24);
        const Bytes f1 = header_v1(good, bad);
        const auto found = attribute_message_overrun(raw(f1), 0);
        REQUIRE(found);
        CHECK(found->name == "text_tokens");
        CHECK(found->holds == bad.size());
        CHECK(found->claims > 32000);
        CHECK(attribute_message_overrun(raw(header_v2(bad)), 0));
    }
}

TEST_CASE("a value larger than the message is found: one length a little off, dims too large", "[header_check]") {
    // A dataspace length 8 bytes too long moves the value 8 bytes on: still inside a padded
    // version 1 message's name, but its value then ends past the message.
    const Bytes shifted = attribute(2, "block_q", {}, 8, 8);
    CHECK(attribute_message_overrun(raw(header_v2(shifted)), 0));
    // A dimension claiming 2^40 elements of 8 bytes, and one whose product overflows 64 bits.
    const auto big = attribute_message_overrun(raw(header_v2(attribute(3, "grid", {uint64_t(1) << 40}, 24))), 0);
    REQUIRE(big);
    CHECK(big->claims > (uint64_t(1) << 43));
    const auto wrap = attribute_message_overrun(raw(header_v2(attribute(3, "grid", {~uint64_t(0), 3}, 24))), 0);
    REQUIRE(wrap);
    CHECK(wrap->claims == ~uint64_t(0));
}

TEST_CASE("raw bytes the check cannot follow end it quietly", "[header_check]") {
    const Bytes bad = attribute(1, "x", {}, 8, 32000);
    Bytes f = header_v1(attribute(1, "y", {}, 8), bad);
    CHECK(attribute_message_overrun(raw(f), 0));
    Bytes unknown = f;
    unknown[0] = 7;  // no such header version: libhdf5's to refuse
    CHECK_FALSE(attribute_message_overrun(raw(unknown), 0));
    Bytes cut(f.begin(), f.begin() + 40);  // the header runs past the end of the file
    CHECK_FALSE(attribute_message_overrun(raw(cut), 0));
    // A continuation pointing at its own header does not loop.
    Bytes loop = f;
    const size_t cont_body = 16 + 8 + attribute(1, "y", {}, 8).size() + 8;
    std::memset(loop.data() + cont_body, 0, 8);
    CHECK_FALSE(attribute_message_overrun(raw(loop), 0));
}
