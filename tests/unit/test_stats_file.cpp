// Statistics files (stats_file.hpp, stats_recorder.hpp): recorded sample by sample, in any order,
// they calibrate into exactly the pattern the dump gives; wrong use and altered files are refused.
#include <sys/wait.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>

#include "catch.hpp"
#include "paro/calibrator.hpp"
#include "paro/error.hpp"
#include "paro/hdf5_io.hpp"
#include "paro/stats_file.hpp"
#include "paro/stats_sink.hpp"
#include "paro/stats_recorder.hpp"
#include "paro/tile_stats.hpp"
#include "test_helpers.hpp"

using namespace paro;

namespace {

StatsScoring scoring_of(const CalibrateOptions& opt) { return {opt.tiles, opt.mask, opt.objective}; }

// Records every (layer, sample) of the dump, in a shuffled order, with the CPU engine.
void record(const DumpReader& reader, const CalibrateOptions& opt, const std::string& path, uint64_t seed,
            bool all_orders = false) {
    const DumpInfo& info = reader.info();
    StatsRecorder recorder(info.layout, scoring_of(opt), std::filesystem::path(path).parent_path().string(), 2);
    TileStatsEngine engine(info.layout, opt.tiles);
    std::vector<std::pair<int64_t, int64_t>> groups;
    for (int64_t l = 0; l < static_cast<int64_t>(info.layers.size()); ++l)
        for (int64_t s = 0; s < static_cast<int64_t>(info.samples.size()); ++s) groups.emplace_back(l, s);
    std::shuffle(groups.begin(), groups.end(), std::mt19937_64(seed));
    for (const auto& [l, s] : groups) {
        std::vector<SixOrderStats> stats;
        for (int64_t h = 0; h < info.layers[l].heads; ++h) stats.push_back(engine.compute(reader.read(s, l, h, false)));
        recorder.add(l, s, info.layers[l].head_dim, info.layers[l].scale, std::move(stats));
    }
    recorder.write(path, info, {}, "CPU streaming (OpenMP)", all_orders);
}

// A q/k-only synthetic dump in tmp.
std::string qk_dump(const test::TempDir& tmp, const TokenLayout& layout, int layers, int heads, int samples,
                    uint64_t seed, int prompts = 1) {
    SynthOptions so = test::synth_options(layout, layers, heads, samples, seed);
    so.prompts = prompts;
    so.with_v = false;
    const std::string path = tmp.file("d.h5");
    write_synthetic_dump(so, path);
    return path;
}

// Runs the paro command with args: its exit status and what it wrote to stderr.
std::pair<int, std::string> run_paro(const test::TempDir& tmp, const std::string& args) {
    const std::string log = tmp.file("stderr.txt");
    const int rc = std::system((std::string(PARO_BINARY) + " " + args + " >/dev/null 2>" + log).c_str());
    std::ifstream in(log);
    return {WIFEXITED(rc) ? WEXITSTATUS(rc) : -1,
            std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>())};
}

void require_same_pattern(const Pattern& a, const Pattern& b) {
    REQUIRE(a.layers.size() == b.layers.size());
    CHECK(a.slots.boundaries == b.slots.boundaries);
    for (size_t l = 0; l < a.layers.size(); ++l) {
        REQUIRE(a.layers[l].heads.size() == b.layers[l].heads.size());
        for (size_t h = 0; h < a.layers[l].heads.size(); ++h) {
            INFO("layer " << l << " head " << h);
            const HeadPattern &x = a.layers[l].heads[h], &y = b.layers[l].heads[h];
            CHECK(x.order == y.order);
            CHECK(x.masks == y.masks);
            CHECK(x.density == y.density);
            CHECK(x.recall == y.recall);
            CHECK(x.sample_order == y.sample_order);
            CHECK(x.sample_recall == y.sample_recall);
            for (int o = 0; o < kNumOrders; ++o) CHECK(metric_values(x.scores[o]) == metric_values(y.scores[o]));
        }
    }
}

}  // namespace

