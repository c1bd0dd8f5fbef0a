#include "paro/report.hpp"
#include "paro/summary.hpp"

#include <fmt/format.h>
#include <stdio.h>  // renameat2 (glibc >= 2.28)
#include <fcntl.h>  // AT_FDCWD
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <limits>
#include <map>
#include <mustache.hpp>  // kainjow::mustache (Debian: libkainjow-mustache-dev)
#include <nlohmann/json.hpp>
#include <numeric>
#include <optional>
#include <stdexcept>
#include <system_error>

#include "paro/atomic_output.hpp"
#include "paro/colormap.hpp"
#include "paro/dump.hpp"
#include "paro/dump_fits_pattern.hpp"
#include "paro/error.hpp"
#include "paro/json_text.hpp"
#include "paro/memory_budget.hpp"
#include "paro/pattern.hpp"
#include "paro/png_image.hpp"
#include "paro/report_templates.hpp"
#include "paro/tile_stats.hpp"

namespace paro {

namespace fs = std::filesystem;

std::vector<HeadRef> parse_head_list(const std::string& spec) {
    std::vector<HeadRef> out;
    std::string s;
    for (char c : spec)
        if (!std::isspace(static_cast<unsigned char>(c))) s += c;
    const auto bad = [&](const std::string& why) { return ParameterError("heads", why); };
    if (s.empty()) throw bad("expects L:H[,L:H...], got an empty list");
    size_t pos = 0;
    while (pos <= s.size()) {
        const size_t end = std::min(s.find(',', pos), s.size());
        const std::string item = s.substr(pos, end - pos);
        const size_t colon = item.find(':');
        const auto is_num = [](const std::string& t) {
            return !t.empty() && t.size() <= 9 &&
                   std::all_of(t.begin(), t.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
        };
        if (colon == std::string::npos || !is_num(item.substr(0, colon)) || !is_num(item.substr(colon + 1)))
            throw bad(fmt::format("'{}' is not LAYER:HEAD (two non-negative integers)", item));
        HeadRef r{std::stoll(item.substr(0, colon)), std::stoll(item.substr(colon + 1))};
        if (std::find(out.begin(), out.end(), r) == out.end()) out.push_back(r);
        if (end == s.size()) break;
        pos = end + 1;
    }
    return out;
}

namespace {

// ---------------------------------------------------------------------------------------------
// Small text helpers

std::string num(double v, int prec = 4) {
    if (!std::isfinite(v)) return "n/a";
    return fmt::format("{:.{}f}", v, prec);
}

double mean_of(const std::vector<double>& v) {
    return v.empty() ? std::numeric_limits<double>::quiet_NaN()
                     : std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
}

double min_of(const std::vector<double>& v) {
    return v.empty() ? std::numeric_limits<double>::quiet_NaN() : *std::min_element(v.begin(), v.end());
}

// The T per-slot values f(t), separated by spaces.
template <typename F>
std::string per_slot(int T, F f) {
    std::string s;
    for (int t = 0; t < T; ++t) s += (t ? " " : "") + f(t);
    return s;
}

// How many of `heads` chose each order.
std::array<int64_t, kNumOrders> order_counts(const std::vector<HeadPattern>& heads) {
    std::array<int64_t, kNumOrders> count{};
    for (const auto& hp : heads) ++count[index_of(hp.order)];
    return count;
}

// ---------------------------------------------------------------------------------------------
// Per-head derived numbers used by several sections

struct HeadRow {
    int64_t layer = 0, head = 0;
    const HeadPattern* hp = nullptr;
    double mean_density = 0, mean_recall = 0;
    double agree = std::numeric_limits<double>::quiet_NaN();  // fraction of samples choosing the plan's order
    int agree_count = 0;
    double min_sample_recall = std::numeric_limits<double>::quiet_NaN();
    // What disagreement costs: how much less of its attention mass the shared mask keeps on the worst
    // disagreeing sample than on average on the samples agreeing with the plan (all samples when none
    // agree); 0 when every sample agrees.
    double disagreement_cost = 0;
};

double disagreement_cost(const HeadPattern& hp) {
    if (hp.sample_order.size() != hp.sample_recall.size()) return 0;
    std::vector<double> agreeing, disagreeing;
    for (size_t s = 0; s < hp.sample_order.size(); ++s)
        (hp.sample_order[s] == index_of(hp.order) ? agreeing : disagreeing).push_back(hp.sample_recall[s]);
    if (disagreeing.empty()) return 0;
    const double reference = mean_of(agreeing.empty() ? hp.sample_recall : agreeing);
    return std::max(0.0, reference - min_of(disagreeing));
}

// Color scales that say something whatever the spread. Recall from 0.9 (or the tenth below the
// lowest value) to 1: 0.997 reads as near-perfect, not as the low end of a 0.997-1 scale. Density
// from 0 to a round value above the largest, so one density everywhere is one mid-scale color.
ColorScale recall_scale(double lowest) {
    const double lo = lowest >= 0.9 ? 0.9 : std::max(0.0, std::floor(lowest * 10) / 10);
    return {lo, 1.0, false};
}
ColorScale density_scale(double highest) {
    for (double top : {0.05, 0.1, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.8})
        if (top >= 1.25 * highest) return {0, top, false};
    return {0, 1, false};
}

std::vector<HeadRow> head_rows(const Pattern& p) {
    std::vector<HeadRow> rows;
    for (size_t l = 0; l < p.layers.size(); ++l)
        for (size_t h = 0; h < p.layers[l].heads.size(); ++h) {
            const HeadPattern& hp = p.layers[l].heads[h];
            HeadRow r;
            r.layer = static_cast<int64_t>(l);
            r.head = static_cast<int64_t>(h);
            r.hp = &hp;
            r.mean_density = mean_of(hp.density);
            r.mean_recall = mean_of(hp.recall);
            if (!hp.sample_order.empty()) {
                for (uint8_t o : hp.sample_order) r.agree_count += o == index_of(hp.order);
                r.agree = static_cast<double>(r.agree_count) / static_cast<double>(hp.sample_order.size());
            }
            r.min_sample_recall = min_of(hp.sample_recall);
            r.disagreement_cost = disagreement_cost(hp);
            rows.push_back(r);
        }
    return rows;
}

// The most heads of any layer: the width of the layers x heads maps.
int64_t max_heads_of(const Pattern& p) {
    int64_t m = 0;
    for (const auto& l : p.layers) m = std::max<int64_t>(m, static_cast<int64_t>(l.heads.size()));
    return m;
}

// ---------------------------------------------------------------------------------------------
// Data for the page's templates
//
// The HTML is in lib/report/templates/ (page.mustache and its partials), built into the library
// (report_templates.hpp) and rendered with kainjow::mustache. Why that library: it is in Debian
// (libkainjow-mustache-dev) and header-only; it is logic-less, so this file only computes values
// (formatted numbers, image files, flags) and hands them over as plain data (mu::data / object /
// list); and it HTML-escapes {{value}} by default ({{{value}}} is raw: only the style sheet, the
// script and the JSON), so no escaping is written here.
//
// A name missing from an object is looked up in the enclosing ones, so every object sets each name
// its template reads (false when absent), apart from the page-wide names of PageData::root().

namespace mu = kainjow::mustache;

// Mustache data has no number type (and an integer would silently become a bool): numbers go in as
// text, formatted by fmt ("{}": integers, and doubles in their shortest exact form).
template <typename T>
mu::data as_text(const T& v) {
    return fmt::format("{}", v);
}

// Text, or false when empty: {{#name}}...{{/name}} shows only when there is a value.
mu::data text_or_false(const std::string& s) {
    return s.empty() ? mu::data(false) : mu::data(s);
}

mu::data empty_list() {
    return mu::data(mu::data::type::list);
}

// ---------------------------------------------------------------------------------------------
// Images

struct Writer {
    fs::path dir;  // the temporary report directory
    int images = 0;

    // Writes img/<name>.png and returns it as image.mustache shows it (linked to itself). `cls`: the
    // <img> class ("hm": a layers x heads map with a hover read-out); `slot` >= 0: its data-slot.
    mu::data image(const RgbImage& img, const std::string& name, const std::string& alt, const std::string& cls = "",
                   int slot = -1) {
        const std::string rel = "img/" + name + ".png";
        write_png(img, (dir / rel).string());
        ++images;
        return mu::object{{"src", rel},
                          {"width", as_text(img.width())},
                          {"height", as_text(img.height())},
                          {"alt", alt},
                          {"class", text_or_false(cls)},
                          {"data_slot", text_or_false(slot >= 0 ? std::to_string(slot) : "")}};
    }
};

constexpr int kSmallMap = 320;  // longer side of the per-slot and stability maps, in pixels

// Cell size (pixels) for a grid of rows x cols so that the image is about `target` wide/high.
int cell_size(int64_t rows, int64_t cols, int target, int lo, int hi) {
    const int64_t m = std::max<int64_t>(1, std::max(rows, cols));
    return static_cast<int>(std::clamp<int64_t>(target / m, lo, hi));
}

// A layers x heads grid: one cell per head, colored by `color(l, h)`; a 1-pixel white gap
// between cells when cells are large enough to afford it.
// `target`: about how many pixels the longer side gets (the page shows small maps at their size).
template <typename F>
RgbImage head_grid(const Pattern& p, int64_t max_heads, F color, int target = 720) {
    const int64_t L = static_cast<int64_t>(p.layers.size());
    const int c = cell_size(L, max_heads, target, target >= 600 ? 3 : 2, target >= 600 ? 40 : 28);
    const int gap = c >= 6 ? 1 : 0;
    RgbImage img(static_cast<int>(max_heads) * c, static_cast<int>(L) * c, kGridLineColor);
    for (int64_t l = 0; l < L; ++l)
        for (int64_t h = 0; h < max_heads; ++h) {
            const bool present = h < static_cast<int64_t>(p.layers[l].heads.size());
            const Rgb col = present ? color(l, h) : kMissingColor;
            img.fill_rect(static_cast<int>(h) * c, static_cast<int>(l) * c, c - gap, c - gap, col);
        }
    return img;
}

// An nb x nb (or N x N) matrix through a color scale, each element upscaled to `u` pixels.
RgbImage matrix_image(const std::vector<double>& v, int64_t n, const ColorScale& scale, int u) {
    RgbImage img(static_cast<int>(n * u), static_cast<int>(n * u));
    for (int64_t r = 0; r < n; ++r)
        for (int64_t c = 0; c < n; ++c) {
            const Rgb col = viridis(scale(v[static_cast<size_t>(r * n + c)]));
            if (u == 1)
                img.set(static_cast<int>(c), static_cast<int>(r), col);
            else
                img.fill_rect(static_cast<int>(c * u), static_cast<int>(r * u), u, u, col);
        }
    return img;
}

RgbImage mask_image(const BlockMask& m, int u) {
    const int64_t n = m.tiles_per_side();
    RgbImage img(static_cast<int>(n * u), static_cast<int>(n * u));
    for (int64_t r = 0; r < n; ++r)
        for (int64_t c = 0; c < n; ++c) {
            const Rgb col = m.get(r, c) ? kMaskKeptColor : kMaskDroppedColor;
            if (u == 1)
                img.set(static_cast<int>(c), static_cast<int>(r), col);
            else
                img.fill_rect(static_cast<int>(c * u), static_cast<int>(r * u), u, u, col);
        }
    return img;
}

RgbImage colorbar() {
    RgbImage img(256, 14);
    for (int x = 0; x < 256; ++x) img.fill_rect(x, 0, 1, 14, viridis(x / 255.0));
    return img;
}

// Per-layer stacked bars: x = layer, bar height = heads, segments colored by order.
RgbImage order_bars(const Pattern& p, int64_t max_heads) {
    const int64_t L = static_cast<int64_t>(p.layers.size());
    const int bw = static_cast<int>(std::clamp<int64_t>(900 / std::max<int64_t>(L, 1), 3, 40));
    const int gap = bw >= 6 ? std::max(1, bw / 5) : 1;
    const int per_head = static_cast<int>(std::clamp<int64_t>(240 / std::max<int64_t>(max_heads, 1), 1, 40));
    const int height = static_cast<int>(max_heads) * per_head + 2;
    RgbImage img(static_cast<int>(L) * bw + gap, height, {255, 255, 255});
    img.fill_rect(0, height - 1, img.width(), 1, {120, 120, 120});  // baseline
    for (int64_t l = 0; l < L; ++l) {
        const auto count = order_counts(p.layers[l].heads);
        int y = height - 1;
        for (int o = 0; o < kNumOrders; ++o) {
            const int hpx = static_cast<int>(count[o]) * per_head;
            img.fill_rect(static_cast<int>(l) * bw + gap, y - hpx, bw - gap, hpx, order_color(kAllOrders[o]));
            y -= hpx;
        }
    }
    return img;
}

// ---------------------------------------------------------------------------------------------
// Dump-side analysis of one head

struct HeadDetail {
    HeadRef ref;
    bool has_dump = false;
    int64_t nb = 0;
    std::vector<double> raster_mass, chosen_mass;  // summed over samples, normalized to sum 1
    std::vector<double> sample_recall;             // per dump sample, recomputed; NaN when its slot is unknown
    std::vector<int> sample_slot;
    int64_t full_n = 0;                            // > 0: token-level maps present
    std::vector<double> full_raster, full_chosen;  // mean P over samples
};

HeadDetail analyze_head(const Pattern& p, const DumpReader* reader, const TileStatsEngine* engine, HeadRef ref,
                        int64_t full_max) {
    HeadDetail d;
    d.ref = ref;
    d.nb = p.tiles_per_side();
    if (!reader) return d;
    d.has_dump = true;
    const HeadPattern& hp = p.layers[ref.layer].heads[ref.head];
    const int chosen = index_of(hp.order);
    const int raster = index_of(AxisOrder::FHW);
    const DumpInfo& info = reader->info();
    const int64_t S = static_cast<int64_t>(info.samples.size());
    const int64_t n = p.layout.tokens();
    const size_t tiles = static_cast<size_t>(d.nb * d.nb);
    d.raster_mass.assign(tiles, 0.0);
    d.chosen_mass.assign(tiles, 0.0);
    const bool full = n <= full_max;
    // The peak: the head as read (fp32 q and k), its six orders' statistics and two tile maps, what
    // the engine holds while it computes them, and the token-level maps when drawn (two double maps,
    // float rows).
    require_memory(2.0 * static_cast<double>(n) * static_cast<double>(info.layers[ref.layer].head_dim) * sizeof(float) +
                       (kNumOrders * TileStats::kBytesPerTile + 2 * sizeof(double)) * static_cast<double>(tiles) +
                       engine->working_bytes() +
                       (full ? 20.0 * static_cast<double>(n) * static_cast<double>(n) : 0.0),
                   fmt::format("head {}:{} of the report", ref.layer, ref.head), info.path,
                   fmt::format("/layers/{}", ref.layer));
    std::vector<float> rows;
    if (full) {
        d.full_n = n;
        d.full_raster.assign(static_cast<size_t>(n * n), 0.0);
        rows.resize(static_cast<size_t>(n * n));
    }
    for (int64_t s = 0; s < S; ++s) {
        const HeadSlice slice = reader->read(s, ref.layer, ref.head, false);
        const SixOrderStats st = engine->compute(slice);
        const auto& cm = st[chosen].mass;
        for (size_t t = 0; t < tiles; ++t) {
            d.raster_mass[t] += st[raster].mass[t];
            d.chosen_mass[t] += cm[t];
        }
        const int slot = sample_slot(info, p.slots, s);
        d.sample_slot.push_back(slot);
        if (slot != kUnknownSlot) {
            const BlockMask& m = hp.masks[static_cast<size_t>(slot)];
            double kept = 0, total = 0;
            for (int64_t r = 0; r < d.nb; ++r)
                for (int64_t c = 0; c < d.nb; ++c) {
                    const double v = cm[static_cast<size_t>(r * d.nb + c)];
                    total += v;
                    if (m.get(r, c)) kept += v;
                }
            d.sample_recall.push_back(total > 0 ? kept / total : std::numeric_limits<double>::quiet_NaN());
        } else {
            d.sample_recall.push_back(std::numeric_limits<double>::quiet_NaN());
        }
        if (full) {
            if (!AttentionRows(slice).rows(0, n, rows.data())) throw_overflow(slice);
            for (size_t i = 0; i < rows.size(); ++i) d.full_raster[i] += rows[i];
        }
    }
    const auto normalize = [](std::vector<double>& v) {
        const double sum = std::accumulate(v.begin(), v.end(), 0.0);
        if (sum > 0)
            for (double& x : v) x /= sum;
    };
    normalize(d.raster_mass);
    normalize(d.chosen_mass);
    if (full) {
        for (double& x : d.full_raster) x /= static_cast<double>(std::max<int64_t>(S, 1));
        const Permutation perm = make_permutation(p.layout, hp.order);
        d.full_chosen.assign(d.full_raster.size(), 0.0);
        for (int64_t i = 0; i < n; ++i)
            for (int64_t j = 0; j < n; ++j)
                d.full_chosen[static_cast<size_t>(i * n + j)] =
                    d.full_raster[static_cast<size_t>(perm.gather[i]) * static_cast<size_t>(n) +
                                  static_cast<size_t>(perm.gather[j])];
    }
    return d;
}

// Default heads: the worst and best `each` by mean recall (ties by position).
std::vector<HeadRef> default_heads(const std::vector<HeadRow>& rows, int each) {
    std::vector<size_t> idx(rows.size());
    std::iota(idx.begin(), idx.end(), 0);
    std::stable_sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return rows[a].mean_recall < rows[b].mean_recall; });
    std::vector<HeadRef> out;
    const auto add = [&](size_t i) {
        HeadRef r{rows[i].layer, rows[i].head};
        if (std::find(out.begin(), out.end(), r) == out.end()) out.push_back(r);
    };
    const size_t k = static_cast<size_t>(std::max(0, each));
    for (size_t i = 0; i < std::min(k, idx.size()); ++i) add(idx[i]);
    for (size_t i = 0; i < std::min(k, idx.size()); ++i) add(idx[idx.size() - 1 - i]);
    return out;
}

// ---------------------------------------------------------------------------------------------
// Output directory handling

struct TempDir {
    fs::path path;
    bool keep = false;
    ~TempDir() {
        if (!keep && !path.empty()) {
            std::error_code ec;
            fs::remove_all(path, ec);
        }
    }
};

constexpr const char* kMarker = ".paro-report";

// Checks -o before any work: the parent must exist, and an existing DIR must be a directory that
// is empty or holds an earlier paro report (which is then replaced).
fs::path check_out_dir(const std::string& out) {
    if (out.empty()) throw ParameterError("out_dir", "an output directory is required");
    fs::path dir = fs::path(out);
    if (dir.filename().empty()) dir = dir.parent_path();  // trailing slash
    const fs::path parent = dir.has_parent_path() ? dir.parent_path() : fs::path(".");
    std::error_code ec;
    if (!fs::is_directory(parent, ec)) throw ParameterError("out_dir", "the parent directory does not exist", out);
    if (const std::string why = why_unwritable(parent.string()); !why.empty())
        throw ParameterError("out_dir", "the parent directory cannot be written (" + why + ")", out);
    if (fs::exists(dir, ec)) {
        if (!fs::is_directory(dir, ec)) throw ParameterError("out_dir", "exists and is not a directory", out);
        const bool empty = fs::is_empty(dir, ec);
        if (!empty && !fs::exists(dir / kMarker, ec))
            throw ParameterError("out_dir",
                                 "exists, is not empty and is not a paro report; remove it or choose another directory",
                                 out);
    }
    return dir;
}

void install_dir(const fs::path& tmp, const fs::path& dir) {
    std::error_code ec;
    if (fs::exists(dir, ec)) {
#ifdef RENAME_EXCHANGE
        if (::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, dir.c_str(), RENAME_EXCHANGE) == 0) {
            fs::remove_all(tmp, ec);  // now holds the old report
            return;
        }
#endif
        const fs::path parent = dir.has_parent_path() ? dir.parent_path() : fs::path(".");
        const fs::path old = parent / fmt::format(".{}.old{}", dir.filename().string(), ::getpid());
        fs::rename(dir, old);
        fs::rename(tmp, dir);
        fs::remove_all(old, ec);
        return;
    }
    fs::rename(tmp, dir);
}

