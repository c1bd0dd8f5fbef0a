// Calibration end to end on synthetic dumps: planted heads recovered, masks on target, pattern
// file round trip, the paper formula as documented, output error against brute force.
#include <hdf5.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>

#include "catch.hpp"
#include "paro/calibrator.hpp"
#include "paro/error.hpp"
#include "paro/hdf5_io.hpp"
#include "paro/output_error.hpp"
#include "paro/reference_stats.hpp"
#include "paro/synth.hpp"
#include "test_helpers.hpp"

using namespace paro;

namespace {

bool accepted(HeadKind kind, AxisOrder o) {
    for (AxisOrder a : accepted_orders(kind))
        if (a == o) return true;
    return false;
}

// Recovery rate of planted heads with the given objective.
double recovery(const SynthOptions& so, CalibrateOptions co, const std::string& path) {
    write_synthetic_dump(so, path);
    DumpReader reader(path);
    const Pattern p = calibrate(reader, co);
    // Stored scores: output error only for its objective, as a real (non-negative) mean.
    for (const auto& layer : p.layers)
        for (const auto& head : layer.heads)
            for (const auto& m : head.scores) {
                if (co.objective.kind == ObjectiveKind::output_error) {
                    CHECK(m.output_rel_l1 > 0);
                    CHECK(m.objective == m.output_rel_l1);
                } else {
                    CHECK(m.output_rel_l1 == -1.0);
                }
                CHECK(m.recall > 0);
                CHECK(m.recall <= 1.0 + 1e-9);
            }
    int ok = 0, total = 0;
    for (int l = 0; l < so.layers; ++l)
        for (int h = 0; h < so.heads; ++h, ++total) {
            const HeadPattern& hp = p.layers[l].heads[h];
            const bool good = accepted(planted_kind(so, l, h), hp.order);
            if (!good) WARN("layer " << l << " head " << h << " planted " << to_string(planted_kind(so, l, h)) << " chose " << to_string(hp.order));
            ok += good;
            for (double d : hp.density) CHECK(std::fabs(d - co.mask.density) <= 0.01);
        }
    return static_cast<double>(ok) / total;
}

}  // namespace

TEST_CASE("the default objective recovers planted heads on unseen dumps", "[calibrate]") {
    test::TempDir tmp;
    struct Case {
        TokenLayout layout;
        int head_dim;
        bool maps, f16;
        uint64_t seed;
    };
    const Case cases[] = {
        {{{6, 10, 14}, 40, TextPosition::prefix}, 64, false, true, 11},
        {{{5, 12, 9}, 17, TextPosition::suffix}, 128, false, false, 12},
        {{{5, 10, 13}, 0, TextPosition::prefix}, 64, true, true, 13},
        {{{8, 7, 13}, 9, TextPosition::prefix}, 64, false, true, 14},
    };
    for (const Case& c : cases) {
        INFO("layout " << c.layout.describe());
        SynthOptions so;
        so.layout = c.layout;
        so.head_dim = c.head_dim;
        so.maps = c.maps;
        so.float16 = c.f16;
        so.seed = c.seed;
        so.layers = 2;
        so.heads = 4;
        CalibrateOptions co;
        co.mask.density = 0.4;
        CHECK(recovery(so, co, tmp.file("planted.h5")) >= 0.95);
    }
}

TEST_CASE("the output-error objective recovers planted heads", "[calibrate]") {
    test::TempDir tmp;
    SynthOptions so;
    so.layout = {{6, 12, 10}, 16, TextPosition::prefix};
    so.seed = 21;
    CalibrateOptions co;
    co.mask.density = 0.4;
    co.objective.kind = ObjectiveKind::output_error;
    CHECK(recovery(so, co, tmp.file("planted.h5")) >= 0.95);
}

