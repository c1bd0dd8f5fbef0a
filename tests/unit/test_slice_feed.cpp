// SliceFeed, the calibration's read stage: requests queued together are served together, each gets
// the slices a per-head read gives, in the form asked for, and a bad head fails its own request only.
#include <hdf5.h>

#include <cstring>
#include <future>

#include "catch.hpp"
#include "paro/dump.hpp"
#include "paro/error.hpp"
#include "paro/slice_feed.hpp"
#include "paro/synth.hpp"
#include "test_helpers.hpp"

using namespace paro;

namespace {

// Overwrites value [s, h, 0, 0] of a half dataset with a NaN.
void poke_nan(const std::string& path, const std::string& dataset, hsize_t s, hsize_t h) {
    const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    const hid_t ds = H5Dopen2(f, dataset.c_str(), H5P_DEFAULT);
    const hid_t type = H5Dget_type(ds), space = H5Dget_space(ds);
    const hsize_t start[4] = {s, h, 0, 0}, one[4] = {1, 1, 1, 1};
    H5Sselect_hyperslab(space, H5S_SELECT_SET, start, nullptr, one, nullptr);
    const hid_t mem = H5Screate_simple(4, one, nullptr);
    const uint16_t nan16 = 0x7e01;
    REQUIRE(H5Dwrite(ds, type, mem, space, H5P_DEFAULT, &nan16) >= 0);
    H5Sclose(mem), H5Sclose(space), H5Tclose(type), H5Dclose(ds), H5Fclose(f);
}

bool same_floats(const std::vector<float>& a, const std::vector<float>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

}  // namespace

TEST_CASE("the slice feed serves queued requests each with its own slices and errors", "[dump]") {
    test::TempDir tmp;
    SynthOptions so = test::synth_options({{2, 4, 6}, 5, TextPosition::prefix}, 3, 5, 2, 3);
    so.float16 = true;
    const std::string path = tmp.file("feed.h5");
    write_synthetic_dump(so, path);
    poke_nan(path, "/layers/1/k", 1, 3);  // layer 1, sample 1, head 3
    const HalfQK halves = GENERATE(HalfQK::widen, HalfQK::keep);
    const int threads = GENERATE(1, 3);

    DumpReader reader(path), reference(path);
    struct Ask {
        int64_t sample, layer, h0, count;
    };
    // Several requests queued at once (the feed takes them in one loop when it finds them queued),
    // one of them holding the bad head.
    const std::vector<Ask> asks = {{0, 0, 0, 2}, {1, 1, 2, 3}, {1, 2, 1, 4}, {0, 1, 0, 5}, {1, 0, 4, 1}};
    std::vector<SliceBatch> batches(asks.size());
    std::vector<std::future<void>> done;
    {
        SliceFeed feed(reader, false, halves, threads);
        for (size_t j = 0; j < asks.size(); ++j)
            done.push_back(feed.request(asks[j].sample, asks[j].layer, asks[j].h0, asks[j].count, batches[j]));
        for (size_t j = 0; j < asks.size(); ++j) {
            const Ask& a = asks[j];
            if (j == 1) {
                try {
                    done[j].get();
                    FAIL("expected an InputError");
                } catch (const InputError& e) {
                    CHECK(std::string(e.what()).find("layer 1, sample 1, head 3") != std::string::npos);
                }
                continue;
            }
            REQUIRE_NOTHROW(done[j].get());
            REQUIRE(batches[j].slices.size() == size_t(a.count));
            for (int64_t i = 0; i < a.count; ++i) {
                const HeadSlice& got = batches[j].slices[size_t(i)];
                const HeadSlice want = reference.read(a.sample, a.layer, a.h0 + i, false);
                CHECK((got.sample == a.sample && got.layer == a.layer && got.head == a.h0 + i));
                CHECK(got.has_halves() == (halves == HalfQK::keep));
                const HeadSlice wide = with_floats(got);
                CHECK((same_floats(wide.q, want.q) && same_floats(wide.k, want.k)));
            }
        }
    }
}