int64_t dir_bytes(const fs::path& dir) {
    int64_t total = 0;
    for (const auto& e : fs::recursive_directory_iterator(dir))
        if (e.is_regular_file()) total += static_cast<int64_t>(e.file_size());
    return total;
}

// ---------------------------------------------------------------------------------------------
// The page's sections as template data

// An order as order_badge.mustache shows it: its name on its color.
mu::data order_badge(AxisOrder o) {
    return mu::object{{"order", to_string(o)}, {"color", css_hex(order_color(o))}};
}

mu::data all_order_badges() {
    mu::data out = empty_list();
    for (AxisOrder o : kAllOrders) out << order_badge(o);
    return out;
}

// A color scale as colorbar.mustache shows it: its end values and what it measures.
mu::data color_scale(const std::string& lo, const std::string& hi, const std::string& label) {
    return mu::object{{"lo", lo}, {"hi", hi}, {"label", label}};
}

// A dump sample's timestep, step and prompt, as the per-sample tables show them.
void add_dump_sample(mu::data& row, const DumpSample& s) {
    row["timestep"] = num(s.timestep, 1);
    row["step"] = s.step >= 0 ? std::to_string(s.step) : std::string("n/a");
    row["prompt"] = as_text(s.prompt);
}

// The six orders' scores of one head (scores-L?H? tables).
mu::data score_rows(const HeadPattern& hp) {
    mu::data out = empty_list();
    for (AxisOrder o : kAllOrders) {
        const auto v = metric_values(hp.scores[index_of(o)]);
        mu::data values = empty_list();
        for (int k = 0; k < kNumMetrics; ++k) {
            const std::string name = kMetricNames[k];
            const bool absent = name == "output_rel_l1" && v[k] < 0;  // -1: not computed
            values << (absent ? std::string("n/a") : num(v[k], name == "incoherence" ? 2 : 4));
        }
        out << mu::object{{"badge", order_badge(o)}, {"is_plan", o == hp.order}, {"values", values}};
    }
    return out;
}

