#include "paro/stats_file.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "paro/checksum.hpp"
#include "paro/error.hpp"
#include "paro/schema_check.hpp"
#include "paro/value_rules.hpp"
#include "paro/version.hpp"

namespace paro {

namespace {

constexpr const char* kFormat = "paro-stats";

double scalar_float(const h5::File& f, const char* name) {
    const auto v = h5::read_float_attr(f, f.id(), "/", name);
    if (v.size() != 1 || !std::isfinite(v[0]))
        throw InputError(f.path(), fmt::format("attribute {}", name), "must be one finite number");
    return v[0];
}

bool flag(const h5::File& f, const char* name) {
    const int64_t v = h5::read_scalar_int_attr(f, f.id(), "/", name);
    if (v != 0 && v != 1) throw InputError(f.path(), fmt::format("attribute {}", name), "must be 0 or 1");
    return v == 1;
}

// The scoring options as recorded, checked as calibrate would check them.
StatsScoring read_scoring(const h5::File& f) {
    StatsScoring s;
    s.tiles.block = h5::read_scalar_int_attr(f, f.id(), "/", "block");
    if (s.tiles.block != kRuntimeTile)
        throw InputError(f.path(), "attribute block", fmt::format("is {}; statistics are made with {}-token tiles",
                                                                  s.tiles.block, kRuntimeTile));
    s.tiles.eps = static_cast<float>(scalar_float(f, "eps"));
    s.mask.density = scalar_float(f, "density");
    if (h5::has_attr(f.id(), "recall")) s.mask.recall = scalar_float(f, "recall");
    s.mask.min_density = scalar_float(f, "min_density");
    s.mask.force_text = flag(f, "force_text");
    s.mask.force_ragged = flag(f, "force_ragged");
    try {
        s.objective.kind = parse_objective(h5::read_string_attr(f, f.id(), "/", "objective"));
    } catch (const ParameterError& e) {
        throw InputError(f.path(), "attribute objective", e.what());
    }
    if (s.objective.kind == ObjectiveKind::output_error)
        throw InputError(f.path(), "attribute objective", "output-error needs v, which statistics files do not keep");
    s.objective.alpha = scalar_float(f, "alpha");
    s.objective.sigma = scalar_float(f, "sigma");
    const bool ok = s.tiles.eps > 0 && s.mask.density > 0 && s.mask.density <= 1 && s.mask.min_density >= 0 &&
                    s.mask.min_density <= s.mask.density && (!s.mask.recall || (*s.mask.recall > 0 && *s.mask.recall <= 1)) &&
                    s.objective.alpha >= 0 && s.objective.alpha <= 1 && s.objective.sigma > 0 && s.objective.sigma <= 1;
    if (!ok)
        throw InputError(f.path(), "attributes eps, density, recall, min_density, alpha, sigma",
                         "hold a value outside what calibrate accepts");
    return s;
}

std::string layer_path(int64_t l) { return fmt::format("/layers/{}", l); }

// The shape of a dataset of the given class (and element size, when nonzero) whose data was
// written: a dataset never written would read as fill values.
std::vector<int64_t> dataset_shape(const h5::File& f, const std::string& path, h5::TypeClass type, size_t bytes = 0) {
    h5::Handle d = h5::open_dataset(f, path);
    const auto info = h5::dataset_info(f, d.get(), path);
    if (info.type != type)
        throw InputError(f.path(), path, type == h5::TypeClass::integer ? "must hold integers" : "must hold floats");
    if (bytes && info.type_size != bytes)
        throw InputError(f.path(), path, fmt::format("must hold {}-byte values, holds {}-byte ones", bytes, info.type_size));
    int64_t elements = 1;
    for (int64_t n : info.shape) elements *= n;
    if (elements > 0 && h5::stored_bytes(d.get()) == 0) throw InputError(f.path(), path, "holds no data (never written)");
    return info.shape;
}

void expect_shape(const h5::File& f, const std::string& path, const std::vector<int64_t>& got,
                  const std::vector<int64_t>& want) {
    if (got != want)
        throw InputError(f.path(), path, fmt::format("has shape [{}], expected [{}]", fmt::join(got, ", "),
                                                     fmt::join(want, ", ")));
}

}  // namespace

int64_t StatsInfo::tiles_per_side() const { return paro::tiles_per_side(dump.tokens(), scoring.tiles.block); }

StatsReader::StatsReader(const std::string& path) : file_(h5::open_for<StatsReader>(path)) {
    h5::expect_format(file_, kFormat, 1, 1);
    // The layout `paro check` applies (schemas/paro-stats-v1.json); masses are checked as read.
    SchemaUse layout;
    layout.dataset_values = false;
    require_schema(file_, kStatsSchemaJson, layout);
    read_dump_header(file_, info_.dump);
    info_.scoring = read_scoring(file_);
    if (h5::has_attr(file_.id(), "tile_statistics"))
        info_.tile_statistics = h5::read_string_attr(file_, file_.id(), "/", "tile_statistics");
    const int64_t S = static_cast<int64_t>(info_.dump.samples.size());
    const int64_t nb = info_.tiles_per_side();
    const auto names = h5::list_members(file_, "/layers");
    const int64_t L = static_cast<int64_t>(names.size());
    if (L == 0) throw InputError(path, "/layers", "holds no layers");
    for (int64_t l = 0; l < L; ++l) {
        const std::string base = layer_path(l);
        if (!h5::is_group(file_.id(), base))
            throw InputError(path, base, fmt::format("missing group (layers must be named 0..{})", L - 1));
        h5::Handle g = h5::open_group(file_, base);
        const auto order = dataset_shape(file_, base + "/order", h5::TypeClass::integer);
        if (order.size() != 1 || order[0] < 1) throw InputError(path, base + "/order", "must be [heads], heads >= 1");
        const int64_t H = order[0];
        expect_shape(file_, base + "/metrics", dataset_shape(file_, base + "/metrics", h5::TypeClass::floating, 8),
                     {H, S, kNumOrders, kNumMetrics});
        expect_shape(file_, base + "/mass", dataset_shape(file_, base + "/mass", h5::TypeClass::floating, 4),
                     {H, S, nb, nb});
        const bool others = h5::link_exists(file_.id(), base + "/other_mass");
        has_others_.push_back(others);
        if (others)
            expect_shape(file_, base + "/other_mass",
                         dataset_shape(file_, base + "/other_mass", h5::TypeClass::floating, 4),
                         {H, S, kNumOrders - 1, nb, nb});
        DumpLayer layer;
        layer.heads = H;
        layer.head_dim = h5::read_scalar_int_attr(file_, g.get(), base, "head_dim");
        if (layer.head_dim <= 0) throw InputError(path, base + " attribute head_dim", "must be positive");
        const auto scale = h5::read_float_attr(file_, g.get(), base, "scale");
        if (scale.size() != 1 || !std::isfinite(scale[0]) || scale[0] <= 0)
            throw InputError(path, base + " attribute scale", "must be one positive finite number");
        layer.scale = scale[0];
        info_.dump.layers.push_back(layer);
        const int64_t model_layer =
            h5::has_attr(g.get(), "model_layer") ? h5::read_scalar_int_attr(file_, g.get(), base, "model_layer") : -1;
        if (model_layer < -1 || (model_layer == -1 && h5::has_attr(g.get(), "model_layer")))
            throw InputError(path, base + " attribute model_layer", "must be >= 0");
        info_.model_layer.push_back(model_layer);
    }
}

StatsLayerScores StatsReader::read_scores(int64_t layer) const {
    const std::string base = layer_path(layer);
    const int64_t H = info_.dump.layers[layer].heads, S = static_cast<int64_t>(info_.dump.samples.size());
    const std::vector<double> m = h5::read_all_double(file_, base + "/metrics");
    const std::vector<int64_t> order = h5::read_all_int(file_, base + "/order");
    crc_ = crc32_update(crc_, m.data(), m.size() * sizeof(double));
    StatsLayerScores out;
    size_t i = 0;
    for (int64_t h = 0; h < H; ++h) {
        if (order[h] < 0 || order[h] >= kNumOrders)
            throw InputError(file_.path(), base + "/order", fmt::format("head {}: {} is not an order (0..5)", h, order[h]));
        out.order.push_back(kAllOrders[order[h]]);
        auto& head = out.metrics.emplace_back(static_cast<size_t>(S));
        for (int64_t s = 0; s < S; ++s)
            for (int o = 0; o < kNumOrders; ++o)
                for (double* f : metric_fields(head[s][o])) {
                    const double v = m[i++];
                    if (!std::isfinite(v))
                        throw InputError(file_.path(), base + "/metrics",
                                         fmt::format("head {} sample {}: NaN or infinite metric", h, s));
                    *f = v;
                }
    }
    return out;
}

std::vector<float> StatsReader::checked_masses(const std::string& path, const std::vector<int64_t>& start,
                                              const std::vector<int64_t>& count, int64_t first_head) const {
    h5::Handle d = h5::open_dataset(file_, path);
    size_t n = 1;
    for (int64_t c : count) n *= static_cast<size_t>(c);
    std::vector<float> out(n);
    h5::read_box(file_, d.get(), path, start, count, out.data());
    const size_t per_head = n / static_cast<size_t>(count[0]);
    for (size_t i = 0; i < out.size(); ++i)
        if (!(out[i] >= 0) || std::isinf(out[i]))
            throw InputError(file_.path(), path,
                             fmt::format("head {} holds a negative, NaN or infinite mass",
                                         first_head + static_cast<int64_t>(i / per_head)));
    // Each (head, sample) block of `mass` (count {heads, S, nb, nb}) must hold some mass.
    if (count.size() == 4 && path.size() >= 5 && path.compare(path.size() - 5, 5, "/mass") == 0) {
        const size_t block = static_cast<size_t>(count[2] * count[3]);
        for (size_t b = 0; block && b < n / block; ++b)
            if (all_zero(out.data() + b * block, static_cast<int64_t>(block)))
                throw InputError(file_.path(), path,
                                 fmt::format("[{}, {}] is all zeros: no attention mass",
                                             first_head + static_cast<int64_t>(b) / count[1],
                                             static_cast<int64_t>(b) % count[1]));
    }
    crc_ = crc32_update(crc_, out.data(), out.size() * sizeof(float));
    return out;
}

std::vector<float> StatsReader::read_mass(int64_t layer, int64_t h0, int64_t count) const {
    const int64_t S = static_cast<int64_t>(info_.dump.samples.size()), nb = info_.tiles_per_side();
    return checked_masses(layer_path(layer) + "/mass", {h0, 0, 0, 0}, {count, S, nb, nb}, h0);
}

std::vector<float> StatsReader::read_head_mass(int64_t layer, int64_t head, AxisOrder stored, AxisOrder order) const {
    if (order == stored) return read_mass(layer, head, 1);
    const std::string path = layer_path(layer) + "/other_mass";
    if (!has_others_[layer])
        throw InputError(file_.path(), layer_path(layer) + "/mass",
                         fmt::format("head {} keeps masses under {} only and {} is needed: write the statistics with "
                                     "all orders (paro calibrate --stats-orders all, paro.Capture(all_orders=True))",
                                     head, to_string(stored), to_string(order)));
    const auto others = other_orders(stored);
    const int64_t j = std::find(others.begin(), others.end(), order) - others.begin();
    const int64_t S = static_cast<int64_t>(info_.dump.samples.size()), nb = info_.tiles_per_side();
    return checked_masses(path, {head, 0, j, 0, 0}, {1, S, 1, nb, nb}, head);
}

std::array<AxisOrder, kNumOrders - 1> other_orders(AxisOrder stored) {
    std::array<AxisOrder, kNumOrders - 1> out{};
    size_t j = 0;
    for (AxisOrder o : kAllOrders)
        if (o != stored) out[j++] = o;
    return out;
}

StatsWriter::StatsWriter(const std::string& path, const StatsInfo& info, bool all_orders)
    : file_(h5::File::create(path)), info_(info), all_orders_(all_orders), written_(info.dump.layers.size()) {
    const hid_t root = file_.id();
    h5::write_attr(root, "paro_format", std::string(kFormat));
    h5::write_attr(root, "paro_version", int64_t{1});
    write_dump_header(root, info.dump);
    const StatsScoring& s = info.scoring;
    h5::write_attr(root, "block", s.tiles.block);
    h5::write_attr(root, "eps", static_cast<double>(s.tiles.eps));
    h5::write_attr(root, "density", s.mask.density);
    if (s.mask.recall) h5::write_attr(root, "recall", *s.mask.recall);
    h5::write_attr(root, "min_density", s.mask.min_density);
    h5::write_attr(root, "force_text", int64_t{s.mask.force_text});
    h5::write_attr(root, "force_ragged", int64_t{s.mask.force_ragged});
    h5::write_attr(root, "objective", to_string(s.objective.kind));
    h5::write_attr(root, "alpha", s.objective.alpha);
    h5::write_attr(root, "sigma", s.objective.sigma);
    h5::write_attr(root, "tile_statistics", info.tile_statistics);
    h5::write_attr(root, "tool_version", std::string(kVersion));
    h5::create_group(root, "layers");
}

void StatsWriter::begin_layer(int64_t layer) {
    const DumpLayer& info = info_.dump.layers[layer];
    const int64_t H = info.heads, S = static_cast<int64_t>(info_.dump.samples.size());
    const int64_t nb = info_.tiles_per_side();
    PARO_ASSERT(written_[layer].empty());  // each layer once
    written_[layer].assign(static_cast<size_t>(H), -1);
    h5::Handle layers = h5::open_group(file_, "/layers");
    h5::Handle g = h5::create_group(layers.get(), std::to_string(layer));
    h5::write_attr(g.get(), "head_dim", info.head_dim);
    h5::write_attr(g.get(), "scale", info.scale);
    if (info_.model_layer.size() > static_cast<size_t>(layer) && info_.model_layer[layer] >= 0)
        h5::write_attr(g.get(), "model_layer", info_.model_layer[layer]);
    h5::create_dataset(g.get(), "mass", {H, S, nb, nb}, h5::StoreType::f32, {{1, 1, nb, nb}, 0});
    if (all_orders_)
        h5::create_dataset(g.get(), "other_mass", {H, S, kNumOrders - 1, nb, nb}, h5::StoreType::f32,
                           {{1, 1, 1, nb, nb}, 0});
}

void StatsWriter::write_head(int64_t layer, int64_t head, AxisOrder order, const HeadMassFn& mass) {
    const int64_t S = static_cast<int64_t>(info_.dump.samples.size()), nb = info_.tiles_per_side();
    const size_t tiles = static_cast<size_t>(nb * nb);
    PARO_ASSERT(static_cast<size_t>(head) < written_[layer].size() && written_[layer][head] < 0);
    written_[layer][head] = index_of(order);
    const std::string base = layer_path(layer);
    std::vector<float> buf;
    buf.reserve(static_cast<size_t>(S) * tiles * (all_orders_ ? kNumOrders - 1 : 1));  // one allocation
    buf.resize(static_cast<size_t>(S) * tiles);
    for (int64_t s = 0; s < S; ++s) mass(s, order, buf.data() + s * tiles);
    h5::Handle d = h5::open_dataset(file_, base + "/mass");
    h5::write_box(d.get(), {head, 0, 0, 0}, {1, S, nb, nb}, buf.data());
    if (!all_orders_) return;
    const auto others = other_orders(order);
    buf.resize(static_cast<size_t>(S) * others.size() * tiles);
    for (int64_t s = 0; s < S; ++s)
        for (size_t j = 0; j < others.size(); ++j) mass(s, others[j], buf.data() + (s * others.size() + j) * tiles);
    h5::Handle o = h5::open_dataset(file_, base + "/other_mass");
    h5::write_box(o.get(), {head, 0, 0, 0, 0}, {1, S, kNumOrders - 1, nb, nb}, buf.data());
}

void StatsWriter::end_layer(int64_t layer, const StatsLayerScores& scores) {
    const int64_t H = info_.dump.layers[layer].heads, S = static_cast<int64_t>(info_.dump.samples.size());
    PARO_ASSERT(static_cast<int64_t>(scores.order.size()) == H && static_cast<int64_t>(scores.metrics.size()) == H);
    std::vector<double> m;
    std::vector<uint8_t> order;
    for (int64_t h = 0; h < H; ++h) {
        PARO_ASSERT(written_[layer][h] == index_of(scores.order[h]));  // masses stored under the order named
        order.push_back(static_cast<uint8_t>(index_of(scores.order[h])));
        PARO_ASSERT(static_cast<int64_t>(scores.metrics[h].size()) == S);
        for (const SampleMetrics& sm : scores.metrics[h])
            for (const OrderMetrics& om : sm)
                for (double v : metric_values(om)) m.push_back(v);
    }
    h5::Handle g = h5::open_group(file_, layer_path(layer));
    h5::Handle dm = h5::write_dataset(g.get(), "metrics", {H, S, kNumOrders, kNumMetrics}, h5::StoreType::f64, m.data(),
                                      h5::StoreType::f64);
    h5::write_attr(dm.get(), "metrics", std::vector<std::string>(kMetricNames.begin(), kMetricNames.end()));
    h5::write_dataset(g.get(), "order", {H}, h5::StoreType::u8, order.data(), h5::StoreType::u8);
}

void StatsWriter::write_layer(int64_t layer, const StatsLayerScores& scores,
                              const std::function<void(int64_t, int64_t, AxisOrder, float*)>& mass) {
    begin_layer(layer);
    for (int64_t h = 0; h < static_cast<int64_t>(scores.order.size()); ++h)
        write_head(layer, h, scores.order[h], [&](int64_t s, AxisOrder o, float* out) { mass(h, s, o, out); });
    end_layer(layer, scores);
}

std::vector<std::pair<std::string, std::string>> scoring_fields(const StatsScoring& s) {
    const auto flag = [](bool b) { return std::string(b ? "1" : "0"); };
    return {{"block", std::to_string(s.tiles.block)},
            {"eps", fmt::format("{}", s.tiles.eps)},
            {"density", fmt::format("{}", s.mask.density)},
            {"recall", s.mask.recall ? fmt::format("{}", *s.mask.recall) : std::string("none")},
            {"min_density", fmt::format("{}", s.mask.min_density)},
            {"force_text", flag(s.mask.force_text)},
            {"force_ragged", flag(s.mask.force_ragged)},
            {"objective", to_string(s.objective.kind)},
            {"alpha", fmt::format("{}", s.objective.alpha)},
            {"sigma", fmt::format("{}", s.objective.sigma)}};
}

std::string readable_bytes(double b) {
    if (b >= 1e9) return fmt::format("{:.1f} GB", b / 1e9);
    if (b >= 1e6) return fmt::format("{:.1f} MB", b / 1e6);
    return fmt::format("{:.0f} KB", std::ceil(b / 1e3));
}

double stats_file_bytes(const StatsInfo& info, bool all_orders) {
    const double tiles = static_cast<double>(info.tiles_per_side()) * static_cast<double>(info.tiles_per_side());
    const double S = static_cast<double>(info.dump.samples.size());
    double bytes = 0;
    for (const DumpLayer& l : info.dump.layers)
        bytes += static_cast<double>(l.heads) * S * (tiles * sizeof(float) * (all_orders ? kNumOrders : 1) +
                                                      kNumOrders * kNumMetrics * sizeof(double));
    return bytes;
}

void require_free_space(const std::string& output, double bytes, const std::string& option, const std::string& hint) {
    namespace fs = std::filesystem;
    std::error_code ec;
    const fs::path dir = fs::absolute(output, ec).parent_path();
    const fs::space_info space = fs::space(dir, ec);
    // HDF5's own structures (chunk indexes, headers) come on top: 5% and 1 MB of margin.
    const double needed = bytes * 1.05 + (1 << 20);
    if (ec || static_cast<double>(space.available) >= needed) return;  // unknown: let the write tell
    throw InputError(output, option,
                     fmt::format("needs about {} and {} has {} free{}", readable_bytes(needed), dir.string(),
                                 readable_bytes(static_cast<double>(space.available)),
                                 hint.empty() ? "" : "; " + hint));
}

bool looks_like_stats(const std::string& path) { return h5::probe_format_name(path) == kFormat; }

}  // namespace paro
