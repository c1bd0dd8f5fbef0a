// The calibrator behind the TileStatsBackend seam: a test double that batches several heads and
// counts calls must drive it to exactly the pattern the CPU engine gives, and a backend built for
// another geometry is refused.
#include <algorithm>
#include <cstring>
#include <memory>

#include "catch.hpp"
#include "paro/calibrator.hpp"
#include "paro/error.hpp"
#include "paro/summary.hpp"
#include "paro/synth.hpp"
#include "paro/tile_stats.hpp"
#include "test_helpers.hpp"

using namespace paro;

namespace {

// Wraps the CPU engine, asks for `batch` heads per call and records what it was given.
class CountingBackend : public TileStatsBackend {
public:
    CountingBackend(const TokenLayout& layout, TileStatsOptions options, int64_t batch)
        : TileStatsBackend(layout, options), cpu_(layout, options), batch_(batch) {}
    std::string describe() const override { return "counting test double"; }
    int64_t batch_heads() const override { return batch_; }
    double working_bytes() const override { return cpu_.working_bytes(); }
    std::vector<SixOrderStats> compute_batch(const std::vector<HeadSlice>& heads) override {
        ++calls;
        max_heads = std::max(max_heads, static_cast<int64_t>(heads.size()));
        for (const HeadSlice& h : heads) seen.push_back({h.layer, h.head, h.sample});
        return cpu_.compute_batch(heads);
    }

    int64_t calls = 0, max_heads = 0;
    std::vector<std::array<int64_t, 3>> seen;  // (layer, head, sample) in call order

private:
    TileStatsEngine cpu_;
    int64_t batch_;
};

bool same_bits(double a, double b) { return std::memcmp(&a, &b, sizeof a) == 0; }

void require_identical(const Pattern& a, const Pattern& b) {
    REQUIRE(a.layers.size() == b.layers.size());
    for (size_t l = 0; l < a.layers.size(); ++l) {
        REQUIRE(a.layers[l].heads.size() == b.layers[l].heads.size());
        for (size_t h = 0; h < a.layers[l].heads.size(); ++h) {
            const HeadPattern &x = a.layers[l].heads[h], &y = b.layers[l].heads[h];
            INFO("layer " << l << " head " << h);
            CHECK(x.order == y.order);
            CHECK(x.sample_order == y.sample_order);
            REQUIRE(x.masks.size() == y.masks.size());
            for (size_t t = 0; t < x.masks.size(); ++t) CHECK(x.masks[t] == y.masks[t]);
            for (size_t t = 0; t < x.recall.size(); ++t) CHECK(same_bits(x.recall[t], y.recall[t]));
            for (size_t s = 0; s < x.sample_recall.size(); ++s)
                CHECK(same_bits(x.sample_recall[s], y.sample_recall[s]));
            for (int o = 0; o < kNumOrders; ++o) {
                const auto u = metric_values(x.scores[o]), v = metric_values(y.scores[o]);
                for (int k = 0; k < kNumMetrics; ++k) CHECK(same_bits(u[k], v[k]));
            }
        }
    }
}

}  // namespace

TEST_CASE("a batching test double drives the calibrator to the CPU engine's pattern", "[backend]") {
    test::TempDir tmp;
    const SynthOptions so = test::synth_options({{2, 8, 12}, 16, TextPosition::prefix}, 2, 5, 3, 7);
    const std::string path = tmp.file("d.h5");
    write_synthetic_dump(so, path);
    CalibrateOptions co;
    co.tiles.block = 16;
    co.mask.density = 0.4;
    co.slots = 2;

    DumpReader plain(path);
    const Pattern expected = calibrate(plain, co);

    DumpReader reader(path);
    CountingBackend backend(reader.info().layout, co.tiles, 3);
    const Pattern got = calibrate(reader, co, backend);
    require_identical(expected, got);
    CHECK(got.provenance.source_checksum.rfind("crc32:", 0) == 0);

    // 5 heads in groups of 3 and 2, each group once per sample, in every layer.
    CHECK(backend.calls == so.layers * 2 * so.samples);
    CHECK(backend.max_heads == 3);
    REQUIRE(backend.seen.size() == static_cast<size_t>(so.layers * so.heads * so.samples));
    // Within a group, all heads of one sample go together before the next sample.
    CHECK(backend.seen[0] == std::array<int64_t, 3>{0, 0, 0});
    CHECK(backend.seen[2] == std::array<int64_t, 3>{0, 2, 0});
    CHECK(backend.seen[3] == std::array<int64_t, 3>{0, 0, 1});
}