// Builds the data of each section of the page, writing the images a section shows as it goes.
class PageData {
public:
    PageData(const ReportOptions& opt, const Pattern& p, const std::vector<HeadRow>& rows, const DumpReader* reader,
             Writer& w)
        : opt_(opt),
          p_(p),
          rows_(rows),
          reader_(reader),
          w_(w),
          max_heads_(max_heads_of(p)),
          total_heads_(static_cast<int64_t>(rows.size())) {}

    // The page-wide values: title, paths, provenance, and what several sections read.
    mu::data root() const {
        std::string options = p_.provenance.options_json;
        try {
            options = nlohmann::json::parse(options).dump(2);
        } catch (const std::exception&) {
            // not JSON: shown as stored
        }
        return mu::object{{"title", fs::path(opt_.pattern_path).filename().string()},
                          {"pattern_path", opt_.pattern_path},
                          {"dump_path", text_or_false(reader_ ? opt_.dump_path : "")},
                          {"has_dump", reader_ != nullptr},
                          {"tool_version", p_.provenance.tool_version},
                          {"created", p_.provenance.created},
                          {"source_dump", p_.provenance.source_dump},
                          {"source_checksum", p_.provenance.source_checksum},
                          {"options_json", options},
                          {"objective", p_.objective},
                          {"better", p_.higher_is_better ? "higher" : "lower"},
                          {"samples", as_text(S())},
                          {"total_heads", as_text(total_heads_)},
                          {"all_orders", all_order_badges()}};
    }

