#include "paro/summary.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <numeric>
#include <set>

#include "paro/error.hpp"
#include "paro/mask_builder.hpp"
#include "paro/stats_file.hpp"

namespace paro {

namespace {

struct Style {
    bool on;
    std::string bold(const std::string& s) const { return on ? "\033[1m" + s + "\033[0m" : s; }
    std::string dim(const std::string& s) const { return on ? "\033[2m" + s + "\033[0m" : s; }
    std::string alarm(const std::string& s) const { return on ? "\033[1;31m" + s + "\033[0m" : s; }
    // One color per order; text is whatever stands for it (its name, a count).
    std::string paint(AxisOrder o, const std::string& text) const {
        static const char* codes[kNumOrders] = {"34", "36", "32", "33", "35", "31"};
        return on ? fmt::format("\033[{}m{}\033[0m", codes[index_of(o)], text) : text;
    }
    std::string order(AxisOrder o) const { return paint(o, to_string(o)); }
};

std::array<int, kNumOrders> order_counts(const LayerPattern& l) {
    std::array<int, kNumOrders> c{};
    for (const auto& h : l.heads) ++c[index_of(h.order)];
    return c;
}

std::string layer_table(const Pattern& p, const Style& st) {
    std::string out = fmt::format("  {:>5}  {:>5}", "layer", "heads");
    for (AxisOrder o : kAllOrders) out += fmt::format("  {:>4}", to_string(o));
    out += fmt::format("  {:>8}  {:>8}\n", "density", "recall");
    for (size_t l = 0; l < p.layers.size(); ++l) {
        const auto& L = p.layers[l];
        const auto counts = order_counts(L);
        double dens = 0, rec = 0;
        int n = 0;
        for (const auto& h : L.heads)
            for (size_t t = 0; t < h.density.size(); ++t) dens += h.density[t], rec += h.recall[t], ++n;
        out += fmt::format("  {:>5}  {:>5}", l, L.heads.size());
        for (int o = 0; o < kNumOrders; ++o) {
            const std::string cell = counts[o] ? std::to_string(counts[o]) : std::string("-");
            out += "  " + std::string(4 - std::min<size_t>(4, cell.size()), ' ') +
                   (counts[o] ? st.paint(kAllOrders[o], cell) : st.dim(cell));
        }
        out += fmt::format("  {:>8.3f}  {:>8.4f}\n", n ? dens / n : 0.0, n ? rec / n : 0.0);
    }
    return out;
}

// The keys both formats share: what the file is and its token layout. `version` is the format
// version the JSON describes (a version-1 pattern reads into, and prints as, the current one).
nlohmann::json header_json(const char* format, int version, const TokenLayout& layout) {
    return {{"format", format},
            {"version", version},
            {"grid", layout.grid},
            {"text_tokens", layout.text_tokens},
            {"text_position", to_string(layout.text_position)},
            {"tokens", layout.tokens()}};
}

// The quantization plan in a line: how many heads run each QK width and each PV format.
std::string quantization_plan(const Pattern& p) {
    std::map<int, int64_t> qk;
    std::map<PvFormat, int64_t> pv;
    for (const LayerPattern& l : p.layers)
        for (const HeadPattern& h : l.heads) ++qk[h.qk_bits], ++pv[h.pv_format];
    std::string out = "QK";
    for (const auto& [bits, n] : qk) out += fmt::format(" {}-bit x {}", bits, n);
    out += ", PV";
    for (const auto& [f, n] : pv) out += fmt::format(" {} x {}", to_string(f), n);
    return out + " heads";
}

}  // namespace

std::string human_bytes(int64_t b) {
    if (b < 1024) return fmt::format("{} B", b);
    if (b < 1024 * 1024) return fmt::format("{:.1f} KiB", b / 1024.0);
    if (b < 1024LL * 1024 * 1024) return fmt::format("{:.1f} MiB", b / (1024.0 * 1024));
    return fmt::format("{:.2f} GiB", b / (1024.0 * 1024 * 1024));
}

nlohmann::json calibration_timing_json(const CalibrationTimes& t, double write_seconds) {
    nlohmann::json devices = nlohmann::json::array();
    for (const CalibrationTimes::Device& d : t.devices)
        devices.push_back({{"name", d.name},
                           {"statistics_seconds", d.compute_seconds},
                           {"scoring_seconds", d.score_seconds},
                           {"read_wait_seconds", d.read_wait_seconds},
                           {"scoring_wait_seconds", d.score_wait_seconds}});
    nlohmann::json j = {{"read_seconds", t.read_seconds}, {"read_bytes", t.stored_bytes},
                        {"write_seconds", write_seconds}, {"wall_seconds", t.wall_seconds + write_seconds},
                        {"devices", devices}};
    if (t.setup_seconds > 0) {
        j["setup_seconds"] = t.setup_seconds;
        j["device_setup_seconds"] = t.device_setup_seconds;
        j["assemble_seconds"] = t.assemble_seconds;
    }
    return j;
}

std::vector<std::pair<std::string, int>> distinct_names(const std::vector<std::string>& names) {
    std::vector<std::pair<std::string, int>> out;
    for (const std::string& n : names) {
        const auto it = std::find_if(out.begin(), out.end(), [&](const auto& o) { return o.first == n; });
        if (it == out.end()) out.emplace_back(n, 1);
        else ++it->second;
    }
    return out;
}

std::string calibration_timing(const CalibrationTimes& t, double write_seconds) {
    std::vector<std::string> device_names;
    double compute_total = 0, score_total = 0, read_wait = 0, score_wait = 0;
    for (const CalibrationTimes::Device& d : t.devices) {
        device_names.push_back(d.name);
        compute_total += d.compute_seconds, score_total += d.score_seconds;
        read_wait += d.read_wait_seconds, score_wait += d.score_wait_seconds;
    }
    std::string names;
    for (const auto& [name, count] : distinct_names(device_names))
        names += (names.empty() ? "" : ", ") + name + (count > 1 ? fmt::format(" ({} workers)", count) : "");
    const double rate = t.read_seconds > 0 ? static_cast<double>(t.stored_bytes) / t.read_seconds / 1e9 : 0.0;
    std::string out = fmt::format("  tile statistics on {}\n", names);
    out += fmt::format("  time: read {:.2f} s ({}, {:.2f} GB/s), tile statistics {:.2f} s, scoring {:.2f} s{}, "
                       "write {:.2f} s; {:.2f} s from dump to pattern, stages overlapping\n",
                       t.read_seconds, human_bytes(t.stored_bytes), rate, compute_total, score_total,
                       t.devices.size() > 1 ? " (summed over workers)" : "", write_seconds,
                       t.wall_seconds + write_seconds);
    // Which stage the workers waited for: the one that bounds the pipeline (the read: the dump's
    // storage and decoding; scoring: the host's cores; neither: the statistics themselves).
    out += fmt::format("  waiting: tile statistics idle {:.2f} s for the reads, {:.2f} s for the scoring{}\n",
                       read_wait, score_wait, t.devices.size() > 1 ? " (summed over workers)" : "");
    if (t.setup_seconds > 0)
        out += fmt::format("  around it: set-up {:.2f} s (devices {:.2f} s), assembling the layers {:.2f} s\n",
                           t.setup_seconds, t.device_setup_seconds, t.assemble_seconds);
    return out;
}

nlohmann::json pattern_json(const Pattern& p, int64_t file_bytes) {
    using nlohmann::json;
    json j = header_json("paro-pattern", kPatternVersion, p.layout);
    j["block_size"] = {p.block_q, p.block_k};
    j["tiles_per_side"] = p.tiles_per_side();
    j["slots"] = {{"count", p.slots.count()}, {"boundaries", p.slots.boundaries}};
    j["objective"] = p.objective;
    j["num_samples"] = p.num_samples();
    j["mean_density"] = p.mean_density();
    j["mean_recall"] = p.mean_recall();
    j["file_bytes"] = file_bytes;
    j["provenance"] = {{"tool_version", p.provenance.tool_version},
                       {"source_dump", p.provenance.source_dump},
                       {"source_checksum", p.provenance.source_checksum},
                       {"created", p.provenance.created},
                       {"options", json::parse(p.provenance.options_json.empty() ? "{}" : p.provenance.options_json,
                                               nullptr, false)}};
    json layers = json::array();
    for (const auto& L : p.layers) {
        json heads = json::array();
        for (const auto& h : L.heads) {
            json scores = json::object();
            for (AxisOrder o : kAllOrders) {
                const auto& m = h.scores[index_of(o)];
                scores[to_string(o)] = {{"objective", m.objective}, {"sparsity", m.sparsity},
                                        {"incoherence", m.incoherence}, {"recall", m.recall},
                                        {"free_recall", m.free_recall}};
                if (m.output_rel_l1 >= 0) scores[to_string(o)]["output_rel_l1"] = m.output_rel_l1;
            }
            heads.push_back({{"order", to_string(h.order)},
                             {"density", h.density},
                             {"recall", h.recall},
                             {"qk_bits", h.qk_bits},
                             {"pv_format", to_string(h.pv_format)},
                             {"scores", scores}});
        }
        layers.push_back({{"heads", heads}});
    }
    j["layers"] = layers;
    return j;
}

nlohmann::json dump_json(const DumpInfo& d) {
    using nlohmann::json;
    json j = header_json("paro-dump", 1, d.layout);
    j["model"] = d.model;
    const auto recorded = [](int64_t v) { return v < 0 ? json(nullptr) : json(v); };  // -1: not recorded
    j["num_steps"] = recorded(d.num_steps);
    json samples = json::array();
    for (const auto& s : d.samples)
        samples.push_back({{"timestep", s.timestep}, {"step", recorded(s.step)}, {"prompt", s.prompt}});
    j["samples"] = samples;
    if (!d.prompt_names.empty()) j["prompt_names"] = d.prompt_names;
    json layers = json::array();
    for (const auto& l : d.layers)
        layers.push_back({{"kind", l.kind == DumpKind::qk ? "qk" : "attn"},
                          {"heads", l.heads},
                          {"head_dim", l.head_dim},
                          {"value_dim", l.value_dim},
                          {"scale", l.scale}});
    j["layers"] = layers;
    return j;
}

namespace {
// Per layer of a statistics file: how many heads keep their masses under each order.
std::vector<std::array<int64_t, kNumOrders>> stored_orders(const StatsReader& r) {
    std::vector<std::array<int64_t, kNumOrders>> out;
    for (int64_t l = 0; l < static_cast<int64_t>(r.info().dump.layers.size()); ++l) {
        auto& counts = out.emplace_back();
        counts.fill(0);
        for (AxisOrder o : r.read_scores(l).order) ++counts[index_of(o)];
    }
    return out;
}
}  // namespace

nlohmann::json stats_json(const StatsReader& r, int64_t file_bytes) {
    const StatsInfo& info = r.info();
    nlohmann::json j = dump_json(info.dump);
    j["format"] = "paro-stats";
    j["file_bytes"] = file_bytes;
    j["tile_statistics"] = info.tile_statistics;
    j["all_orders"] = r.all_orders();
    const StatsScoring& s = info.scoring;
    j["scoring"] = {{"block", s.tiles.block},           {"eps", s.tiles.eps},
                    {"density", s.mask.density},         {"min_density", s.mask.min_density},
                    {"force_text", s.mask.force_text},   {"force_ragged", s.mask.force_ragged},
                    {"objective", to_string(s.objective.kind)}, {"alpha", s.objective.alpha},
                    {"sigma", s.objective.sigma}};
    if (s.mask.recall) j["scoring"]["recall"] = *s.mask.recall;
    const auto orders = stored_orders(r);
    for (size_t l = 0; l < orders.size(); ++l) {
        nlohmann::json& layer = j["layers"][l];
        layer.erase("kind");
        layer.erase("value_dim");
        for (AxisOrder o : kAllOrders) layer["orders"][to_string(o)] = orders[l][index_of(o)];
    }
    return j;
}

std::string stats_text(const StatsReader& r, int64_t file_bytes, bool color) {
    const Style st{color};
    const StatsInfo& info = r.info();
    const DumpInfo& d = info.dump;
    std::string out = st.bold("paro-stats v1") + fmt::format("  ({}, {})\n", human_bytes(file_bytes), printable(d.path));
    auto row = [&](const char* k, const std::string& v) { out += fmt::format("  {:<14} {}\n", k, printable(v)); };
    row("model", d.model.empty() ? "-" : d.model);
    row("layout", fmt::format("{} = {} tokens", d.layout.describe(), d.layout.tokens()));
    std::set<int64_t> prompts;
    for (const DumpSample& x : d.samples) prompts.insert(x.prompt);
    row("samples", fmt::format("{} of {} prompt(s) (num_steps {})", d.samples.size(), prompts.size(),
                               d.num_steps > 0 ? std::to_string(d.num_steps) : "-"));
    row("heads", fmt::format("{} in {} layers", d.total_heads(), d.layers.size()));
    const StatsScoring& s = info.scoring;
    row("scoring", fmt::format("objective {}, density {}{}", to_string(s.objective.kind), s.mask.density,
                               s.mask.recall ? fmt::format(", recall {}", *s.mask.recall) : std::string()));
    row("masses", r.all_orders() ? "all six orders (merges exactly with more samples)" : "the chosen order only");
    row("computed by", info.tile_statistics.empty() ? "-" : info.tile_statistics);
    out += fmt::format("\n  {:>5}  {:>5}  {:>4}", "layer", "heads", "D");
    for (AxisOrder o : kAllOrders) out += fmt::format("  {:>4}", to_string(o));
    out += "\n";
    const auto orders = stored_orders(r);
    for (size_t l = 0; l < orders.size(); ++l) {
        out += fmt::format("  {:>5}  {:>5}  {:>4}", l, d.layers[l].heads, d.layers[l].head_dim);
        for (int64_t n : orders[l]) out += fmt::format("  {:>4}", n ? std::to_string(n) : "-");
        out += "\n";
    }
    return out;
}

namespace {
// The rows at a time its masks were chosen (calibrate's --mask-rows), as the provenance's options say:
// 1 where they do not say it as a count in range (older files, other writers).
int mask_rows_of(const Pattern& p) {
    const auto options = nlohmann::json::parse(p.provenance.options_json, nullptr, false);
    if (!options.is_object() || !options.contains("mask_rows") || !options["mask_rows"].is_number_integer()) return 1;
    const int64_t rows = options["mask_rows"].get<int64_t>();
    return rows >= 1 && rows <= kMaxMaskRows ? static_cast<int>(rows) : 1;
}
}  // namespace

std::string pattern_text(const Pattern& p, int64_t file_bytes, bool color) {
    const Style st{color};
    std::string out = st.bold(fmt::format("paro-pattern v{}", kPatternVersion)) +
                      fmt::format("  ({}, made by paro {} from {})\n", human_bytes(file_bytes),
                                  printable(p.provenance.tool_version), printable(p.provenance.source_dump));
    auto row = [&](const char* k, const std::string& v) { out += fmt::format("  {:<14} {}\n", k, printable(v)); };
    row("layout", fmt::format("{} = {} tokens", p.layout.describe(), p.layout.tokens()));
    const int mask_rows = mask_rows_of(p);
    row("tiles", fmt::format("{}x{}, {} per side{}", p.block_q, p.block_k, p.tiles_per_side(),
                             mask_rows > 1 ? fmt::format(", masks chosen {} rows at a time", mask_rows) : ""));
    std::string slots;
    for (int t = 0; t < p.slots.count(); ++t) slots += (t ? " " : "") + p.slots.describe(t);
    row("slots", fmt::format("{}: {}", p.slots.count(), slots));
    row("objective", p.objective);
    row("samples", std::to_string(p.num_samples()));
    row("density", fmt::format("{:.4f} mean", p.mean_density()));
    row("recall", fmt::format("{:.4f} mean", p.mean_recall()));
    row("checksum", p.provenance.source_checksum);
    row("quantization", quantization_plan(p));
    out += "\n" + layer_table(p, st);
    return out;
}

std::string dump_text(const DumpInfo& d, bool color) {
    const Style st{color};
    std::string out = st.bold("paro-dump v1") + "  " + printable(d.path) + "\n";
    auto row = [&](const char* k, const std::string& v) { out += fmt::format("  {:<14} {}\n", k, printable(v)); };
    row("model", d.model.empty() ? "-" : d.model);
    row("layout", fmt::format("{} = {} tokens", d.layout.describe(), d.layout.tokens()));
    row("samples", fmt::format("{} (num_steps {})", d.samples.size(), d.num_steps > 0 ? std::to_string(d.num_steps) : "-"));
    row("layers", std::to_string(d.layers.size()));
    row("heads", std::to_string(d.total_heads()) + " in all");
    out += fmt::format("\n  {:>5}  {:>5}  {:>5}  {:>5}  {:>4}  {:>8}\n", "layer", "kind", "heads", "D", "Dv", "scale");
    for (size_t l = 0; l < d.layers.size(); ++l) {
        const auto& L = d.layers[l];
        out += fmt::format("  {:>5}  {:>5}  {:>5}  {:>5}  {:>4}  {:>8.5f}\n", l, L.kind == DumpKind::qk ? "q/k" : "attn",
                           L.heads, L.head_dim ? std::to_string(L.head_dim) : "-",
                           L.value_dim ? std::to_string(L.value_dim) : "-", L.scale);
    }
    return out;
}

namespace {
// With adaptive density: the spread of the per-mask density, and how many masks the cap stopped
// short of the recall target or the floor held up (from the options calibrate recorded).
std::string density_spread(const Pattern& p) {
    const DensityDistribution d = p.density_distribution();
    if (!d.varies()) return "";
    std::string out = fmt::format("  density per mask: min {:.4f}, p10 {:.4f}, median {:.4f}, p90 {:.4f}, max {:.4f}\n",
                                  d.min, d.p10, d.median, d.p90, d.max);
    const auto options = nlohmann::json::parse(p.provenance.options_json, nullptr, false);
    if (!options.is_object() || !options.contains("recall") || !options["recall"].is_number()) return out;
    // Numbers as the options hold them, else the defaults (a pattern's options come from any writer).
    const auto number = [&](const char* key, double fallback) {
        return options.contains(key) && options[key].is_number() ? options[key].get<double>() : fallback;
    };
    MaskOptions mask;
    mask.density = number("density", 1.0);
    mask.recall = options["recall"].get<double>();
    mask.min_density = number("min_density", 0.0);
    mask.rows_per_group = mask_rows_of(p);
    const int64_t tiles = p.tiles_per_side() * p.tiles_per_side();
    const int64_t cap = cap_tiles(mask, tiles), floor = floor_tiles(mask, tiles);
    int64_t masks = 0, capped = 0, floored = 0;
    for (const auto& L : p.layers)
        for (const auto& h : L.heads)
            for (size_t t = 0; t < h.masks.size(); ++t) {
                const int64_t kept = h.masks[t].count();
                ++masks;
                // Masks chosen rows at a time stop up to a unit (rows_per_group - 1 tiles) short of the cap,
                // or past the floor.
                const int64_t unit = mask.rows_per_group;
                if (kept > cap - unit && h.recall[t] < *mask.recall) ++capped;
                if (floor > 0 && kept >= floor && kept < floor + unit) ++floored;
            }
    out += fmt::format("  recall target {}: {} of {} masks stopped short at the cap (density {}), {} held at the "
                       "floor (min density {})\n",
                       *mask.recall, capped, masks, mask.density, floored, mask.min_density);
    return out;
}
}  // namespace

RecallWarning recall_warning(const Pattern& p, double threshold) {
    RecallWarning w;
    w.threshold = threshold;
    for (const auto& L : p.layers)
        for (const auto& h : L.heads)
            for (double r : h.recall) {
                ++w.masks;
                w.below += r < threshold;
                w.lowest = std::min(w.lowest, r);
            }
    return w;
}

std::string RecallWarning::text() const {
    return fmt::format("{} of {} masks keep less than {} of the attention mass (lowest {:.4f}): the pattern will "
                       "change the model's attention output; raise --density or calibrate with --recall, and check "
                       "it with paro validate (this warning: --warn-recall)",
                       below, masks, threshold, lowest);
}

nlohmann::json RecallWarning::json() const {
    return {{"threshold", threshold}, {"masks", masks}, {"below", below}, {"lowest", lowest}};
}

std::string calibration_summary(const Pattern& p, int64_t file_bytes, double seconds, bool color,
                                const RecallWarning& warning) {
    const Style st{color};
    int64_t heads = 0;
    std::array<int, kNumOrders> total{};
    for (const auto& L : p.layers) {
        heads += static_cast<int64_t>(L.heads.size());
        const auto c = order_counts(L);
        for (int o = 0; o < kNumOrders; ++o) total[o] += c[o];
    }
    std::string orders;
    for (int o = 0; o < kNumOrders; ++o)
        if (total[o]) orders += fmt::format("{}{} {}", orders.empty() ? "" : ", ", st.order(kAllOrders[o]), total[o]);
    std::string out = layer_table(p, st);
    out += fmt::format("\n{} {} heads in {} layers in {:.1f} s; orders: {}\n", st.bold("calibrated"), heads,
                       p.layers.size(), seconds, orders);
    const std::string low = warning.any() ? " " + st.alarm(fmt::format("(LOW: {} of {} masks below {})", warning.below,
                                                                       warning.masks, warning.threshold))
                                          : "";
    const int mask_rows = mask_rows_of(p);
    out += fmt::format("  mean density {:.4f} (of all tiles), mean recall {:.4f}{}, {} slot(s), objective {}{}\n",
                       p.mean_density(), p.mean_recall(), low, p.slots.count(), p.objective,
                       mask_rows > 1 ? fmt::format(", masks chosen {} rows at a time", mask_rows) : "");
    out += density_spread(p);
    out += fmt::format("  pattern file {}\n", human_bytes(file_bytes));
    return out;
}

nlohmann::json calibration_summary_json(const Pattern& p, int64_t file_bytes, double seconds,
                                        const RecallWarning& warning) {
    using nlohmann::json;
    json orders = json::object();
    for (AxisOrder o : kAllOrders) orders[to_string(o)] = 0;
    json layers = json::array();
    int64_t heads = 0;
    for (const auto& L : p.layers) {
        const auto c = order_counts(L);
        json counts = json::object();
        double dens = 0, rec = 0;
        int64_t n = 0;
        for (int o = 0; o < kNumOrders; ++o) {
            counts[to_string(kAllOrders[o])] = c[o];
            orders[to_string(kAllOrders[o])] = orders[to_string(kAllOrders[o])].get<int64_t>() + c[o];
        }
        for (const auto& h : L.heads)
            for (size_t t = 0; t < h.density.size(); ++t) dens += h.density[t], rec += h.recall[t], ++n;
        heads += static_cast<int64_t>(L.heads.size());
        layers.push_back({{"heads", L.heads.size()},
                          {"orders", counts},
                          {"mean_density", n ? dens / static_cast<double>(n) : 0.0},
                          {"mean_recall", n ? rec / static_cast<double>(n) : 0.0}});
    }
    const DensityDistribution d = p.density_distribution();
    json j{{"format", "paro-calibrate-summary"},
           {"version", 1},
           {"seconds", seconds},
           {"heads", heads},
           {"orders", orders},
           {"mean_density", p.mean_density()},
           {"mean_recall", p.mean_recall()},
           {"density_per_mask", {{"min", d.min}, {"p10", d.p10}, {"median", d.median}, {"p90", d.p90}, {"max", d.max}}},
           {"slots", p.slots.count()},
           {"objective", p.objective},
           {"file_bytes", file_bytes},
           {"low_recall", warning.json()},
           {"warnings", warning.any() ? json::array({warning.text()}) : json::array()},
           {"layers", layers}};
    return j;
}

}  // namespace paro