TEST_CASE("the CPU engine asks for one head at a time", "[backend]") {
    const TokenLayout layout{{2, 4, 4}, 0, TextPosition::prefix};
    TileStatsEngine engine(layout, {16, 1e-3f});
    CHECK(engine.batch_heads() == 1);
    const HeadSlice a = test::random_slice(layout.tokens(), 64, 1), b = test::random_slice(layout.tokens(), 64, 2);
    const auto both = engine.compute_batch({a, b});
    REQUIRE(both.size() == 2);
    CHECK(both[1][0].mass == engine.compute(b)[0].mass);
}

TEST_CASE("a backend built for another geometry is refused", "[backend]") {
    test::TempDir tmp;
    SynthOptions so;
    so.layers = 1;
    so.heads = 1;
    so.samples = 1;
    const std::string path = tmp.file("d.h5");
    write_synthetic_dump(so, path);
    DumpReader reader(path);
    CalibrateOptions co;
    CountingBackend other_tile(reader.info().layout, {32, co.tiles.eps}, 1);
    try {
        calibrate(reader, co, other_tile);
        FAIL("no error");
    } catch (const ParameterError& e) {
        CHECK(e.parameter() == "tiles");
    }
    CHECK(other_tile.calls == 0);
}

namespace {

// Fails with an InputError on one (layer, head), as a device would on overflowing scores.
class FailingBackend : public CountingBackend {
public:
    FailingBackend(const TokenLayout& layout, TileStatsOptions options, int64_t layer, int64_t head)
        : CountingBackend(layout, options, 2), layer_(layer), head_(head) {}
    std::vector<SixOrderStats> compute_batch(const std::vector<HeadSlice>& heads) override {
        for (const HeadSlice& h : heads)
            if (h.layer == layer_ && h.head == head_) throw InputError(h.file, "/layers/1/q", "planted failure");
        return CountingBackend::compute_batch(heads);
    }

private:
    int64_t layer_, head_;
};

std::string synth_for_devices(const test::TempDir& tmp, bool with_v) {
    SynthOptions so = test::synth_options({{2, 6, 10}, 8, TextPosition::suffix}, 3, 5, 2, 11);
    so.with_v = with_v;
    const std::string path = tmp.file(with_v ? "v.h5" : "d.h5");
    write_synthetic_dump(so, path);
    return path;
}

// That dump, open, and the options the tests below calibrate it with (16-token tiles).
struct DevicesDump {
    test::TempDir tmp;
    std::string path;
    DumpReader reader;
    CalibrateOptions co;
    explicit DevicesDump(bool with_v) : path(synth_for_devices(tmp, with_v)), reader(path) { co.tiles.block = 16; }
};

}  // namespace

TEST_CASE("spread over several backends: the one-backend pattern, checksum and statistics", "[backend]") {
    test::TempDir tmp;
    const bool with_v = GENERATE(false, true);
    const std::string path = synth_for_devices(tmp, with_v);
    CalibrateOptions co;
    co.tiles.block = 16;
    co.mask.density = 0.5;
    if (with_v) co.objective.kind = ObjectiveKind::output_error;

    DumpReader plain(path);
    const Pattern expected = calibrate(plain, co);  // CPU engine, one head at a time

    DumpReader reader(path);
    std::vector<std::unique_ptr<CountingBackend>> devices;
    std::vector<TileStatsBackend*> backends;
    for (int d = 0; d < 3; ++d) {
        devices.push_back(std::make_unique<CountingBackend>(reader.info().layout, co.tiles, 2));
        backends.push_back(devices.back().get());
    }
    CalibrationTimes times;
    const Pattern got = calibrate(reader, co, backends, &times);
    require_identical(expected, got);
    // The checksum follows (layer, head, sample) order, not the order the devices read in.
    CHECK(got.provenance.source_checksum == expected.provenance.source_checksum);

    // Every (layer, head, sample) went to exactly one device, in groups of at most 2 heads.
    std::vector<std::array<int64_t, 3>> all;
    for (const auto& d : devices) {
        CHECK(d->max_heads <= 2);
        all.insert(all.end(), d->seen.begin(), d->seen.end());
    }
    std::sort(all.begin(), all.end());
    CHECK(std::adjacent_find(all.begin(), all.end()) == all.end());
    CHECK(all.size() == 3u * 5u * 2u);

    REQUIRE(times.devices.size() == 3);
    CHECK(times.devices[0].name == "counting test double");
    const int64_t n = reader.info().tokens(), d = reader.info().layers[0].head_dim;
    const int64_t tensors = with_v ? 3 : 2;  // synth writes fp16: 2 bytes a value
    CHECK(times.stored_bytes == 3 * 5 * 2 * tensors * n * d * 2);
    CHECK(times.wall_seconds > 0);
}