    mu::data summary() const {
        const int64_t nb = p_.tiles_per_side();
        const DensityDistribution spread = p_.density_distribution();
        const double masks = static_cast<double>(T()) * static_cast<double>(total_heads_);
        std::error_code ec;
        const auto file_size = fs::file_size(opt_.pattern_path, ec);
        std::array<int64_t, kNumOrders> count{};
        for (const auto& l : p_.layers) {
            const auto c = order_counts(l.heads);
            for (int o = 0; o < kNumOrders; ++o) count[o] += c[o];
        }
        mu::data counts = empty_list();
        for (int o = 0; o < kNumOrders; ++o)
            counts << mu::object{{"badge", order_badge(kAllOrders[o])}, {"count", as_text(count[o])}};
        mu::data slot_rows = empty_list();
        for (int t = 0; t < T(); ++t) {
            std::vector<double> d, r;
            for (const auto& row : rows_) d.push_back(row.hp->density[t]), r.push_back(row.hp->recall[t]);
            slot_rows << mu::object{{"slot", as_text(t)},
                                    {"steps", p_.slots.describe(t)},
                                    {"mean_density", num(mean_of(d))},
                                    {"mean_recall", num(mean_of(r))},
                                    {"min_recall", num(min_of(r))}};
        }
        const RecallWarning low_recall = recall_warning(p_, opt_.warn_recall);
        // Warnings when the dump given is not the one the pattern was calibrated on.
        std::string other_dump, dump_samples;
        if (reader_) {
            const std::string given = fs::path(opt_.dump_path).filename().string();
            if (!p_.provenance.source_dump.empty() && fs::path(p_.provenance.source_dump).filename().string() != given)
                other_dump = given;
            const auto n = static_cast<int64_t>(reader_->info().samples.size());
            if (n != S()) dump_samples = std::to_string(n);
        }
        return mu::object{
            {"grid_f", as_text(p_.layout.grid[0])},
            {"grid_h", as_text(p_.layout.grid[1])},
            {"grid_w", as_text(p_.layout.grid[2])},
            {"text_tokens", as_text(p_.layout.text_tokens)},
            {"text_position", to_string(p_.layout.text_position)},
            {"tokens", as_text(p_.layout.tokens())},
            {"block_q", as_text(p_.block_q)},
            {"block_k", as_text(p_.block_k)},
            {"tiles_per_side", as_text(nb)},
            {"layers", as_text(L())},
            {"max_heads", as_text(max_heads_)},
            {"slots", as_text(T())},
            {"slot_boundaries", per_slot(T(), [&](int t) { return p_.slots.describe(t); })},
            {"density", num(p_.mean_density())},
            {"recall", num(p_.mean_recall())},
            {"density_spread", text_or_false(spread.varies() ? fmt::format("{} / {} / {} / {} / {}", num(spread.min),
                                                                               num(spread.p10), num(spread.median),
                                                                               num(spread.p90), num(spread.max))
                                                               : "")},
            {"storage_bits", human_bytes(static_cast<int64_t>(masks * static_cast<double>((nb * nb + 7) / 8)))},
            {"storage_bytes", human_bytes(static_cast<int64_t>(masks * static_cast<double>(nb * nb)))},
            {"file_size", ec ? std::string("n/a") : human_bytes(static_cast<int64_t>(file_size))},
            {"order_counts", counts},
            {"other_dump", text_or_false(other_dump)},
            {"dump_samples", text_or_false(dump_samples)},
            {"low_recall", text_or_false(low_recall.any() ? low_recall.text() : "")},
            {"slot_rows", slot_rows}};
    }