TEST_CASE("masked output error equals a brute-force masked attention", "[calibrate]") {
    const TokenLayout layout{{3, 5, 6}, 7, TextPosition::suffix};
    const HeadSlice s = test::random_slice(layout.tokens(), 64, 3, 3.0, true);
    const TileStatsEngine engine(layout, {16, 1e-3f});
    const auto stats = engine.compute(s);
    const MaskOptions mo{0.45, false, true};
    const BlockMask forced = forced_tiles(layout, engine.grid(), mo);
    std::array<BlockMask, kNumOrders> masks;
    for (int o = 0; o < kNumOrders; ++o) masks[o] = build_mask(stats[o], forced, mo);
    const auto fast = masked_output_error(s, engine, masks);

    const auto p = reference_attention_matrix(s);
    const int64_t n = s.tokens, dv = s.value_dim;
    for (AxisOrder order : kAllOrders) {
        const Permutation perm = make_permutation(layout, order);
        double diff = 0, norm = 0;
        for (int64_t i = 0; i < n; ++i) {
            double kept = 0;
            std::vector<double> dense(dv, 0.0), masked(dv, 0.0);
            for (int64_t j = 0; j < n; ++j) {
                const bool keep = masks[index_of(order)].get(perm.position[i] / 16, perm.position[j] / 16);
                for (int64_t c = 0; c < dv; ++c) dense[c] += p[i * n + j] * s.v[j * dv + c];
                if (!keep) continue;
                kept += p[i * n + j];
                for (int64_t c = 0; c < dv; ++c) masked[c] += p[i * n + j] * s.v[j * dv + c];
            }
            for (int64_t c = 0; c < dv; ++c) {
                diff += std::fabs((kept > 0 ? masked[c] / kept : 0.0) - dense[c]);
                norm += std::fabs(dense[c]);
            }
        }
        INFO("order " << to_string(order));
        CHECK(fast[index_of(order)] == Approx(diff / norm).epsilon(1e-4));
        CHECK(diff / norm > 1e-3);  // the masks really drop something
    }
}

TEST_CASE("paper objective follows its documented formula", "[objective]") {
    std::array<OrderMetrics, kNumOrders> m{};
    const double sparsity[] = {0.9, 0.5, 0.7, 0.95, 0.2, 0.6};
    const double inco[] = {10, 40, 22, 12, 80, 30};
    for (int o = 0; o < kNumOrders; ++o) m[o].sparsity = sparsity[o], m[o].incoherence = inco[o];
    const ObjectiveOptions opt{ObjectiveKind::paper, 0.3, 0.9};
    apply_objective(m, opt);
    double sum_i = 0, sum_d = 0;
    for (int o = 0; o < kNumOrders; ++o) sum_i += inco[o], sum_d += 1 - sparsity[o];
    for (int o = 0; o < kNumOrders; ++o)
        CHECK(m[o].objective == Approx(0.3 * inco[o] / sum_i + 0.7 * (1 - sparsity[o]) / sum_d));
    CHECK(choose_order(m, ObjectiveKind::paper) == AxisOrder::HWF);
    // All orders fully sparse: the sparsity term vanishes instead of dividing by zero.
    for (auto& x : m) x.sparsity = 1.0;
    apply_objective(m, opt);
    CHECK(choose_order(m, ObjectiveKind::paper) == AxisOrder::FHW);
    CHECK(std::isfinite(m[0].objective));
}

TEST_CASE("ties break to the lowest canonical order", "[objective]") {
    std::array<OrderMetrics, kNumOrders> m{};
    for (auto& x : m) x.objective = 0.5;
    m[4].objective = 0.5 + 1e-15;
    CHECK(choose_order(m, ObjectiveKind::recall) == AxisOrder::FHW);
    m[2].objective = 0.5 * (1 + 1e-9);  // float rounding of a tie in exact arithmetic
    m[5].objective = 0.5 * (1 - 1e-9);
    CHECK(choose_order(m, ObjectiveKind::recall) == AxisOrder::FHW);
    CHECK(choose_order(m, ObjectiveKind::output_error) == AxisOrder::FHW);
    m[1].objective = 0.5 * (1 + 1e-5);
    CHECK(choose_order(m, ObjectiveKind::recall) == kAllOrders[1]);
    m[1].objective = 0.5;
    m[3].objective = 0.6;
    CHECK(choose_order(m, ObjectiveKind::recall) == AxisOrder::HWF);
    CHECK(choose_order(m, ObjectiveKind::output_error) == AxisOrder::FHW);
}