TEST_CASE("an error on one device stops the calibration with that error", "[backend]") {
    DevicesDump dd(false);
    DumpReader& reader = dd.reader;
    const CalibrateOptions& co = dd.co;
    // Both devices fail on that head (whichever claims it); the other must stop, not hang.
    FailingBackend a(reader.info().layout, co.tiles, 1, 3), b(reader.info().layout, co.tiles, 1, 3);
    for (const std::vector<TileStatsBackend*>& backends :
         {std::vector<TileStatsBackend*>{&a, &b}, std::vector<TileStatsBackend*>{&a}}) {
        try {
            (void)calibrate(reader, co, backends);
            FAIL("expected the planted InputError");
        } catch (const InputError& e) {
            CHECK(std::string(e.what()).find("planted failure") != std::string::npos);
        }
    }
}

TEST_CASE("an error while scoring (the output-error scorer) is reported, not fatal", "[backend]") {
    // Scoring runs in OpenMP loops, which an exception may not leave: it must be carried out.
    class ThrowingScorer : public CountingBackend {
    public:
        using CountingBackend::CountingBackend;
        std::array<double, kNumOrders> output_error(const HeadSlice& s,
                                                    const std::array<BlockMask, kNumOrders>&) const override {
            throw InputError(s.file, "/layers/0/v", "planted scorer failure");
        }
    };
    DevicesDump dd(true);
    DumpReader& reader = dd.reader;
    CalibrateOptions& co = dd.co;
    co.objective.kind = ObjectiveKind::output_error;
    ThrowingScorer a(reader.info().layout, co.tiles, 2);
    try {
        (void)calibrate(reader, co, a);
        FAIL("expected the planted InputError");
    } catch (const InputError& e) {
        CHECK(std::string(e.what()).find("planted scorer failure") != std::string::npos);
    }
}

TEST_CASE("the timing line names each backend once, with its workers, and sums their times", "[summary]") {
    CalibrationTimes t;
    t.devices = {{"CUDA device 0 (H)", 1.5, 0.25, 0.125, 0.5},
                 {"CUDA device 1 (H)", 2.0, 0.5, 0.25, 0},
                 {"CUDA device 0 (H)", 1.0, 0.75, 1.0, 0.25}};
    t.read_seconds = 1;
    t.stored_bytes = 1 << 30;
    t.wall_seconds = 3;
    const std::string line = calibration_timing(t, 0.5);
    INFO(line);
    REQUIRE(line.find("tile statistics on CUDA device 0 (H) (2 workers), CUDA device 1 (H)\n") != std::string::npos);
    REQUIRE(line.find("tile statistics 4.50 s, scoring 1.50 s (summed over workers)") != std::string::npos);
    REQUIRE(line.find("waiting: tile statistics idle 1.38 s for the reads, 0.75 s for the scoring (summed over workers)") !=
            std::string::npos);
    const nlohmann::json j = calibration_timing_json(t, 0.5);
    REQUIRE(j["devices"].size() == 3);
    CHECK(j["devices"][2]["read_wait_seconds"] == 1.0);
    CHECK(j["devices"][0]["scoring_wait_seconds"] == 0.5);
}

TEST_CASE("a calibration counts its workers' waits for reads and scoring", "[summary]") {
    DevicesDump dd(false);
    DumpReader& reader = dd.reader;
    const CalibrateOptions& co = dd.co;
    CountingBackend a(reader.info().layout, co.tiles, 2), b(reader.info().layout, co.tiles, 3);
    CalibrationTimes times;
    (void)calibrate(reader, co, std::vector<TileStatsBackend*>{&a, &b}, &times);
    REQUIRE(times.devices.size() == 2);
    for (const CalibrationTimes::Device& d : times.devices) {
        // Each worker waits at least for its first read; no wait is longer than the whole run.
        CHECK(d.read_wait_seconds > 0);
        CHECK(d.read_wait_seconds + d.score_wait_seconds <= times.wall_seconds);
    }
}