    mu::data orders() {
        mu::data layer_counts = empty_list();
        for (int64_t l = 0; l < L(); ++l) {
            mu::data counts = empty_list();
            for (int64_t c : order_counts(p_.layers[l].heads)) counts << as_text(c);
            layer_counts << mu::object{{"layer", as_text(l)}, {"counts", counts}};
        }
        const RgbImage map = head_grid(p_, max_heads_, [&](int64_t l, int64_t h) {
            return order_color(p_.layers[l].heads[h].order);
        });
        return mu::object{
            {"order_map", w_.image(map, "orders", "chosen order per layer and head", "hm")},
            {"order_bars", w_.image(order_bars(p_, max_heads_), "order_bars", "heads per order in each layer")},
            {"last_layer", as_text(L() - 1)},
            {"last_head", as_text(max_heads_ - 1)},
            {"layer_counts", layer_counts}};
    }

    mu::data density() {
        double dlo = 1, dhi = 0, rlo = 1, rhi = 0;
        for (const auto& r : rows_)
            for (int t = 0; t < T(); ++t) {
                dlo = std::min(dlo, r.hp->density[t]);
                dhi = std::max(dhi, r.hp->density[t]);
                rlo = std::min(rlo, r.hp->recall[t]);
                rhi = std::max(rhi, r.hp->recall[t]);
            }
        if (dlo > dhi) dlo = dhi = 0;
        const ColorScale ds = density_scale(dhi), rs = recall_scale(rlo);
        mu::data density = slot_maps(&HeadPattern::density, ds, "density");
        density["scale"] = color_scale(num(ds.lo, 2), num(ds.hi, 2), "fraction of tiles kept");
        density["range"] = dlo == dhi ? fmt::format("Every mask keeps {} of its tiles.", num(dlo, 3))
                                      : fmt::format("From {} to {}.", num(dlo, 3), num(dhi, 3));
        mu::data recall = slot_maps(&HeadPattern::recall, rs, "recall");
        recall["scale"] = color_scale(num(rs.lo, 2), "1", "attention mass kept");
        recall["range"] = fmt::format("From {} to {}.", num(rlo), num(rhi));
        return mu::object{{"density_slots", density}, {"recall_slots", recall}};
    }

    mu::data stability() {
        if (S() <= 1) return mu::object{{"judged", false}, {"one_sample", S() == 1}};
        int64_t all_agree = 0;
        double min_rec = 1;
        std::vector<double> minrecs;
        for (const auto& r : rows_) {
            all_agree += r.agree_count == S();
            min_rec = std::min(min_rec, r.min_sample_recall);
            minrecs.push_back(r.min_sample_recall);
        }
        const ColorScale as{0, 1, false}, ms = recall_scale(min_rec);
        const RgbImage agree_map = head_grid(p_, max_heads_, [&](int64_t l, int64_t h) {
            const auto& hp = p_.layers[l].heads[h];
            int a = 0;
            for (uint8_t o : hp.sample_order) a += o == index_of(hp.order);
            return viridis(as(static_cast<double>(a) / static_cast<double>(hp.sample_order.size())));
        }, kSmallMap);
        const RgbImage min_recall_map = head_grid(p_, max_heads_, [&](int64_t l, int64_t h) {
            return viridis(ms(min_of(p_.layers[l].heads[h].sample_recall)));
        }, kSmallMap);
        // The dump's sample columns only when its samples are the pattern's.
        const DumpInfo* info =
            reader_ && static_cast<int64_t>(reader_->info().samples.size()) == S() ? &reader_->info() : nullptr;
        // Disagreements that cost recall, the costliest first; the others are only counted.
        std::vector<const HeadRow*> disagreeing;
        int64_t free_disagreements = 0;
        for (const auto& r : rows_)
            if (r.agree_count < S()) {
                if (r.disagreement_cost >= opt_.disagreement_cost) disagreeing.push_back(&r);
                else ++free_disagreements;
            }
        std::stable_sort(disagreeing.begin(), disagreeing.end(), [](const HeadRow* a, const HeadRow* b) {
            return a->disagreement_cost > b->disagreement_cost;
        });
        const mu::data judged = mu::object{
            {"all_agree", as_text(all_agree)},
            {"all_agree_percent",
             num(100.0 * static_cast<double>(all_agree) / static_cast<double>(total_heads_), 1)},
            {"mean_min_recall", num(mean_of(minrecs))},
            {"min_recall", num(min_rec)},
            {"agree_map", w_.image(agree_map, "stability_agree", "fraction of samples agreeing with the plan", "hm")},
            {"agree_scale", color_scale("0", "1", "agreeing")},
            {"min_recall_map",
             w_.image(min_recall_map, "stability_min_recall", "lowest per-sample recall of the shared mask", "hm")},
            {"min_recall_scale", color_scale(num(ms.lo, 2), "1", "min sample recall")},
            {"dump_columns", info != nullptr},
            {"sample_rows", stability_samples(info)},
            {"disagree_count", as_text(disagreeing.size())},
            {"cost_threshold", num(opt_.disagreement_cost, 4)},
            {"free_disagreements", free_disagreements > 0 ? mu::data(as_text(free_disagreements)) : mu::data(false)},
            {"disagree", disagree_table(disagreeing)}};
        return mu::object{{"judged", judged}};
    }