TEST_CASE("a statistics file calibrates into the pattern its dump gives", "[stats]") {
    test::TempDir tmp;
    const std::string dump = qk_dump(tmp, {{3, 10, 13}, 20, TextPosition::suffix}, 2, 3, 6, 41, 2);
    DumpReader reader(dump);

    CalibrateOptions opt;
    opt.slots = 3;
    SECTION("recall objective, fixed density") { opt.mask.density = 0.4; }
    SECTION("paper objective") { opt.objective.kind = ObjectiveKind::paper; }
    SECTION("recall target") {
        opt.mask.recall = 0.9;
        opt.mask.density = 1.0;
        opt.mask.min_density = 0.1;
    }
    const std::string stats = tmp.file("s.h5");
    record(reader, opt, stats, 7);
    const Pattern from_dump = calibrate(reader, opt);
    const StatsReader sr(stats);
    CHECK(sr.info().dump.samples.size() == 6);
    const Pattern from_stats = calibrate(sr, opt);
    require_same_pattern(from_dump, from_stats);
    CHECK(from_stats.provenance.source_dump == "s.h5");

    // Slots are free at calibrate time: the statistics keep every sample's masses.
    CalibrateOptions one = opt;
    one.slots = 1;
    require_same_pattern(calibrate(reader, one), calibrate(sr, one));
}

// The two makers of statistics files, the recorder (capture) and a calibration (--stats-out), write
// the same values; a file without the other orders' masses says so when asked for them.
TEST_CASE("a calibration keeps the statistics the recorder makes, all orders included", "[stats]") {
    test::TempDir tmp;
    const std::string dump = qk_dump(tmp, {{3, 10, 13}, 20, TextPosition::suffix}, 2, 3, 4, 17, 2);
    DumpReader reader(dump);
    CalibrateOptions opt;
    opt.mask.density = 0.4;
    const bool all = GENERATE(true, false);
    record(reader, opt, tmp.file("rec.h5"), 5, all);
    {
        StatsInfo info;
        info.dump = reader.info();
        info.scoring = scoring_of(opt);
        StatsFileSink sink(tmp.file("cal.h5"), info, all);
        opt.head_scored = [&](int64_t l, int64_t h, const std::vector<SampleMetrics>& m, AxisOrder o,
                              const std::vector<SampleMasses>& mass) { sink.head(l, h, m, o, mass); };
        calibrate(reader, opt);
        sink.commit();
    }
    const StatsReader a(tmp.file("rec.h5")), b(tmp.file("cal.h5"));
    // The size estimate the free-space check uses: the masses and metrics, plus HDF5's overhead.
    const double estimate = stats_file_bytes(a.info(), all);
    const auto size = static_cast<double>(std::filesystem::file_size(tmp.file("rec.h5")));
    CHECK(size >= 0.9 * estimate);
    CHECK(size <= estimate + 64 * 1024);
    CHECK(a.all_orders() == all);
    CHECK(b.all_orders() == all);
    for (int64_t l = 0; l < 2; ++l) {
        const StatsLayerScores x = a.read_scores(l), y = b.read_scores(l);
        REQUIRE(x.order == y.order);
        for (int64_t h = 0; h < 3; ++h) {
            INFO("layer " << l << " head " << h);
            for (size_t s = 0; s < 4; ++s)
                for (int o = 0; o < kNumOrders; ++o)
                    CHECK(metric_values(x.metrics[h][s][o]) == metric_values(y.metrics[h][s][o]));
            for (AxisOrder o : kAllOrders) {
                if (!all && o != x.order[h]) {
                    CHECK_THROWS_AS(a.read_head_mass(l, h, x.order[h], o), InputError);
                    continue;
                }
                const std::vector<float> ma = a.read_head_mass(l, h, x.order[h], o);
                CHECK(ma == b.read_head_mass(l, h, y.order[h], o));
                CHECK(std::any_of(ma.begin(), ma.end(), [](float v) { return v > 0; }));
            }
        }
    }
}

