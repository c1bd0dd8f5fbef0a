// DumpReader's group reads (read_raw + decode) against per-head reads, its order-independent
// checksum against a CRC of the slices concatenated in (layer, head, sample) order, and NaN/Inf
// in fp16 and float32 dumps.
#include <hdf5.h>
#include <sys/stat.h>
#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <random>

#include "catch.hpp"
#include "paro/direct_reads.hpp"
#include "paro/dump.hpp"
#include "paro/error.hpp"
#include "paro/synth.hpp"
#include "test_helpers.hpp"

using namespace paro;

namespace {

std::string synth(const test::TempDir& tmp, bool half) {
    SynthOptions so = test::synth_options({{2, 4, 6}, 5, TextPosition::prefix}, 2, 3, 2, 3);
    so.float16 = half;
    const std::string path = tmp.file(half ? "f16.h5" : "f32.h5");
    write_synthetic_dump(so, path);
    return path;
}

bool same_floats(const std::vector<float>& a, const std::vector<float>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// Overwrites one stored value of a dataset [S, H, N, D] with the given bits (fp16 or float32).
void poke(const std::string& path, const std::string& dataset, hsize_t s, hsize_t h, hsize_t n, hsize_t d,
          const void* value) {
    const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    const hid_t ds = H5Dopen2(f, dataset.c_str(), H5P_DEFAULT);
    const hid_t type = H5Dget_type(ds), space = H5Dget_space(ds);
    const hsize_t start[4] = {s, h, n, d}, one[4] = {1, 1, 1, 1};
    H5Sselect_hyperslab(space, H5S_SELECT_SET, start, nullptr, one, nullptr);
    const hid_t mem = H5Screate_simple(4, one, nullptr);
    REQUIRE(H5Dwrite(ds, type, mem, space, H5P_DEFAULT, value) >= 0);
    H5Sclose(mem), H5Sclose(space), H5Tclose(type), H5Dclose(ds), H5Fclose(f);
}

}  // namespace

TEST_CASE("group reads decode to the per-head slices", "[dump]") {
    test::TempDir tmp;
    const std::string path = synth(tmp, GENERATE(true, false));
    DumpReader reader(path);
    RawHeads raw;
    reader.read_raw(1, 1, 1, 2, true, raw);
    REQUIRE(raw.tensors.size() == 3);  // q, k, v
    for (int64_t i = 0; i < 2; ++i) {
        HeadSlice got;
        got.q.assign(7, 1.f);  // stale buffers are overwritten, not appended to
        reader.decode(raw, i, got);
        const HeadSlice want = reader.read(1, 1, 1 + i, true);
        CHECK(got.head == 1 + i);
        CHECK(got.value_dim == want.value_dim);
        CHECK(same_floats(got.q, want.q));
        CHECK(same_floats(got.k, want.k));
        CHECK(same_floats(got.v, want.v));
    }
}

namespace {

// Head h of sample s of a [S, H, N, D] dataset as its stored 16-bit patterns, read by libhdf5 in
// the file's own type (no conversion).
std::vector<uint16_t> stored_bits(const std::string& path, const std::string& dataset, hsize_t s, hsize_t h) {
    const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
    const hid_t ds = H5Dopen2(f, dataset.c_str(), H5P_DEFAULT);
    const hid_t type = H5Dget_type(ds), space = H5Dget_space(ds);
    REQUIRE(H5Tget_size(type) == 2);
    hsize_t dims[4];
    H5Sget_simple_extent_dims(space, dims, nullptr);
    const hsize_t start[4] = {s, h, 0, 0}, count[4] = {1, 1, dims[2], dims[3]};
    H5Sselect_hyperslab(space, H5S_SELECT_SET, start, nullptr, count, nullptr);
    const hid_t mem = H5Screate_simple(4, count, nullptr);
    std::vector<uint16_t> out(dims[2] * dims[3]);
    REQUIRE(H5Dread(ds, type, mem, space, H5P_DEFAULT, out.data()) >= 0);
    H5Sclose(mem), H5Sclose(space), H5Tclose(type), H5Dclose(ds), H5Fclose(f);
    return out;
}

}  // namespace

TEST_CASE("halves kept by decode are the stored bits, checksummed as their floats", "[dump]") {
    test::TempDir tmp;
    const bool half = GENERATE(true, false);
    // The small dump's heads fit one of decode's 16,384-value blocks; 800 tokens x 64 take four,
    // the last one partial.
    const bool blocks = GENERATE(false, true);
    std::string path = synth(tmp, half);
    if (blocks) {
        SynthOptions so = test::synth_options({{4, 12, 16}, 32, TextPosition::prefix}, 2, 3, 2, 5);
        so.float16 = half;
        path = tmp.file("blocks.h5");
        write_synthetic_dump(so, path);
    }
    DumpReader widening(path), keeping(path);
    RawHeads raw;
    widening.read_raw(1, 1, 0, 3, true, raw);
    REQUIRE(size_t(widening.info().tokens() * widening.info().layers[1].head_dim) > (blocks ? 3 * 16384 : 0));
    for (int64_t i = 0; i < 3; ++i) {
        HeadSlice floats, kept;
        kept.q.assign(5, 2.f);  // stale buffers of the other form are dropped
        widening.decode(raw, i, floats);
        keeping.decode(raw, i, kept, HalfQK::keep);
        CHECK(same_floats(kept.v, floats.v));  // v is never kept as halves
        if (half) {
            CHECK(kept.has_halves());
            CHECK((kept.q.empty() && kept.k.empty()));
            CHECK(kept.q_half == stored_bits(path, "/layers/1/q", 1, uint64_t(i)));
            CHECK(kept.k_half == stored_bits(path, "/layers/1/k", 1, uint64_t(i)));
            const HeadSlice wide = with_floats(kept);
            CHECK((same_floats(wide.q, floats.q) && same_floats(wide.k, floats.k) && !wide.has_halves()));
        } else {  // float32 dumps have no halves to keep
            CHECK(!kept.has_halves());
            CHECK((same_floats(kept.q, floats.q) && same_floats(kept.k, floats.k)));
        }
        // The same slice decoded again to floats holds no stale halves.
        if (half) {
            widening.decode(raw, i, kept);
            CHECK((!kept.has_halves() && same_floats(kept.q, floats.q)));
        }
    }
    CHECK(keeping.checksum() == widening.checksum());
}

TEST_CASE("a dump of half q and float k keeps only q as halves", "[dump]") {
    test::TempDir tmp;
    const std::string path = synth(tmp, true);
    {  // /layers/0/k rewritten as float32, the same values
        const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
        const hid_t ds = H5Dopen2(f, "/layers/0/k", H5P_DEFAULT);
        const hid_t space = H5Dget_space(ds);
        hsize_t dims[4];
        REQUIRE(H5Sget_simple_extent_dims(space, dims, nullptr) == 4);
        std::vector<float> values(dims[0] * dims[1] * dims[2] * dims[3]);
        REQUIRE(H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()) >= 0);
        H5Dclose(ds);
        REQUIRE(H5Ldelete(f, "/layers/0/k", H5P_DEFAULT) >= 0);
        const hid_t out = H5Dcreate2(f, "/layers/0/k", H5T_IEEE_F32LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        REQUIRE(H5Dwrite(out, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()) >= 0);
        H5Dclose(out), H5Sclose(space), H5Fclose(f);
    }
    DumpReader reader(path);
    RawHeads raw;
    reader.read_raw(0, 0, 0, 2, false, raw);
    HeadSlice kept, floats;
    reader.decode(raw, 1, kept, HalfQK::keep);
    reader.decode(raw, 1, floats);
    CHECK((!kept.q_half.empty() && kept.q.empty()));
    CHECK((kept.k_half.empty() && same_floats(kept.k, floats.k)));
    const HeadSlice wide = with_floats(kept);
    CHECK((same_floats(wide.q, floats.q) && same_floats(wide.k, floats.k) && !wide.has_halves()));
}

TEST_CASE("the dump checksum does not depend on the read order", "[dump]") {
    test::TempDir tmp;
    const std::string path = synth(tmp, true);
    const bool with_v = GENERATE(false, true);
    // Expected: CRC-32 of every slice's floats in (layer, head, sample) order, q, k, v in a slice.
    uLong want = crc32(0, nullptr, 0);
    {
        DumpReader r(path);
        for (int64_t l = 0; l < 2; ++l)
            for (int64_t h = 0; h < 3; ++h)
                for (int64_t s = 0; s < 2; ++s) {
                    const HeadSlice x = r.read(s, l, h, with_v);
                    for (const auto* t : {&x.q, &x.k, &x.v})
                        if (!t->empty())  // zlib: a null buffer restarts the CRC
                            want = crc32(want, reinterpret_cast<const Bytef*>(t->data()),
                                         static_cast<uInt>(t->size() * sizeof(float)));
                }
    }
    std::vector<std::array<int64_t, 3>> order;
    for (int64_t l = 0; l < 2; ++l)
        for (int64_t h = 0; h < 3; ++h)
            for (int64_t s = 0; s < 2; ++s) order.push_back({s, l, h});
    std::shuffle(order.begin(), order.end(), std::mt19937(GENERATE(1u, 2u, 3u)));
    DumpReader shuffled(path);
    for (const auto& [s, l, h] : order) (void)shuffled.read(s, l, h, with_v);
    (void)shuffled.read(0, 0, 0, with_v);  // reading a slice twice counts it once
    CHECK(shuffled.checksum() == static_cast<uint32_t>(want));
}

TEST_CASE("NaN and Inf in a stored head are named when it is decoded", "[dump]") {
    test::TempDir tmp;
    const bool half = GENERATE(true, false);
    const std::string path = synth(tmp, half);
    const uint16_t nan16 = 0x7e00, inf16 = 0xfc00;
    const float inf32 = -std::numeric_limits<float>::infinity();
    if (half)
        poke(path, "/layers/1/k", 1, 2, 9, 3, &inf16), poke(path, "/layers/0/q", 0, 0, 0, 0, &nan16);
    else
        poke(path, "/layers/1/k", 1, 2, 9, 3, &inf32);
    DumpReader reader(path);
    RawHeads raw;
    reader.read_raw(1, 1, 0, 3, false, raw);
    HeadSlice s;
    const HalfQK halves = GENERATE(HalfQK::widen, HalfQK::keep);
    reader.decode(raw, 1, s, halves);  // the other heads of the group are fine
    try {
        reader.decode(raw, 2, s, halves);
        FAIL("expected an InputError");
    } catch (const InputError& e) {
        const std::string what = e.what();
        CHECK(what.find("/layers/1/k") != std::string::npos);
        CHECK(what.find("layer 1, sample 1, head 2") != std::string::npos);
    }
    if (half) CHECK_THROWS_AS(reader.read(0, 0, 0, false), InputError);
}

namespace {

// Replaces a root string attribute by a fixed-length one of exactly the value's length, padded as
// given (h5py writes np.bytes_ values null-padded).
void set_fixed_string_attr(const std::string& path, const char* name, const std::string& value, H5T_str_t pad) {
    const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    H5Adelete(f, name);
    const hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, value.size());
    H5Tset_strpad(type, pad);
    const hid_t space = H5Screate(H5S_SCALAR);
    const hid_t a = H5Acreate2(f, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
    REQUIRE(H5Awrite(a, type, value.data()) >= 0);
    H5Aclose(a), H5Sclose(space), H5Tclose(type), H5Fclose(f);
}

}  // namespace

TEST_CASE("fixed-length string attributes keep every character", "[dump]") {
    test::TempDir tmp;
    const std::string path = synth(tmp, true);
    for (H5T_str_t pad : {H5T_STR_NULLPAD, H5T_STR_NULLTERM, H5T_STR_SPACEPAD}) {
        INFO("padding " << int(pad));
        set_fixed_string_attr(path, "text_position", "suffix", pad);
        set_fixed_string_attr(path, "model", "CogVideoX-5B", pad);
        const DumpReader r(path);
        if (pad != H5T_STR_NULLTERM) {  // a null-terminated type of the value's length holds one less
            CHECK(r.info().layout.text_position == TextPosition::suffix);
            CHECK(r.info().model == "CogVideoX-5B");
        }
    }
    set_fixed_string_attr(path, "model", std::string(20000, 'x'), H5T_STR_NULLPAD);
    CHECK_THROWS_WITH(DumpReader(path), Catch::Contains("attribute model") && Catch::Contains("at most 16384"));
}

TEST_CASE("special files are refused before HDF5 opens them", "[dump]") {
    test::TempDir tmp;
    const std::string fifo = tmp.file("fifo.h5");
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    CHECK_THROWS_WITH(DumpReader(fifo), Catch::Contains("is not a regular file"));
}

// Direct reads (pread at libhdf5's offsets) in the layouts they take, with and without a user
// block (libhdf5 before 1.14.4 gives chunk addresses without it): every head as libhdf5 reads it,
// and the direct path really taken; a layout they do not take falls back.
TEST_CASE("direct reads give libhdf5's bytes and are taken where they apply", "[dump]") {
    test::TempDir tmp;
    const hsize_t S = 2, H = 3, N = 50, D = 8;
    std::vector<uint16_t> values(S * H * N * D);
    for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<uint16_t>((i * 2654435761u) >> 20) & 0x3bff;
    struct Layout {
        const char* name;
        hsize_t userblock;
        bool chunked, compressed, direct;
    };
    for (const Layout& l : {Layout{"contiguous", 0, false, false, true}, Layout{"chunked", 0, true, false, true},
                            Layout{"contiguous, user block", 512, false, false, true},
                            Layout{"chunked, user block", 1024, true, false, true},
                            Layout{"compressed", 0, true, true, false}}) {
        INFO(l.name);
        const std::string path = tmp.file(std::string("d") + std::to_string(l.userblock) + (l.chunked ? "c" : "") +
                                          (l.compressed ? "z" : "") + ".h5");
        {
            h5::Handle fcpl(H5Pcreate(H5P_FILE_CREATE));
            if (l.userblock) H5Pset_userblock(fcpl.get(), l.userblock);
            h5::Handle f(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, fcpl.get(), H5P_DEFAULT));
            const hsize_t dims[4] = {S, H, N, D}, chunk[4] = {1, 1, N, D};
            h5::Handle space(H5Screate_simple(4, dims, nullptr)), dcpl(H5Pcreate(H5P_DATASET_CREATE));
            if (l.chunked) H5Pset_chunk(dcpl.get(), 4, chunk);
            if (l.compressed) H5Pset_deflate(dcpl.get(), 4);
            h5::Handle d(H5Dcreate2(f.get(), "q", h5::half_type(), space.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT));
            REQUIRE(H5Dwrite(d.get(), h5::half_type(), H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()) >= 0);
        }
        const h5::File file = h5::File::open_read(path);
        DirectReads direct(path);
        std::vector<uint16_t> got(N * D);
        for (hsize_t s = 0; s < S; ++s)
            for (hsize_t h = 0; h < H; ++h) {
                const bool taken = direct.read(file, "/q", true, int64_t(s), int64_t(h), int64_t(N), int64_t(D), got.data());
                CHECK(taken == l.direct);
                if (taken)
                    CHECK(std::equal(got.begin(), got.end(), values.begin() + long((s * H + h) * N * D)));
            }
        CHECK(direct.direct_count() == (l.direct ? int64_t(S * H) : 0));
    }
}