    // The heads shown in detail; `say` reports progress, one line per head.
    mu::data heads(const std::vector<HeadRef>& refs, const std::function<void(const std::string&)>& say) {
        std::optional<TileStatsEngine> engine;
        if (reader_) engine.emplace(p_.layout, TileStatsOptions{p_.block_q, 1e-3f});
        mu::data shown = empty_list();
        for (size_t i = 0; i < refs.size(); ++i) {
            const HeadRef& ref = refs[i];
            say(fmt::format("head {}:{} ({}/{})", ref.layer, ref.head, i + 1, refs.size()));
            shown << head(ref, analyze_head(p_, reader_, engine ? &*engine : nullptr, ref, opt_.full_res_max_tokens));
        }
        mu::data metric_names = empty_list();
        for (const char* m : kMetricNames) metric_names << m;
        const int64_t nb = p_.tiles_per_side();
        return mu::object{{"by_option", !opt_.heads.empty()},
                          {"each", as_text(opt_.default_heads_each)},
                          {"tiles", as_text(nb * nb)},
                          {"metric_names", metric_names},
                          {"shown", shown}};
    }

    mu::data all_heads() const {
        mu::data out = empty_list();
        for (const auto& r : rows_) {
            const HeadPattern& hp = *r.hp;
            mu::data objectives = empty_list();
            for (AxisOrder o : kAllOrders)
                objectives << mu::object{{"value", num(hp.scores[index_of(o)].objective)}, {"best", o == hp.order}};
            out << mu::object{
                {"layer", as_text(r.layer)},
                {"head", as_text(r.head)},
                {"order", to_string(hp.order)},
                {"mean_density", as_text(r.mean_density)},
                {"densities", per_slot(T(), [&](int t) { return num(hp.density[t]); })},
                {"mean_recall", as_text(r.mean_recall)},
                {"recalls", per_slot(T(), [&](int t) { return num(hp.recall[t]); })},
                {"agree", std::isfinite(r.agree) ? as_text(r.agree) : mu::data(std::string())},
                {"agreeing", S() > 0 ? fmt::format("{}/{}", r.agree_count, S()) : std::string("n/a")},
                {"min_sample_recall", num(r.min_sample_recall)},
                {"qk_bits", as_text(hp.qk_bits)},
                {"pv_format", to_string(hp.pv_format)},
                {"objectives", objectives}};
        }
        return mu::object{{"rows", out}};
    }

    // Every head's numbers for the hover read-out of the maps, as JSON for a <script> element.
    std::string hover_json() const {
        nlohmann::json j;
        j["max_heads"] = max_heads_;
        j["orders"] = nlohmann::json::array();
        for (AxisOrder o : kAllOrders) j["orders"].push_back(to_string(o));
        const auto r4 = [](double v) -> nlohmann::json {
            if (!std::isfinite(v)) return nullptr;
            return std::round(v * 1e4) / 1e4;
        };
        nlohmann::json layers = nlohmann::json::array();
        size_t k = 0;
        for (int64_t l = 0; l < L(); ++l) {
            nlohmann::json lh = nlohmann::json::array();
            for (size_t h = 0; h < p_.layers[l].heads.size(); ++h, ++k) {
                const HeadRow& r = rows_[k];
                nlohmann::json x;
                x["o"] = index_of(r.hp->order);
                x["d"] = nlohmann::json::array();
                x["r"] = nlohmann::json::array();
                for (int t = 0; t < T(); ++t) x["d"].push_back(r4(r.hp->density[t])), x["r"].push_back(r4(r.hp->recall[t]));
                x["a"] = r4(r.agree);
                x["m"] = r4(r.min_sample_recall);
                lh.push_back(std::move(x));
            }
            layers.push_back(std::move(lh));
        }
        j["layers"] = std::move(layers);
        std::string data = json_text(j);
        // Keep "</" out of the script element.
        for (size_t pos = 0; (pos = data.find("</", pos)) != std::string::npos; pos += 3) data.replace(pos, 2, "<\\/");
        return data;
    }

private:
    int64_t L() const { return static_cast<int64_t>(p_.layers.size()); }
    int T() const { return p_.slots.count(); }
    int64_t S() const { return p_.num_samples(); }
    // Pixels per tile of the tile-level maps (tile mass, masks).
    int tile_pixels() const {
        return static_cast<int>(std::clamp<int64_t>(256 / std::max<int64_t>(p_.tiles_per_side(), 1), 1, 64));
    }

    // One small layers x heads map per slot of a per-slot quantity (density or recall), on `scale`.
    mu::data slot_maps(std::vector<double> HeadPattern::*field, ColorScale scale, const std::string& name) {
        mu::data maps = empty_list();
        for (int t = 0; t < T(); ++t) {
            const RgbImage img = head_grid(p_, max_heads_, [&](int64_t l, int64_t h) {
                return viridis(scale((p_.layers[l].heads[h].*field)[t]));
            }, kSmallMap);
            maps << mu::object{
                {"image", w_.image(img, fmt::format("{}_slot{}", name, t), fmt::format("{}, slot {}", name, t), "hm", t)},
                {"slot", as_text(t)},
                {"steps", p_.slots.describe(t)}};
        }
        return mu::object{{"maps", maps}};
    }