TEST_CASE("pattern file round trip, slots and atomic writes", "[pattern]") {
    test::TempDir tmp;
    SynthOptions so;
    so.layout = {{4, 6, 10}, 12, TextPosition::suffix};
    so.samples = 6;
    so.heads = 3;
    so.layers = 3;
    write_synthetic_dump(so, tmp.file("d.h5"));
    DumpReader reader(tmp.file("d.h5"));
    CalibrateOptions co;
    co.mask.density = 0.6;
    co.slots = 3;
    co.options_json = R"({"density":0.6})";
    const Pattern p = calibrate(reader, co);
    REQUIRE(p.slots.count() == 3);
    const int64_t bytes = write_pattern_file(p, tmp.file("p.h5"));
    CHECK(bytes == static_cast<int64_t>(std::filesystem::file_size(tmp.file("p.h5"))));
    const Pattern q = read_pattern_file(tmp.file("p.h5"));
    CHECK(q.layout == p.layout);
    CHECK(q.slots.boundaries == p.slots.boundaries);
    CHECK(q.provenance.source_checksum == p.provenance.source_checksum);
    CHECK(q.provenance.source_checksum.rfind("crc32:", 0) == 0);
    REQUIRE(q.layers.size() == p.layers.size());
    for (size_t l = 0; l < p.layers.size(); ++l)
        for (size_t h = 0; h < p.layers[l].heads.size(); ++h) {
            const auto& a = p.layers[l].heads[h];
            const auto& b = q.layers[l].heads[h];
            CHECK(a.order == b.order);
            CHECK(a.masks == b.masks);
            CHECK(a.density == b.density);
            CHECK(a.recall == b.recall);
            CHECK(a.sample_order == b.sample_order);
            CHECK(a.sample_recall == b.sample_recall);
            for (int o = 0; o < kNumOrders; ++o) CHECK(a.scores[o].recall == b.scores[o].recall);
        }
    // No temporary files are left beside the output; a missing directory is bad input.
    int files = 0;
    for (const auto& e : std::filesystem::directory_iterator(tmp.path())) files += e.is_regular_file();
    CHECK(files == 2);
    CHECK_THROWS_AS(write_pattern_file(p, tmp.file("missing/p.h5")), InputError);
    // A slot without samples is an error, not a silent copy.
    co.slots = 8;
    CHECK_THROWS_AS(calibrate(reader, co), InputError);
}

// With one sample, the order that sample alone would choose is the head's order, for every
// objective (the per-sample objective sees the same metrics as the head's mean).
TEST_CASE("one sample: each head's sample_order is its order, whatever the objective", "[calibrate]") {
    test::TempDir tmp;
    SynthOptions so = test::synth_options({{3, 8, 10}, 16, TextPosition::prefix}, 1, 4, 1, 17);
    const std::string dump = tmp.file("d.h5");
    write_synthetic_dump(so, dump);
    DumpReader reader(dump);
    for (ObjectiveKind kind : {ObjectiveKind::recall, ObjectiveKind::paper, ObjectiveKind::output_error}) {
        CalibrateOptions opt;
        opt.objective.kind = kind;
        const Pattern p = calibrate(reader, opt);
        for (const HeadPattern& hp : p.layers[0].heads) {
            INFO("objective " << to_string(kind));
            REQUIRE(hp.sample_order.size() == 1);
            CHECK(hp.sample_order[0] == index_of(hp.order));
        }
    }
}