TEST_CASE("statistics outputs refuse to start without room for them", "[stats]") {
    test::TempDir tmp;
    const std::string out = tmp.file("s.h5");
    CHECK_NOTHROW(require_free_space(out, 1, "option -o", ""));
    try {
        require_free_space(out, 1e18, "option --stats-out", "a smaller variant");
        FAIL("no error for an exabyte");
    } catch (const InputError& e) {
        const std::string what = e.what();
        CHECK(what.find(out) != std::string::npos);
        CHECK(what.find("--stats-out") != std::string::npos);
        CHECK(what.find("1050000000.0 GB") != std::string::npos);
        CHECK(what.find("a smaller variant") != std::string::npos);
    }
    CHECK_FALSE(std::filesystem::exists(out));
}

TEST_CASE("paro check and paro calibrate take statistics files", "[stats]") {
    test::TempDir tmp;
    const std::string dump = qk_dump(tmp, {{4, 12, 16}, 32, TextPosition::prefix}, 2, 2, 4, 3), stats = tmp.file("s.h5");
    DumpReader reader(dump);
    CalibrateOptions opt;
    opt.mask.density = 0.45;
    opt.slots = 2;
    record(reader, opt, stats, 3);
    const auto paro = [&](const std::string& args) { return run_paro(tmp, args).first; };
    CHECK(paro("check " + stats) == 0);
    REQUIRE(paro("calibrate -q --device cpu --density 0.45 --slots 2 " + dump + " -o " + tmp.file("a.h5")) == 0);
    // The scoring options come from the file; the slots are the caller's.
    REQUIRE(paro("calibrate -q --slots 2 " + stats + " -o " + tmp.file("b.h5")) == 0);
    require_same_pattern(read_pattern_file(tmp.file("a.h5")), read_pattern_file(tmp.file("b.h5")));
    CHECK(paro("calibrate -q --density 0.6 " + stats + " -o " + tmp.file("c.h5")) == 2);
    CHECK(paro("calibrate -q --objective paper " + stats + " -o " + tmp.file("c.h5")) == 2);
    CHECK_FALSE(std::filesystem::exists(tmp.file("c.h5")));
}

// Altered files: each a one-line error naming the dataset, exit 2, no pattern written.
TEST_CASE("paro calibrate refuses altered statistics files", "[stats]") {
    test::TempDir tmp;
    const std::string dump = qk_dump(tmp, {{2, 8, 8}, 0, TextPosition::prefix}, 1, 3, 2, 9);
    DumpReader reader(dump);
    const CalibrateOptions opt;
    const auto calibrate_cli = [&](const std::string& stats) {
        return run_paro(tmp, "calibrate -q " + stats + " -o " + tmp.file("p.h5"));
    };
    const auto altered = [&](const std::string& name, const std::function<void(hid_t layer)>& edit) {
        const std::string path = tmp.file(name);
        record(reader, opt, path, 5);
        const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
        const hid_t g = H5Gopen2(f, "/layers/0", H5P_DEFAULT);
        edit(g);
        H5Gclose(g);
        H5Fclose(f);
        return path;
    };
    SECTION("an order that does not fit a byte (-1 would wrap to FHW)") {
        const std::string path = altered("order.h5", [](hid_t g) {
            H5Ldelete(g, "order", H5P_DEFAULT);
            const std::vector<int64_t> order = {-1, 3, -1};
            h5::write_dataset(g, "order", {3}, h5::StoreType::i64, order.data(), h5::StoreType::i64);
        });
        const auto [rc, err] = calibrate_cli(path);
        CHECK(rc == 2);
        CHECK(err.find("/layers/0/order: head 0: -1 is not an order") != std::string::npos);
    }
    SECTION("masses never written (a few bytes claiming gigabytes)") {
        const std::string path = altered("mass.h5", [](hid_t g) {
            H5Ldelete(g, "mass", H5P_DEFAULT);
            h5::create_dataset(g, "mass", {3, 2, 2, 2}, h5::StoreType::f32, {{1, 1, 2, 2}, 0});
        });
        const auto [rc, err] = calibrate_cli(path);
        CHECK(rc == 2);
        CHECK(err.find("/layers/0/mass") != std::string::npos);
    }
    SECTION("metrics that choose another order than the masses are stored under") {
        const std::string path = altered("swap.h5", [](hid_t g) {
            const hid_t d = H5Dopen2(g, "order", H5P_DEFAULT);
            std::vector<uint8_t> order(3);
            H5Dread(d, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, order.data());
            order[1] = static_cast<uint8_t>((order[1] + 1) % kNumOrders);
            H5Dwrite(d, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, order.data());
            H5Dclose(d);
        });
        const auto [rc, err] = calibrate_cli(path);
        CHECK(rc == 2);
        CHECK(err.find("head 1: its metrics choose") != std::string::npos);
    }
    CHECK_FALSE(std::filesystem::exists(tmp.file("p.h5")));
}