    // Per calibration sample: heads agreeing with the plan, mass the shared masks keep, and the
    // sample's timestep, step and prompt when `info` (the dump's) is given.
    mu::data stability_samples(const DumpInfo* info) const {
        mu::data out = empty_list();
        for (int64_t s = 0; s < S(); ++s) {
            int64_t agree = 0;
            std::vector<double> rec;
            for (const auto& r : rows_) {
                agree += r.hp->sample_order[static_cast<size_t>(s)] == index_of(r.hp->order);
                rec.push_back(r.hp->sample_recall[static_cast<size_t>(s)]);
            }
            mu::data row = mu::object{{"sample", as_text(s)},
                                      {"agree", as_text(agree)},
                                      {"mean_recall", num(mean_of(rec))},
                                      {"min_recall", num(min_of(rec))}};
            if (info) add_dump_sample(row, info->samples[static_cast<size_t>(s)]);
            out << row;
        }
        return out;
    }

    // The least stable heads (at most 200), with the order each sample alone would choose.
    mu::data disagree_table(const std::vector<const HeadRow*>& disagreeing) const {
        if (disagreeing.empty()) return false;
        const size_t shown = std::min<size_t>(disagreeing.size(), 200);
        mu::data rows = empty_list();
        for (size_t i = 0; i < shown; ++i) {
            const HeadRow& r = *disagreeing[i];
            mu::data sample_orders = empty_list();
            for (uint8_t o : r.hp->sample_order) sample_orders << order_badge(kAllOrders[o]);
            rows << mu::object{{"layer", as_text(r.layer)},
                               {"head", as_text(r.head)},
                               {"plan", order_badge(r.hp->order)},
                               {"agree", as_text(r.agree)},
                               {"agree_count", as_text(r.agree_count)},
                               {"sample_orders", sample_orders},
                               {"min_sample_recall", num(r.min_sample_recall)},
                               {"cost", num(r.disagreement_cost)}};
        }
        return mu::object{{"truncated", shown < disagreeing.size()}, {"shown", as_text(shown)}, {"rows", rows}};
    }

    mu::data head(const HeadRef& ref, const HeadDetail& d) {
        const HeadPattern& hp = p_.layers[ref.layer].heads[ref.head];
        const std::string id = fmt::format("L{}H{}", ref.layer, ref.head);
        mu::data out = mu::object{{"id", id},
                                  {"layer", as_text(ref.layer)},
                                  {"head", as_text(ref.head)},
                                  {"order", to_string(hp.order)},
                                  {"badge", order_badge(hp.order)},
                                  {"density", num(mean_of(hp.density))},
                                  {"recall", num(mean_of(hp.recall))}};
        out["tile_mass"] = tile_mass(d, id);
        out["masks"] = masks(hp, id);
        // One row of equal panels (tile mass maps, then a mask per slot), at most 6 to a row and the
        // rows balanced: no panel left alone on a row of its own.
        const int panels = (d.has_dump ? 2 : 0) + T(), rows = (panels + 5) / 6;
        out["panel_columns"] = as_text((panels + rows - 1) / rows);
        out["attention"] = attention(d, id);
        out["scores"] = score_rows(hp);
        out["sample_table"] = head_samples(hp, d);
        return out;
    }

    // Attention mass per tile in raster and chosen order, on one log scale (needs the dump).
    mu::data tile_mass(const HeadDetail& d, const std::string& id) {
        if (!d.has_dump) return false;
        double hi = 0, lo = std::numeric_limits<double>::infinity();
        for (const auto* v : {&d.raster_mass, &d.chosen_mass})
            for (double x : *v) {
                hi = std::max(hi, x);
                if (x > 0) lo = std::min(lo, x);
            }
        if (!(hi > 0)) hi = 1;
        lo = std::max(std::isfinite(lo) ? lo : hi * 1e-6, hi * 1e-6);
        const ColorScale cs{lo, hi, true};
        return mu::object{{"raster_map", w_.image(matrix_image(d.raster_mass, d.nb, cs, tile_pixels()),
                                                  id + "_mass_raster", "tile mass in raster order")},
                          {"chosen_map", w_.image(matrix_image(d.chosen_mass, d.nb, cs, tile_pixels()),
                                                  id + "_mass_chosen", "tile mass in the chosen order")},
                          {"scale", color_scale(fmt::format("{:.1e}", lo), fmt::format("{:.1e}", hi), "log scale")}};
    }

    // The mask of every slot.
    mu::data masks(const HeadPattern& hp, const std::string& id) {
        mu::data out = empty_list();
        for (int t = 0; t < T(); ++t) {
            const BlockMask& m = hp.masks[static_cast<size_t>(t)];
            out << mu::object{{"image", w_.image(mask_image(m, tile_pixels()), fmt::format("{}_mask_slot{}", id, t),
                                                 fmt::format("mask, slot {}", t))},
                              {"slot", as_text(t)},
                              {"steps", p_.slots.describe(t)},
                              {"kept", as_text(m.count())},
                              {"recall", num(hp.recall[static_cast<size_t>(t)])}};
        }
        return out;
    }

    // Token-level attention (mean over samples) in raster and chosen order, when N is small enough.
    mu::data attention(const HeadDetail& d, const std::string& id) {
        if (d.full_n == 0) return false;
        double hi = 0;
        for (double x : d.full_raster) hi = std::max(hi, x);
        if (!(hi > 0)) hi = 1;
        const ColorScale cs{hi * 1e-5, hi, true};
        const int u = static_cast<int>(std::clamp<int64_t>(512 / d.full_n, 1, 16));
        return mu::object{
            {"raster_map", w_.image(matrix_image(d.full_raster, d.full_n, cs, u), id + "_full_raster",
                                    "attention, raster order", "full")},
            {"chosen_map", w_.image(matrix_image(d.full_chosen, d.full_n, cs, u), id + "_full_chosen",
                                    "attention, chosen order", "full")},
            {"tokens", as_text(d.full_n)},
            {"scale", color_scale(fmt::format("{:.1e}", hi * 1e-5), fmt::format("{:.1e}", hi), "log scale")}};
    }