// The provenance's options must be one JSON object of bounded depth: anything else is refused when
// the pattern is read (inspect --json printed "<discarded>" for it; a 100k-deep one overflowed the stack).
TEST_CASE("a pattern's options attribute is checked when read", "[calibrate]") {
    test::TempDir tmp;
    const std::string dump = tmp.file("d.h5"), pattern = tmp.file("p.h5");
    write_synthetic_dump(test::synth_options({{2, 8, 8}, 0, TextPosition::prefix}, 1, 2, 1, 3), dump);
    DumpReader reader(dump);
    CalibrateOptions opt;
    opt.options_json = "{\"density\": 0.5}";
    write_pattern_file(calibrate(reader, opt), pattern);
    REQUIRE_NOTHROW(read_pattern_file(pattern));
    std::string deep;
    for (int i = 0; i < 40; ++i) deep += "{\"a\":";
    deep += "1" + std::string(40, '}');
    for (const std::string& bad : {std::string("not json"), std::string("[1, 2]"), deep}) {
        const hid_t f = H5Fopen(pattern.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
        H5Adelete(f, "options");
        h5::write_attr(f, "options", bad);
        H5Fclose(f);
        INFO(bad.substr(0, 20));
        CHECK_THROWS_WITH(read_pattern_file(pattern), Catch::Contains("attribute options"));
    }
}

// The memory budget: a calibration whose declared sizes exceed the limit is refused before any work,
// naming the file; the limit comes from PARO_MEMORY_LIMIT (sizes with K/M/G/T) or the machine.
TEST_CASE("calibrate refuses work beyond the memory budget", "[calibrate]") {
    test::TempDir tmp;
    const std::string dump = tmp.file("d.h5");
    write_synthetic_dump(test::synth_options({{4, 12, 16}, 32, TextPosition::prefix}, 1, 2, 2, 3), dump);
    DumpReader reader(dump);
    const CalibrateOptions opt;
    ::setenv("PARO_MEMORY_LIMIT", "64K", 1);
    try {
        calibrate(reader, opt);
        FAIL("calibrated within a 64 KiB budget");
    } catch (const InputError& e) {
        CHECK(e.file() == dump);
        CHECK(std::string(e.what()).find("set PARO_MEMORY_LIMIT") != std::string::npos);
    }
    ::setenv("PARO_MEMORY_LIMIT", "12X", 1);
    CHECK_THROWS_AS(calibrate(reader, opt), ParameterError);
    ::setenv("PARO_MEMORY_LIMIT", "1G", 1);
    CHECK_NOTHROW(calibrate(reader, opt));
    ::unsetenv("PARO_MEMORY_LIMIT");
}

// Work shared between processes: blocks of heads that split layers give each head what a run over
// whole layers gives it, each block is handed to block_done once, and only whole layers are returned.
TEST_CASE("blocks of heads calibrate each head as whole layers do", "[calibrate]") {
    test::TempDir tmp;
    SynthOptions so = test::synth_options({{3, 8, 10}, 16, TextPosition::prefix}, 3, 5, 2, 29);
    const std::string dump = tmp.file("d.h5");
    write_synthetic_dump(so, dump);
    DumpReader reader(dump);
    CalibrateOptions opt;
    opt.mask.density = 0.5;
    const Pattern whole = calibrate(reader, opt);

    // Layer 0 in three uneven blocks, layer 1 whole, layer 2 only partly.
    opt.blocks = {{0, 0, 2}, {0, 2, 1}, {0, 3, 2}, {1, 0, 5}, {2, 1, 3}};
    std::vector<std::pair<HeadBlock, std::vector<HeadPattern>>> done;
    opt.block_done = [&](const HeadBlock& b, const std::vector<HeadPattern>& heads) { done.push_back({b, heads}); };
    const Pattern blocks = calibrate(reader, opt);
    REQUIRE(done.size() == opt.blocks.size());
    for (const auto& [b, heads] : done) {
        REQUIRE(static_cast<int64_t>(heads.size()) == b.count);
        for (int64_t i = 0; i < b.count; ++i) {
            const HeadPattern& want = whole.layers[static_cast<size_t>(b.layer)].heads[static_cast<size_t>(b.h0 + i)];
            INFO("layer " << b.layer << " head " << b.h0 + i);
            CHECK(heads[static_cast<size_t>(i)].order == want.order);
            CHECK(heads[static_cast<size_t>(i)].recall == want.recall);
            REQUIRE(heads[static_cast<size_t>(i)].masks.size() == want.masks.size());
            for (size_t m = 0; m < want.masks.size(); ++m)
                CHECK(heads[static_cast<size_t>(i)].masks[m].bytes() == want.masks[m].bytes());
        }
    }
    REQUIRE(blocks.layers.size() == 2);  // layers 0 and 1; layer 2 is not complete
    CHECK(blocks.layers[1].heads[4].recall == whole.layers[1].heads[4].recall);

    // The checksum pieces of a layer's blocks combine into the layer's.
    CHECK(concatenate_checksums({reader.layer_checksum(0, 0, 2), reader.layer_checksum(0, 2, 1),
                                 reader.layer_checksum(0, 3, 2)})
              .crc == reader.layer_checksum(0).crc);

    for (const std::vector<HeadBlock>& bad :
         {std::vector<HeadBlock>{{0, 0, 3}, {0, 2, 2}}, std::vector<HeadBlock>{{1, 0, 1}, {0, 0, 1}},
          std::vector<HeadBlock>{{0, 4, 2}}, std::vector<HeadBlock>{{3, 0, 1}}, std::vector<HeadBlock>{{0, 0, 0}}}) {
        opt.blocks = bad;
        CHECK_THROWS_AS(calibrate(reader, opt), ParameterError);
    }
}
