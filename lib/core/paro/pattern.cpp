#include "paro/pattern.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "paro/atomic_output.hpp"
#include "paro/error.hpp"
#include "paro/hdf5_io.hpp"
#include "paro/hdf5_probe.hpp"
#include "paro/memory_budget.hpp"
#include "paro/schema_check.hpp"

namespace paro {

namespace {
// The file's own index order is paro's canonical order (AxisOrder's values). Consumers translate
// by name: the authors' runtime numbers the orders differently.
constexpr std::array<const char*, kNumOrders> kFileOrderNames = {"FHW", "FWH", "HFW", "HWF", "WFH", "WHF"};
constexpr int kDeflate = 6;

template <typename T>
void expect_size(const h5::File& f, const std::string& path, const std::vector<T>& v, size_t n) {
    if (v.size() != n) throw InputError(f.path(), path, fmt::format("has {} values, expected {}", v.size(), n));
}

// A dataset's exact shape, checked before it is read (a few bytes may declare gigabytes).
void expect_shape(const h5::File& f, const std::string& path, const std::vector<int64_t>& want) {
    h5::Handle d = h5::open_dataset(f, path);
    const auto got = h5::dataset_info(f, d.get(), path).shape;
    if (got != want)
        throw InputError(f.path(), path, fmt::format("has shape [{}], expected [{}]", fmt::join(got, ", "),
                                                     fmt::join(want, ", ")));
    if (h5::stored_bytes(d.get()) == 0 && std::none_of(got.begin(), got.end(), [](int64_t n) { return n == 0; }))
        throw InputError(f.path(), path, "holds no data (never written)");
}

// a * b, or InputError when it does not fit (hostile sizes).
int64_t checked_product(const h5::File& f, const std::string& where, int64_t a, int64_t b) {
    int64_t out = 0;
    if (a < 0 || b < 0 || __builtin_mul_overflow(a, b, &out))
        throw InputError(f.path(), where, fmt::format("sizes {} x {} do not fit", a, b));
    return out;
}

template <typename T>
void expect_range(const h5::File& f, const std::string& path, const std::vector<T>& v, double lo, double hi) {
    for (const T x : v)
        if (!(x >= lo && x <= hi))
            throw InputError(f.path(), path, fmt::format("holds {}, outside [{}, {}]", double(x), lo, hi));
}
}  // namespace

const std::array<const char*, kNumOrders>& pattern_order_names() { return kFileOrderNames; }

int64_t Pattern::num_samples() const {
    return layers.empty() || layers[0].heads.empty() ? 0
                                                     : static_cast<int64_t>(layers[0].heads[0].sample_order.size());
}

namespace {
// Mean of a per-slot quantity over every (slot, layer, head).
double mean_over_masks(const Pattern& p, std::vector<double> HeadPattern::*field) {
    double sum = 0;
    int64_t n = 0;
    for (const auto& l : p.layers)
        for (const auto& h : l.heads)
            for (double v : h.*field) sum += v, ++n;
    return n ? sum / static_cast<double>(n) : 0.0;
}
}  // namespace

double Pattern::mean_density() const { return mean_over_masks(*this, &HeadPattern::density); }
double Pattern::mean_recall() const { return mean_over_masks(*this, &HeadPattern::recall); }

DensityDistribution Pattern::density_distribution() const {
    std::vector<double> d;
    for (const auto& l : layers)
        for (const auto& h : l.heads) d.insert(d.end(), h.density.begin(), h.density.end());
    if (d.empty()) return {};
    std::sort(d.begin(), d.end());
    const auto at = [&](double q) { return d[static_cast<size_t>(std::llround(q * static_cast<double>(d.size() - 1)))]; };
    return {d.front(), at(0.1), at(0.5), at(0.9), d.back()};
}

namespace {

// The pattern's attributes and layers, under the format name given (a pattern or a partial).
void write_pattern_body(h5::File& f, const Pattern& p, const char* format) {
    const hid_t root = f.id();
    h5::write_attr(root, "paro_format", std::string(format));
    h5::write_attr(root, "paro_version", int64_t{kPatternVersion});
    h5::write_attr(root, "tool_version", p.provenance.tool_version);
    // A JSON object always (the schema's rule): a pattern made through the library may carry none.
    h5::write_attr(root, "options", p.provenance.options_json.empty() ? std::string("{}") : p.provenance.options_json);
    h5::write_attr(root, "source_dump", p.provenance.source_dump);
    h5::write_attr(root, "source_checksum", p.provenance.source_checksum);
    h5::write_attr(root, "created", p.provenance.created);
    h5::write_attr(root, "objective", p.objective);
    h5::write_attr(root, "objective_higher_is_better", int64_t{p.higher_is_better ? 1 : 0});
    h5::write_attr(root, "grid", std::vector<int64_t>(p.layout.grid.begin(), p.layout.grid.end()));
    h5::write_attr(root, "text_tokens", p.layout.text_tokens);
    h5::write_attr(root, "text_position", to_string(p.layout.text_position));
    h5::write_attr(root, "block_q", int64_t{p.block_q});
    h5::write_attr(root, "block_k", int64_t{p.block_k});
    h5::write_attr(root, "tiles_per_side", p.tiles_per_side());
    h5::write_attr(root, "num_samples", p.num_samples());
    h5::write_attr(root, "order_names",
                   std::vector<std::string>(kFileOrderNames.begin(), kFileOrderNames.end()));
    h5::write_attr(root, "mask_encoding", std::string("bits-row-major-lsb-first"));
    std::vector<std::string> pv_names;
    for (PvFormat pf : kAllPvFormats) pv_names.push_back(to_string(pf));
    h5::write_attr(root, "pv_format_names", pv_names);

    h5::Handle slots = h5::create_group(root, "slots");
    h5::write_attr(slots.get(), "count", int64_t{p.slots.count()});
    h5::write_dataset(slots.get(), "boundaries", {static_cast<int64_t>(p.slots.boundaries.size())},
                      h5::StoreType::f64, p.slots.boundaries.data(), h5::StoreType::f64);

    h5::Handle layers = h5::create_group(root, "layers");
    h5::write_attr(layers.get(), "count", static_cast<int64_t>(p.layers.size()));
    const int64_t T = p.slots.count(), S = p.num_samples();
    const int64_t nbytes = (p.tiles_per_side() * p.tiles_per_side() + 7) / 8;
    for (size_t l = 0; l < p.layers.size(); ++l) {
        const auto& heads = p.layers[l].heads;
        const int64_t H = static_cast<int64_t>(heads.size());
        h5::Handle g = h5::create_group(layers.get(), std::to_string(l));
        h5::write_attr(g.get(), "heads", H);
        std::vector<uint8_t> orders(H), qk(H), pv(H), masks(static_cast<size_t>(T * H * nbytes)),
            sample_order(static_cast<size_t>(H * S));
        std::vector<double> density(T * H), recall(T * H), scores(H * kNumOrders * kNumMetrics),
            sample_recall(H * S);
        for (int64_t h = 0; h < H; ++h) {
            const HeadPattern& hp = heads[h];
            PARO_ASSERT(static_cast<int64_t>(hp.masks.size()) == T);
            PARO_ASSERT(static_cast<int64_t>(hp.sample_order.size()) == S);
            orders[h] = static_cast<uint8_t>(index_of(hp.order));
            qk[h] = static_cast<uint8_t>(hp.qk_bits);
            pv[h] = static_cast<uint8_t>(index_of(hp.pv_format));
            for (int64_t t = 0; t < T; ++t) {
                const auto& b = hp.masks[t].bytes();
                PARO_ASSERT(static_cast<int64_t>(b.size()) == nbytes);
                std::copy(b.begin(), b.end(), masks.begin() + (t * H + h) * nbytes);
                density[t * H + h] = hp.density[t];
                recall[t * H + h] = hp.recall[t];
            }
            for (int o = 0; o < kNumOrders; ++o) {
                const auto vals = metric_values(hp.scores[o]);
                std::copy(vals.begin(), vals.end(), scores.begin() + (h * kNumOrders + o) * kNumMetrics);
            }
            for (int64_t s = 0; s < S; ++s) {
                sample_order[h * S + s] = hp.sample_order[s];
                sample_recall[h * S + s] = hp.sample_recall[s];
            }
        }
        h5::write_dataset(g.get(), "orders", {H}, h5::StoreType::u8, orders.data(), h5::StoreType::u8);
        h5::write_dataset(g.get(), "qk_bits", {H}, h5::StoreType::u8, qk.data(), h5::StoreType::u8);
        h5::write_dataset(g.get(), "pv_format", {H}, h5::StoreType::u8, pv.data(), h5::StoreType::u8);
        h5::write_dataset(g.get(), "masks", {T, H, nbytes}, h5::StoreType::u8, masks.data(), h5::StoreType::u8,
                          {{1, 1, nbytes}, kDeflate});
        h5::write_dataset(g.get(), "density", {T, H}, h5::StoreType::f64, density.data(), h5::StoreType::f64);
        h5::write_dataset(g.get(), "recall", {T, H}, h5::StoreType::f64, recall.data(), h5::StoreType::f64);
        h5::Handle sd = h5::write_dataset(g.get(), "scores", {H, kNumOrders, kNumMetrics}, h5::StoreType::f64,
                                          scores.data(), h5::StoreType::f64);
        h5::write_attr(sd.get(), "metrics", std::vector<std::string>(kMetricNames.begin(), kMetricNames.end()));
        h5::write_dataset(g.get(), "sample_order", {H, S}, h5::StoreType::u8, sample_order.data(),
                          h5::StoreType::u8);
        h5::write_dataset(g.get(), "sample_recall", {H, S}, h5::StoreType::f64, sample_recall.data(),
                          h5::StoreType::f64);
    }
}

}  // namespace

int64_t write_pattern_file(const Pattern& p, const std::string& path) {
    AtomicOutput out(path);
    {
        h5::File f = h5::File::create(out.temp_path());
        write_pattern_body(f, p, "paro-pattern");
        f.close();
    }
    out.commit();
    return static_cast<int64_t>(std::filesystem::file_size(path));
}

int64_t write_partial_file(const PartialPattern& part, const std::string& path) {
    PARO_ASSERT(part.checksums.size() == part.pattern.layers.size());
    PARO_ASSERT(part.first_layer >= 0 && part.first_layer + static_cast<int64_t>(part.pattern.layers.size()) <= part.total_layers);
    AtomicOutput out(path);
    {
        h5::File f = h5::File::create(out.temp_path());
        write_pattern_body(f, part.pattern, "paro-partial");
        h5::write_attr(f.id(), "first_layer", part.first_layer);
        h5::write_attr(f.id(), "total_layers", part.total_layers);
        h5::write_attr(f.id(), "source_identity", part.source_identity);
        for (size_t i = 0; i < part.checksums.size(); ++i) {
            h5::Handle g = h5::open_group(f, fmt::format("/layers/{}", i));
            h5::write_attr(g.get(), "read_crc32", static_cast<int64_t>(part.checksums[i].crc));
            h5::write_attr(g.get(), "read_bytes", part.checksums[i].bytes);
        }
        f.close();
    }
    out.commit();
    return static_cast<int64_t>(std::filesystem::file_size(path));
}

namespace {

// The provenance's options: one JSON object, nested at most 16 deep (every printer of it recurses),
// or empty (a pattern the library wrote without options).
void check_options_json(const std::string& path, const std::string& text) {
    constexpr int kMaxDepth = 16;
    if (text.empty()) return;
    bool too_deep = false;
    const auto j = nlohmann::json::parse(
        text,
        [&](int depth, nlohmann::json::parse_event_t, nlohmann::json&) {
            too_deep = too_deep || depth > kMaxDepth;
            return !too_deep;
        },
        false);
    if (too_deep) throw InputError(path, "attribute options", fmt::format("nests deeper than {} levels", kMaxDepth));
    if (j.is_discarded() || !j.is_object()) throw InputError(path, "attribute options", "is not a JSON object");
}

}  // namespace

namespace {

// A mask's stored density against its bits: calibrate stores BlockMask::density(), the kept tiles
// (forced text and ragged tiles included, padding bits past nb * nb not counted) over all nb * nb
// tiles. A stored value that does not round to the count of set bits contradicts the mask.
void check_mask_density(const std::string& path, const std::string& where, int64_t slot, int64_t head,
                        const BlockMask& m, double stored) {
    const double tiles = static_cast<double>(m.tiles());
    if (std::llround(stored * tiles) != m.count())
        throw InputError(path, where,
                         fmt::format("slot {} head {}: density {} but the mask keeps {} of {} tiles ({})", slot, head,
                                     stored, m.count(), m.tiles(), m.density()));
}

// Which reading: a deployable pattern or a partial (the schema first), or the rules after a
// `paro check` that applied the schema itself.
enum class Reading { pattern, partial, after_schema };

Pattern read_pattern_body(const h5::File& f, int64_t version, Reading reading) {
    const std::string& path = f.path();
    const hid_t root = f.id();
    // One definition of the layout: the schema `paro check` applies (schemas/paro-pattern-v*.json),
    // then the rules it cannot state, below (check runs these through check_pattern_rules).
    if (reading != Reading::after_schema) {
        SchemaUse use;
        use.format_attribute = reading == Reading::pattern;  // a partial names itself paro-partial
        // Values are checked below as they are decoded: the schema's pass over every value (masks
        // as doubles) took longer than the whole read at the CogVideoX-5B size (2,016 heads, 10 slots).
        use.dataset_values = false;
        require_schema(f, version >= 2 ? kPatternSchemaJson : kPatternV1SchemaJson, use);
    }

    Pattern p;
    p.provenance.tool_version = h5::read_string_attr(f, root, "/", "tool_version");
    p.provenance.options_json = h5::read_string_attr(f, root, "/", "options");
    check_options_json(path, p.provenance.options_json);
    p.provenance.source_dump = h5::read_string_attr(f, root, "/", "source_dump");
    p.provenance.source_checksum = h5::read_string_attr(f, root, "/", "source_checksum");
    p.provenance.created = h5::read_string_attr(f, root, "/", "created");
    p.objective = h5::read_string_attr(f, root, "/", "objective");
    if (p.objective != "recall" && p.objective != "paper" && p.objective != "output-error")
        throw InputError(path, "attribute objective", "must be recall, paper or output-error");
    const int64_t higher = h5::read_scalar_int_attr(f, root, "", "objective_higher_is_better");
    if (higher != 0 && higher != 1) throw InputError(path, "attribute objective_higher_is_better", "must be 0 or 1");
    p.higher_is_better = higher == 1;
    if (h5::read_string_attr(f, root, "/", "mask_encoding") != "bits-row-major-lsb-first")
        throw InputError(path, "attribute mask_encoding", "must be bits-row-major-lsb-first");
    const auto grid = h5::read_int_attr(f, root, "/", "grid");
    if (grid.size() != 3) throw InputError(path, "attribute grid", "must hold 3 integers");
    std::copy(grid.begin(), grid.end(), p.layout.grid.begin());
    p.layout.text_tokens = h5::read_scalar_int_attr(f, root, "", "text_tokens");
    p.layout.text_position =
        parse_text_position(h5::read_string_attr(f, root, "/", "text_position"), path, "attribute text_position");
    p.layout.validate(path);
    const int64_t block_q = h5::read_scalar_int_attr(f, root, "", "block_q");
    const int64_t block_k = h5::read_scalar_int_attr(f, root, "", "block_k");
    if (block_q < 1 || block_q > 4096 || block_q != block_k)
        throw InputError(path, "attribute block_q", "tiles must be square, 1 to 4096 tokens a side");
    p.block_q = p.block_k = static_cast<int>(block_q);

    // Map the file's order indices to ours by name.
    const auto names = h5::read_string_array_attr(f, root, "/", "order_names");
    if (names.size() != kNumOrders) throw InputError(path, "attribute order_names", "must list the 6 orders");
    std::array<AxisOrder, kNumOrders> file_order{};
    for (int i = 0; i < kNumOrders; ++i) {
        file_order[i] = parse_axis_order(names[i], path, "attribute order_names");
        for (int j = 0; j < i; ++j)
            if (file_order[j] == file_order[i])
                throw InputError(path, "attribute order_names", "names " + names[i] + " twice");
    }

    // Version 2 names its PV format codes (mapped by name, like the orders); version 1 stored bits.
    std::vector<PvFormat> file_pv_format;
    if (version >= 2)
        for (const auto& name : h5::read_string_array_attr(f, root, "/", "pv_format_names"))
            file_pv_format.push_back(parse_pv_format(name, path, "attribute pv_format_names"));
    const std::string pv_dataset = version >= 2 ? "pv_format" : "pv_bits";

    h5::Handle slots = h5::open_group(f, "/slots");
    p.slots.boundaries = h5::read_all_double(f, "/slots/boundaries");
    if (p.slots.boundaries.size() < 2 || p.slots.boundaries.front() != 0.0 || p.slots.boundaries.back() != 1.0)
        throw InputError(path, "/slots/boundaries", "must run from 0 to 1 with at least one slot");
    for (size_t i = 1; i < p.slots.boundaries.size(); ++i)
        if (!(p.slots.boundaries[i] > p.slots.boundaries[i - 1]))
            throw InputError(path, "/slots/boundaries", "must increase strictly");

    const int64_t T = p.slots.count();
    if (h5::read_scalar_int_attr(f, slots.get(), "/slots", "count") != T)
        throw InputError(path, "/slots attribute count", fmt::format("must be {} (the boundaries' slots)", T));
    const int64_t S = h5::read_scalar_int_attr(f, root, "", "num_samples");
    if (S < 0) throw InputError(path, "attribute num_samples", "must not be negative");
    const int64_t nb = p.tiles_per_side();
    if (h5::read_scalar_int_attr(f, root, "", "tiles_per_side") != nb)
        throw InputError(path, "attribute tiles_per_side",
                         fmt::format("must be {} (ceil of {} tokens / {})", nb, p.layout.tokens(), p.block_q));
    const int64_t nbytes = (checked_product(f, "attribute tiles_per_side", nb, nb) + 7) / 8;
    h5::Handle layers = h5::open_group(f, "/layers");
    const int64_t L = h5::read_scalar_int_attr(f, layers.get(), "/layers", "count");
    if (L <= 0) throw InputError(path, "/layers attribute count", "the pattern has no layers");
    if (static_cast<int64_t>(h5::list_members(f, "/layers").size()) != L)
        throw InputError(path, "/layers attribute count",
                         fmt::format("is {} but /layers holds {} members", L, h5::list_members(f, "/layers").size()));
    double mask_bytes = 0;
    for (int64_t l = 0; l < L; ++l) {
        const std::string base = fmt::format("/layers/{}", l);
        h5::Handle g = h5::open_group(f, base);
        const int64_t H = h5::read_scalar_int_attr(f, g.get(), base, "heads");
        if (H <= 0 || H > 65535) throw InputError(path, base + " attribute heads", "must be 1 to 65535");
        h5::Handle scores_probe = h5::open_dataset(f, base + "/scores");
        const int64_t M0 = static_cast<int64_t>(
            h5::read_string_array_attr(f, scores_probe.get(), base + "/scores", "metrics").size());
        checked_product(f, base, checked_product(f, base, T, H), nbytes);
        checked_product(f, base, H, S);
        // This layer's masks twice (as read, then as BlockMasks) on top of the layers read so far.
        mask_bytes += 2.0 * static_cast<double>(T) * static_cast<double>(H) * static_cast<double>(nbytes);
        require_memory(mask_bytes, fmt::format("the masks of {} layers ({} x {} tiles, {} slots)", l + 1, nb, nb, T), path,
                       base + "/masks");
        for (const char* name : {"/orders", "/qk_bits"}) expect_shape(f, base + name, {H});
        expect_shape(f, base + "/" + pv_dataset, {H});
        expect_shape(f, base + "/masks", {T, H, nbytes});
        expect_shape(f, base + "/density", {T, H});
        expect_shape(f, base + "/recall", {T, H});
        expect_shape(f, base + "/scores", {H, kNumOrders, M0});
        expect_shape(f, base + "/sample_order", {H, S});
        expect_shape(f, base + "/sample_recall", {H, S});
        // Small integers read wide: a narrowing read would clamp -1 to a valid 0.
        const auto orders = h5::read_all_int(f, base + "/orders");
        const auto qk = h5::read_all_int(f, base + "/qk_bits");
        const auto pv = h5::read_all_int(f, base + "/" + pv_dataset);
        const auto masks = h5::read_all_u8(f, base + "/masks");
        const auto density = h5::read_all_double(f, base + "/density");
        const auto recall = h5::read_all_double(f, base + "/recall");
        const auto scores = h5::read_all_double(f, base + "/scores");
        // Score columns are matched by name, so files with fewer or more metrics still read.
        h5::Handle scores_ds = h5::open_dataset(f, base + "/scores");
        const auto metric_names = h5::read_string_array_attr(f, scores_ds.get(), base + "/scores", "metrics");
        const int64_t M = static_cast<int64_t>(metric_names.size());
        const auto sample_order = h5::read_all_int(f, base + "/sample_order");
        const auto sample_recall = h5::read_all_double(f, base + "/sample_recall");
        expect_size(f, base + "/orders", orders, H);
        expect_size(f, base + "/qk_bits", qk, H);
        expect_size(f, base + "/" + pv_dataset, pv, H);
        expect_size(f, base + "/masks", masks, T * H * nbytes);
        expect_size(f, base + "/density", density, T * H);
        expect_size(f, base + "/recall", recall, T * H);
        expect_size(f, base + "/scores", scores, H * kNumOrders * M);
        expect_size(f, base + "/sample_order", sample_order, H * S);
        expect_size(f, base + "/sample_recall", sample_recall, H * S);
        expect_range(f, base + "/density", density, 0, 1);
        // Kept mass over total mass, both float sums: a hair above 1 by rounding (the schema's bound).
        expect_range(f, base + "/recall", recall, 0, 1.000001);
        expect_range(f, base + "/sample_recall", sample_recall, 0, 1.000001);
        for (double x : scores)
            if (!std::isfinite(x)) throw InputError(path, base + "/scores", "holds NaN or Inf");
        LayerPattern lp;
        lp.heads.resize(H);
        for (int64_t h = 0; h < H; ++h) {
            HeadPattern& hp = lp.heads[h];
            if (orders[h] < 0 || orders[h] >= kNumOrders)
                throw InputError(path, base + "/orders", fmt::format("bad order index {}", orders[h]));
            hp.order = file_order[orders[h]];
            if (qk[h] != 4 && qk[h] != 8 && qk[h] != 16)
                throw InputError(path, base + "/qk_bits", fmt::format("holds {}; QK bits are 4, 8 or 16", qk[h]));
            hp.qk_bits = static_cast<int>(qk[h]);
            if (version >= 2) {
                if (pv[h] < 0 || pv[h] >= static_cast<int64_t>(file_pv_format.size()))
                    throw InputError(path, base + "/pv_format", fmt::format("bad PV format code {}", pv[h]));
                hp.pv_format = file_pv_format[pv[h]];
            } else {
                hp.pv_format = pv_format_from_v1_bits(static_cast<int>(pv[h]), path, base + "/pv_bits");
            }
            for (int64_t t = 0; t < T; ++t) {
                BlockMask m;
                std::vector<uint8_t> b(masks.begin() + (t * H + h) * nbytes, masks.begin() + (t * H + h + 1) * nbytes);
                PARO_ASSERT(BlockMask::from_bytes(nb, std::move(b), m));
                check_mask_density(path, base + "/density", t, h, m, density[t * H + h]);
                hp.masks.push_back(std::move(m));
                hp.density.push_back(density[t * H + h]);
                hp.recall.push_back(recall[t * H + h]);
            }
            for (int i = 0; i < kNumOrders; ++i) {
                const auto fields = metric_fields(hp.scores[index_of(file_order[i])]);
                for (int64_t c = 0; c < M; ++c)
                    for (int k = 0; k < kNumMetrics; ++k)
                        if (metric_names[c] == kMetricNames[k]) *fields[k] = scores[(h * kNumOrders + i) * M + c];
            }
            for (int64_t s = 0; s < S; ++s) {
                const int64_t so = sample_order[h * S + s];
                if (so < 0 || so >= kNumOrders) throw InputError(path, base + "/sample_order", "bad order index");
                hp.sample_order.push_back(static_cast<uint8_t>(index_of(file_order[so])));
                hp.sample_recall.push_back(sample_recall[h * S + s]);
            }
        }
        p.layers.push_back(std::move(lp));
    }
    return p;
}

}  // namespace

Pattern read_pattern_file(const std::string& path) {
    h5::File f = h5::File::open_read(path);
    h5::rehearse_in_child(path, [&] { (void)read_pattern_file(path); });
    return read_pattern_body(f, h5::expect_format(f, "paro-pattern", 1, kPatternVersion), Reading::pattern);
}

void check_pattern_rules(const h5::File& f) {
    (void)read_pattern_body(f, h5::expect_format(f, "paro-pattern", 1, kPatternVersion), Reading::after_schema);
}

PartialPattern read_partial_file(const std::string& path) {
    h5::File f = h5::File::open_read(path);
    h5::rehearse_in_child(path, [&] { (void)read_partial_file(path); });
    PartialPattern part;
    part.pattern = read_pattern_body(f, h5::expect_format(f, "paro-partial", kPatternVersion, kPatternVersion),
                                     Reading::partial);
    const int64_t L = static_cast<int64_t>(part.pattern.layers.size());
    part.first_layer = h5::read_scalar_int_attr(f, f.id(), "", "first_layer");
    part.total_layers = h5::read_scalar_int_attr(f, f.id(), "", "total_layers");
    if (part.total_layers < 1 || part.total_layers > (int64_t(1) << 20))
        throw InputError(path, "attribute total_layers", "must be 1 to 2^20");
    if (part.first_layer < 0 || part.first_layer > part.total_layers - L)
        throw InputError(path, "attribute first_layer",
                         fmt::format("{} with {} layers does not fit in {}", part.first_layer, L, part.total_layers));
    part.source_identity = h5::read_string_attr(f, f.id(), "/", "source_identity");
    for (int64_t i = 0; i < L; ++i) {
        const std::string base = fmt::format("/layers/{}", i);
        h5::Handle g = h5::open_group(f, base);
        const int64_t crc = h5::read_scalar_int_attr(f, g.get(), base, "read_crc32");
        const int64_t bytes = h5::read_scalar_int_attr(f, g.get(), base, "read_bytes");
        if (crc < 0 || crc > int64_t(0xffffffff)) throw InputError(path, base + " attribute read_crc32", "must be a CRC-32");
        if (bytes < 0) throw InputError(path, base + " attribute read_bytes", "must not be negative");
        part.checksums.push_back({static_cast<uint32_t>(crc), bytes});
    }
    return part;
}

bool looks_like_pattern(const std::string& path) { return h5::probe_format_name(path) == "paro-pattern"; }

}  // namespace paro