    // One row per sample: the order it alone would choose and its recall, from the pattern; with the
    // dump, its timestep, step, prompt, slot and the recall recomputed from the dump.
    mu::data head_samples(const HeadPattern& hp, const HeadDetail& d) const {
        const auto dumped = static_cast<int64_t>(d.sample_recall.size());  // 0 without the dump
        if (S() == 0 && dumped == 0) return false;
        mu::data rows = empty_list();
        for (int64_t s = 0; s < std::max(S(), dumped); ++s) {
            const auto i = static_cast<size_t>(s);
            mu::data row = mu::object{{"sample", as_text(s)}};
            row["plan"] = s < S() ? mu::data(mu::object{{"badge", order_badge(kAllOrders[hp.sample_order[i]])},
                                                        {"recall", num(hp.sample_recall[i])}})
                                  : mu::data(false);
            if (s < dumped) {
                add_dump_sample(row, reader_->info().samples[i]);
                row["slot"] = d.sample_slot[i] >= 0 ? std::to_string(d.sample_slot[i]) : std::string("n/a");
                row["recomputed"] = num(d.sample_recall[i]);
            } else if (d.has_dump) {
                for (const char* cell : {"timestep", "step", "prompt", "slot", "recomputed"}) row[cell] = std::string();
            }
            rows << row;
        }
        return mu::object{{"rows", rows}};
    }

    const ReportOptions& opt_;
    const Pattern& p_;
    const std::vector<HeadRow>& rows_;
    const DumpReader* reader_;
    Writer& w_;
    const int64_t max_heads_, total_heads_;  // total: one row per head
};

// ---------------------------------------------------------------------------------------------
// Rendering

// One file of lib/report/templates/, as built in.
std::string template_file(const std::string& name) {
    const auto& files = report_template_files();
    const auto it = files.find(name);
    if (it == files.end()) throw std::logic_error("report template " + name + " is not built in");
    return std::string(it->second);
}

// Partials ({{> name}}) come from the built-in name.mustache files, never from the page data, so no
// value can hide a template, and a misspelt partial is an error rather than nothing.
class TemplateContext : public mu::context<std::string> {
public:
    using mu::context<std::string>::context;

    const mu::data* get_partial(const std::string& name) const override {
        static const std::map<std::string, mu::data> partials = [] {
            const std::string ext = ".mustache";
            std::map<std::string, mu::data> m;
            for (const auto& [file, text] : report_template_files()) {
                if (file.size() <= ext.size() || file.compare(file.size() - ext.size(), ext.size(), ext) != 0) continue;
                // The file's final newline ends the file, not the template: a partial can sit inside a line.
                std::string body(text);
                if (!body.empty() && body.back() == '\n') body.pop_back();
                m.emplace(file.substr(0, file.size() - ext.size()), mu::data(body));
            }
            return m;
        }();
        const auto it = partials.find(name);
        if (it == partials.end()) throw std::logic_error("report template: no partial " + name);
        return &it->second;
    }
};

// page.mustache with `page` (PageData's values), the style sheet and the script.
std::string render_page(mu::data page) {
    page["style"] = template_file("report.css");
    page["script"] = template_file("report.js");
    mu::mustache tmpl{template_file("page.mustache")};
    const auto check = [&] {
        if (!tmpl.is_valid()) throw std::logic_error("report template: " + tmpl.error_message());
    };
    check();
    TemplateContext ctx{&page};
    std::string html = tmpl.render(ctx);
    check();
    return html;
}

}  // namespace

// =============================================================================================

ReportResult write_report(const ReportOptions& opt) {
    const auto say = [&](const std::string& s) {
        if (opt.progress) opt.progress(s);
    };

    // ---- validate all input before touching the file system
    const fs::path dir = check_out_dir(opt.out_dir);
    const Pattern p = read_pattern_file(opt.pattern_path);
    const int64_t L = static_cast<int64_t>(p.layers.size());

    std::optional<DumpReader> reader;
    if (!opt.dump_path.empty()) {
        reader.emplace(opt.dump_path);
        const DumpInfo& info = reader->info();
        check_dump_fits_pattern(info, p, opt.pattern_path);
        if (info.samples.empty()) throw InputError(opt.dump_path, "/samples", "the dump has no samples");
    }

    const std::vector<HeadRow> rows = head_rows(p);
    std::vector<HeadRef> heads = opt.heads;
    for (const HeadRef& r : heads)
        if (r.layer < 0 || r.layer >= L || r.head < 0 ||
            r.head >= static_cast<int64_t>(p.layers[r.layer].heads.size()))
            throw ParameterError("heads",
                                 fmt::format("{}:{} is not a head of {} ({} layers, {} heads in the largest)", r.layer, r.head,
                                             opt.pattern_path, L, max_heads_of(p)));
    if (heads.empty()) heads = default_heads(rows, opt.default_heads_each);

    // ---- the temporary directory
    TempDir tmp;
    remove_stale_temporaries(dir.string());
    tmp.path = temporary_path(dir.string());
    {
        std::error_code ec;
        fs::remove_all(tmp.path, ec);
    }
    fs::create_directories(tmp.path / "img");
    Writer w{tmp.path};
    w.image(colorbar(), "colorbar", "color scale");  // colorbar.mustache shows it

    // ---- the page's data (and its images), then the page
    PageData data(opt, p, rows, reader ? &*reader : nullptr, w);
    mu::data page = data.root();
    say("summary");
    page["summary"] = data.summary();
    say("order maps");
    page["orders"] = data.orders();
    say("density and recall maps");
    page["density"] = data.density();
    say("stability");
    page["stability"] = data.stability();
    page["heads"] = data.heads(heads, say);
    say("score table");
    page["all_heads"] = data.all_heads();
    page["hover_json"] = data.hover_json();
    const std::string html = render_page(std::move(page));

    {
        const fs::path index = tmp.path / "index.html";
        std::FILE* f = std::fopen(index.c_str(), "wb");
        if (!f) throw std::runtime_error(index.string() + ": cannot open for writing");
        const size_t wrote = std::fwrite(html.data(), 1, html.size(), f);
        const bool ok = wrote == html.size() && std::fclose(f) == 0;
        if (!ok) throw std::runtime_error(index.string() + ": write failed");
        std::FILE* m = std::fopen((tmp.path / kMarker).c_str(), "wb");
        if (!m) throw std::runtime_error((tmp.path / kMarker).string() + ": cannot open for writing");
        std::fputs("written by paro report; this directory is replaced as a whole by the next report\n", m);
        std::fclose(m);
    }

    ReportResult res;
    res.images = w.images;
    res.heads = heads;
    res.low_recall = recall_warning(p, opt.warn_recall);
    res.html_bytes = static_cast<int64_t>(html.size());
    res.total_bytes = dir_bytes(tmp.path);
    install_dir(tmp.path, dir);
    tmp.keep = true;
    res.index_path = (dir / "index.html").string();
    return res;
}

}  // namespace paro