TEST_CASE("statistics are refused where they would mislead", "[stats]") {
    test::TempDir tmp;
    const std::string dump = qk_dump(tmp, {{2, 8, 8}, 0, TextPosition::prefix}, 1, 2, 2, 5);
    DumpReader reader(dump);
    const DumpInfo& info = reader.info();
    CalibrateOptions opt;
    TileStatsEngine engine(info.layout, opt.tiles);
    const auto heads = [&](int64_t s) {
        std::vector<SixOrderStats> v;
        for (int64_t h = 0; h < 2; ++h) v.push_back(engine.compute(reader.read(s, 0, h, false)));
        return v;
    };

    SECTION("options the metrics were not scored with") {
        const std::string path = tmp.file("s.h5");
        record(reader, opt, path, 1);
        const StatsReader sr(path);
        CalibrateOptions other = opt;
        other.mask.density = 0.3;
        try {
            calibrate(sr, other);
            FAIL("accepted another density");
        } catch (const ParameterError& e) {
            CHECK(e.parameter() == "density");
            CHECK(e.file() == path);
        }
        other = opt;
        other.objective.kind = ObjectiveKind::paper;
        CHECK_THROWS_AS(calibrate(sr, other), ParameterError);
    }
    SECTION("a sample missing, added twice, or a layer of another shape") {
        StatsRecorder rec(info.layout, scoring_of(opt), tmp.path(), 1);
        rec.add(0, 0, 64, 0.125, heads(0));
        CHECK_THROWS_AS(rec.add(0, 0, 64, 0.125, heads(0)), ParameterError);
        CHECK_THROWS_AS(rec.add(0, 1, 64, 0.5, heads(1)), ParameterError);
        CHECK_THROWS_AS(rec.write(tmp.file("s.h5"), info, {}, "CPU"), ParameterError);
        CHECK_FALSE(std::filesystem::exists(tmp.file("s.h5")));
    }
    SECTION("output-error, which needs v") {
        CalibrateOptions oe = opt;
        oe.objective.kind = ObjectiveKind::output_error;
        CHECK_THROWS_AS(StatsRecorder(info.layout, scoring_of(oe), tmp.path(), 1), ParameterError);
    }
    SECTION("a spool directory that does not exist") {
        CHECK_THROWS_AS(StatsRecorder(info.layout, scoring_of(opt), tmp.file("nowhere"), 1), InputError);
    }
    SECTION("statistics of another layout") {
        StatsRecorder rec({{2, 8, 9}, 0, TextPosition::prefix}, scoring_of(opt), tmp.path(), 1);
        CHECK_THROWS_AS(rec.add(0, 0, 64, 0.125, heads(0)), ParameterError);
    }
}
