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
#include <iterator>
#include <limits>
#include <nlohmann/json.hpp>
#include <numeric>
#include <optional>
#include <system_error>

#include "paro/colormap.hpp"
#include "paro/dump.hpp"
#include "paro/dump_fits_pattern.hpp"
#include "paro/error.hpp"
#include "paro/pattern.hpp"
#include "paro/png_image.hpp"
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

std::string esc(const std::string& s) {
    std::string o;
    o.reserve(s.size());
    for (char c : s) {
        switch (c) {
            case '&': o += "&amp;"; break;
            case '<': o += "&lt;"; break;
            case '>': o += "&gt;"; break;
            case '"': o += "&quot;"; break;
            case '\'': o += "&#39;"; break;
            default: o += c;
        }
    }
    return o;
}

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

// ---------------------------------------------------------------------------------------------
// Per-head derived numbers used by several sections

struct HeadRow {
    int64_t layer = 0, head = 0;
    const HeadPattern* hp = nullptr;
    double mean_density = 0, mean_recall = 0;
    double agree = std::numeric_limits<double>::quiet_NaN();  // fraction of samples choosing the plan's order
    int agree_count = 0;
    double min_sample_recall = std::numeric_limits<double>::quiet_NaN();
};

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
            rows.push_back(r);
        }
    return rows;
}

// ---------------------------------------------------------------------------------------------
// Images

struct Writer {
    fs::path dir;  // the temporary report directory
    int images = 0;

    // Writes img/<name>.png and returns the <img> tag.
    std::string image(const RgbImage& img, const std::string& name, const std::string& alt,
                      const std::string& cls = "", const std::string& extra_attrs = "") {
        const std::string rel = "img/" + name + ".png";
        write_png(img, (dir / rel).string());
        ++images;
        // Linked to itself: a click shows the image alone, at full resolution.
        return fmt::format("<a href=\"{0}\"><img src=\"{0}\" width=\"{1}\" height=\"{2}\" alt=\"{3}\"{4}{5}></a>", rel,
                           img.width(), img.height(), esc(alt), cls.empty() ? "" : " class=\"" + cls + "\"",
                           extra_attrs.empty() ? "" : " " + extra_attrs);
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
        std::array<int, kNumOrders> count{};
        for (const auto& hp : p.layers[l].heads) ++count[index_of(hp.order)];
        int y = height - 1;
        for (int o = 0; o < kNumOrders; ++o) {
            const int hpx = count[o] * per_head;
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
            AttentionRows ar(slice);
            ar.rows(0, n, rows.data());
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
// HTML

const char* kCss = R"CSS(
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#222;background:#fafafa}
header{background:#263238;color:#fff;padding:14px 24px}
header h1{margin:0;font-size:20px}
header .sub{color:#cfd8dc;font-size:12px;word-break:break-all}
nav{background:#fff;border-bottom:1px solid #ddd;padding:6px 24px;position:sticky;top:0;z-index:5}
nav a{margin-right:14px;color:#1565c0;text-decoration:none}
main{padding:8px 24px 40px}
section{background:#fff;border:1px solid #e0e0e0;border-radius:6px;margin:16px 0;padding:12px 18px}
h2{font-size:17px;margin:4px 0 10px}
h3{font-size:15px;margin:14px 0 6px}
table{border-collapse:collapse;font-variant-numeric:tabular-nums}
td,th{border:1px solid #e0e0e0;padding:2px 7px;text-align:right}
th{background:#f5f5f5;font-weight:600}
td.l,th.l{text-align:left}
table.kv td:first-child{text-align:left;color:#555}
table.kv td{text-align:left}
table.sortable th{cursor:pointer;user-select:none}
table.sortable th:hover{background:#e3f2fd}
tr.chosen td{background:#fff8e1;font-weight:600}
td.best{font-weight:700;text-decoration:underline}
.scroll{max-height:560px;overflow:auto;border:1px solid #e0e0e0;display:inline-block;max-width:100%}
.scroll table{border:none}
.scroll th{position:sticky;top:0}
img{image-rendering:pixelated;image-rendering:crisp-edges;max-width:100%;height:auto;border:1px solid #ccc}
.figs{display:flex;flex-wrap:wrap;gap:18px;align-items:flex-start}
figure{margin:0}
figcaption{font-size:12px;color:#555;max-width:420px}
.small img{max-width:340px}
img.full{width:520px}
.sw{display:inline-block;width:14px;height:14px;border:1px solid #555;vertical-align:middle;margin:0 4px 0 12px}
.cb{display:flex;align-items:center;gap:6px;font-size:12px;color:#555}
.cb img{width:180px;height:12px}
.note{color:#666;font-size:12px}
.warn{color:#b71c1c}
.ord{display:inline-block;padding:0 4px;border-radius:3px;color:#fff;font-weight:600;font-size:12px}
#tip{position:fixed;pointer-events:none;background:#263238;color:#fff;font-size:12px;padding:4px 7px;border-radius:4px;display:none;z-index:10;white-space:pre}
pre{background:#f5f5f5;padding:8px;overflow:auto;max-height:360px}
)CSS";

// Sorting of tables (click a header) and hover read-out on the layers x heads maps.
const char* kJs = R"JS(
(function(){
  function key(td){var v=td.getAttribute('data-v');var t=(v!==null&&v!=='')?v:td.textContent.trim();
    var f=parseFloat(t);return isNaN(f)?t:f;}
  document.querySelectorAll('table.sortable').forEach(function(tbl){
    var ths=tbl.tHead.rows[0].cells;
    Array.prototype.forEach.call(ths,function(th,i){th.addEventListener('click',function(){
      var asc=th.getAttribute('data-dir')!=='asc';
      Array.prototype.forEach.call(ths,function(o){o.removeAttribute('data-dir');});
      th.setAttribute('data-dir',asc?'asc':'desc');
      var body=tbl.tBodies[0];var rows=Array.prototype.slice.call(body.rows);
      rows.sort(function(a,b){var x=key(a.cells[i]),y=key(b.cells[i]);
        var c=(typeof x==='number'&&typeof y==='number')?x-y:String(x).localeCompare(String(y));
        if(isNaN(c))c=isNaN(x)?1:-1;return asc?c:-c;});
      rows.forEach(function(r){body.appendChild(r);});
    });});
  });
  var dataEl=document.getElementById('paro-data');if(!dataEl)return;
  var D=JSON.parse(dataEl.textContent);var tip=document.getElementById('tip');
  function fmt(x){return (x===null||x===undefined)?'n/a':Number(x).toFixed(4);}
  document.querySelectorAll('img.hm').forEach(function(img){
    img.addEventListener('mousemove',function(e){
      var r=img.getBoundingClientRect();
      var h=Math.floor((e.clientX-r.left)/r.width*D.max_heads),l=Math.floor((e.clientY-r.top)/r.height*D.layers.length);
      var L=D.layers[l];if(!L||!L[h]){tip.style.display='none';return;}
      var x=L[h];var s='layer '+l+'  head '+h+'\norder '+D.orders[x.o];
      var slot=img.getAttribute('data-slot');
      if(slot!==null){s+='\ndensity '+fmt(x.d[slot])+'  recall '+fmt(x.r[slot]);}
      else{s+='\ndensity '+x.d.map(fmt).join(' ')+'\nrecall '+x.r.map(fmt).join(' ');}
      if(x.a!==null)s+='\nsamples agreeing '+fmt(x.a)+'  min sample recall '+fmt(x.m);
      tip.textContent=s;tip.style.display='block';tip.style.left=(e.clientX+14)+'px';tip.style.top=(e.clientY+14)+'px';
    });
    img.addEventListener('mouseleave',function(){tip.style.display='none';});
  });
})();
)JS";

std::string order_badge(AxisOrder o) {
    return fmt::format("<span class=\"ord\" style=\"background:{}\">{}</span>", css_hex(order_color(o)), to_string(o));
}

std::string order_legend() {
    std::string s = "<div class=\"legend\">";
    for (AxisOrder o : kAllOrders)
        s += fmt::format("<span class=\"sw\" style=\"background:{}\"></span>{}", css_hex(order_color(o)), to_string(o));
    return s + "</div>";
}

std::string colorbar_html(const std::string& lo, const std::string& hi, const std::string& what) {
    return fmt::format("<div class=\"cb\"><span>{}</span><img src=\"img/colorbar.png\" alt=\"color scale\">"
                       "<span>{}</span><span>{}</span></div>",
                       esc(lo), esc(hi), esc(what));
}

std::string figure(const std::string& img, const std::string& caption) {
    return "<figure>" + img + "<figcaption>" + caption + "</figcaption></figure>";
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
    int64_t max_heads = 0, total_heads = 0;
    for (const auto& l : p.layers) {
        max_heads = std::max<int64_t>(max_heads, static_cast<int64_t>(l.heads.size()));
        total_heads += static_cast<int64_t>(l.heads.size());
    }
    const int T = p.slots.count();
    const int64_t S = p.num_samples();
    const int64_t nb = p.tiles_per_side();

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
                                             opt.pattern_path, L, max_heads));
    if (heads.empty()) heads = default_heads(rows, opt.default_heads_each);

    // ---- the temporary directory
    TempDir tmp;
    tmp.path = (dir.has_parent_path() ? dir.parent_path() : fs::path(".")) /
               fmt::format(".{}.tmp{}", dir.filename().string(), ::getpid());
    {
        std::error_code ec;
        fs::remove_all(tmp.path, ec);
    }
    fs::create_directories(tmp.path / "img");
    Writer w{tmp.path};
    w.image(colorbar(), "colorbar", "color scale");

    std::string html;
    auto out = std::back_inserter(html);
    html.reserve(1 << 20);

    const std::string title = fs::path(opt.pattern_path).filename().string();
    fmt::format_to(out,
                   "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                   "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
                   "<title>paro report: {}</title><style>{}</style></head><body>\n",
                   esc(title), kCss);
    fmt::format_to(out, "<header><h1>paro report: {}</h1><div class=\"sub\">pattern {}{} &middot; made by paro {} on {}</div></header>\n",
                   esc(title), esc(opt.pattern_path), reader ? " &middot; dump " + esc(opt.dump_path) : std::string(),
                   esc(p.provenance.tool_version), esc(p.provenance.created));
    html += "<nav><a href=\"#summary\">Summary</a><a href=\"#orders\">Orders</a><a href=\"#density\">Density &amp; recall</a>"
            "<a href=\"#stability\">Stability</a><a href=\"#heads\">Heads</a><a href=\"#scores\">All heads</a>"
            "<a href=\"#options\">Options</a></nav>\n<main>\n<div id=\"tip\"></div>\n";

    // ---- summary
    say("summary");
    {
        const int64_t nbytes = (nb * nb + 7) / 8;
        const double bit_bytes = static_cast<double>(T) * static_cast<double>(total_heads) * static_cast<double>(nbytes);
        const double bool_bytes = static_cast<double>(T) * static_cast<double>(total_heads) * static_cast<double>(nb * nb);
        std::error_code ec;
        const auto fsize = fs::file_size(opt.pattern_path, ec);
        std::string slots_desc;
        for (int t = 0; t < T; ++t) slots_desc += (t ? " " : "") + p.slots.describe(t);
        std::array<int64_t, kNumOrders> count{};
        for (const auto& r : rows) ++count[index_of(r.hp->order)];
        std::string counts;
        for (int o = 0; o < kNumOrders; ++o)
            counts += fmt::format("{} {} &nbsp; ", order_badge(kAllOrders[o]), count[o]);

        html += "<section id=\"summary\"><h2>Summary</h2><table class=\"kv\">";
        fmt::format_to(out, "<tr><td>Token grid (F &times; H &times; W)</td><td id=\"sum-grid\">{} &times; {} &times; {}</td></tr>",
                       p.layout.grid[0], p.layout.grid[1], p.layout.grid[2]);
        fmt::format_to(out, "<tr><td>Text tokens</td><td id=\"sum-text-tokens\">{}</td></tr>", p.layout.text_tokens);
        fmt::format_to(out, "<tr><td>Text position</td><td id=\"sum-text-position\">{}</td></tr>",
                       to_string(p.layout.text_position));
        fmt::format_to(out, "<tr><td>Sequence length N</td><td id=\"sum-tokens\">{}</td></tr>", p.layout.tokens());
        fmt::format_to(out, "<tr><td>Tile size (block_q &times; block_k)</td><td id=\"sum-block\">{} &times; {}</td></tr>",
                       p.block_q, p.block_k);
        fmt::format_to(out, "<tr><td>Tiles per side</td><td id=\"sum-nb\">{}</td></tr>", nb);
        fmt::format_to(out, "<tr><td>Layers &times; heads</td><td id=\"sum-heads\">{} &times; {} ({} heads)</td></tr>", L,
                       max_heads, total_heads);
        fmt::format_to(out, "<tr><td>Timestep slots</td><td id=\"sum-slots\">{}</td></tr><tr><td>Slot boundaries (step fraction)</td><td>{}</td></tr>",
                       T, esc(slots_desc));
        fmt::format_to(out, "<tr><td>Calibration samples</td><td id=\"sum-samples\">{}</td></tr>", S);
        fmt::format_to(out, "<tr><td>Objective</td><td>{} ({} is better)</td></tr>", esc(p.objective),
                       p.higher_is_better ? "higher" : "lower");
        fmt::format_to(out, "<tr><td>Overall density (tiles kept)</td><td id=\"sum-density\">{}</td></tr>",
                       num(p.mean_density()));
        fmt::format_to(out, "<tr><td>Overall recall (attention mass kept)</td><td id=\"sum-recall\">{}</td></tr>",
                       num(p.mean_recall()));
        fmt::format_to(out, "<tr><td>Mask storage</td><td id=\"sum-storage\">{} as bits ({} as one byte per tile); pattern file {}</td></tr>",
                       human_bytes(static_cast<int64_t>(bit_bytes)), human_bytes(static_cast<int64_t>(bool_bytes)),
                       ec ? std::string("n/a") : human_bytes(static_cast<int64_t>(fsize)));
        fmt::format_to(out, "<tr><td>Orders chosen</td><td>{}</td></tr>", counts);
        fmt::format_to(out, "<tr><td>Source dump</td><td>{} ({})</td></tr>", esc(p.provenance.source_dump),
                       esc(p.provenance.source_checksum));
        html += "</table>";
        if (reader) {
            const DumpInfo& info = reader->info();
            const std::string dn = fs::path(opt.dump_path).filename().string();
            if (!p.provenance.source_dump.empty() && fs::path(p.provenance.source_dump).filename().string() != dn)
                fmt::format_to(out, "<p class=\"warn\">The dump given ({}) is not the one the pattern was calibrated on ({}).</p>",
                               esc(dn), esc(p.provenance.source_dump));
            if (static_cast<int64_t>(info.samples.size()) != S)
                fmt::format_to(out, "<p class=\"warn\">The dump has {} samples; the pattern was calibrated on {}.</p>",
                               info.samples.size(), S);
        }
        // per-slot table
        html += "<h3>Per slot</h3><table id=\"slot-table\"><thead><tr><th>slot</th><th class=\"l\">steps</th><th>mean density</th><th>mean recall</th><th>min recall</th></tr></thead><tbody>";
        for (int t = 0; t < T; ++t) {
            std::vector<double> d, r;
            for (const auto& row : rows) d.push_back(row.hp->density[t]), r.push_back(row.hp->recall[t]);
            fmt::format_to(out, "<tr><td>{}</td><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", t,
                           esc(p.slots.describe(t)), num(mean_of(d)), num(mean_of(r)), num(min_of(r)));
        }
        html += "</tbody></table></section>\n";
    }

    // ---- orders
    say("order maps");
    {
        html += "<section id=\"orders\"><h2>Chosen order per head</h2>";
        html += order_legend();
        const RgbImage grid = head_grid(p, max_heads, [&](int64_t l, int64_t h) {
            return order_color(p.layers[l].heads[h].order);
        });
        html += "<div class=\"figs\">";
        html += figure(w.image(grid, "orders", "chosen order per layer and head", "hm"),
                       fmt::format("Rows: layers 0&ndash;{} (top to bottom); columns: heads 0&ndash;{}. Hover for values.",
                                   L - 1, max_heads - 1));
        html += figure(w.image(order_bars(p, max_heads), "order_bars", "heads per order in each layer"),
                       fmt::format("Heads choosing each order, one stacked bar per layer (layer 0 at the left, {} at the right); "
                                   "bar height = number of heads.", L - 1));
        html += "</div><h3>Heads per order and layer</h3><div class=\"scroll\"><table id=\"order-counts\" class=\"sortable\"><thead><tr><th>layer</th>";
        for (AxisOrder o : kAllOrders) fmt::format_to(out, "<th>{}</th>", order_badge(o));
        html += "</tr></thead><tbody>";
        for (int64_t l = 0; l < L; ++l) {
            std::array<int, kNumOrders> c{};
            for (const auto& hp : p.layers[l].heads) ++c[index_of(hp.order)];
            fmt::format_to(out, "<tr><td>{}</td>", l);
            for (int o = 0; o < kNumOrders; ++o) fmt::format_to(out, "<td>{}</td>", c[o]);
            html += "</tr>";
        }
        html += "</tbody></table></div></section>\n";
    }

    // ---- density and recall per slot
    say("density and recall maps");
    {
        double dlo = 1, dhi = 0, rlo = 1;
        for (const auto& r : rows)
            for (int t = 0; t < T; ++t) {
                dlo = std::min(dlo, r.hp->density[t]);
                dhi = std::max(dhi, r.hp->density[t]);
                rlo = std::min(rlo, r.hp->recall[t]);
            }
        if (dlo > dhi) dlo = dhi = 0;
        const ColorScale ds{dlo, dhi, false}, rs{std::min(rlo, 1.0), 1.0, false};
        html += "<section id=\"density\"><h2>Density and recall per slot</h2>";
        html += "<p class=\"note\">Density: fraction of tiles a head's mask keeps. Recall: fraction of the attention mass "
                "(over the calibration samples of that slot) inside the kept tiles. Rows are layers, columns heads; one "
                "color scale per quantity, shared by all slots. Hover for values.</p>";
        // One small layers x heads map per slot of a per-slot quantity (density or recall).
        const auto slot_maps = [&](std::vector<double> HeadPattern::*field, const auto& scale, const char* name) {
            html += "<div class=\"figs small\">";
            for (int t = 0; t < T; ++t) {
                const RgbImage img = head_grid(
                    p, max_heads, [&](int64_t l, int64_t h) { return viridis(scale((p.layers[l].heads[h].*field)[t])); },
                    kSmallMap);
                html += figure(w.image(img, fmt::format("{}_slot{}", name, t), fmt::format("{}, slot {}", name, t), "hm",
                                       fmt::format("data-slot=\"{}\"", t)),
                               fmt::format("slot {} {}", t, esc(p.slots.describe(t))));
            }
            html += "</div>";
        };
        html += "<h3>Density</h3>" + colorbar_html(num(dlo, 3), num(dhi, 3), "fraction of tiles kept");
        slot_maps(&HeadPattern::density, ds, "density");
        html += "<h3>Recall</h3>" + colorbar_html(num(std::min(rlo, 1.0), 3), "1", "attention mass kept");
        slot_maps(&HeadPattern::recall, rs, "recall");
        html += "</section>\n";
    }

    // ---- stability
    say("stability");
    {
        html += "<section id=\"stability\"><h2>Plan stability across samples</h2>";
        if (S <= 1) {
            fmt::format_to(out, "<p id=\"stability-none\">The pattern was calibrated on {} sample{}: stability across prompts and "
                                "timesteps cannot be judged. Calibrate on several samples (prompts &times; steps) to see it.</p>",
                           S, S == 1 ? "" : "s");
        } else {
            int64_t all_agree = 0;
            double min_rec = 1;
            std::vector<double> minrecs;
            for (const auto& r : rows) {
                all_agree += r.agree_count == S;
                min_rec = std::min(min_rec, r.min_sample_recall);
                minrecs.push_back(r.min_sample_recall);
            }
            fmt::format_to(out,
                           "<p>Each sample alone would have chosen the plan's order for <b id=\"stab-all-agree\">{}</b> of {} heads "
                           "({}%). The shared masks keep on average <b>{}</b> of a sample's attention mass; the worst "
                           "sample of the worst head keeps <b id=\"stab-min-recall\">{}</b>.</p>",
                           all_agree, total_heads, num(100.0 * static_cast<double>(all_agree) / static_cast<double>(total_heads), 1),
                           num(mean_of(minrecs)), num(min_rec));
            const ColorScale as{0, 1, false}, ms{std::min(min_rec, 1.0), 1.0, false};
            html += "<div class=\"figs small\">";
            html += figure(w.image(head_grid(p, max_heads, [&](int64_t l, int64_t h) {
                                       const auto& hp = p.layers[l].heads[h];
                                       int a = 0;
                                       for (uint8_t o : hp.sample_order) a += o == index_of(hp.order);
                                       return viridis(as(static_cast<double>(a) / static_cast<double>(hp.sample_order.size())));
                                   }, kSmallMap),
                                   "stability_agree", "fraction of samples agreeing with the plan", "hm"),
                           "Fraction of samples whose own best order is the plan's order (yellow = all agree).<br>" +
                               colorbar_html("0", "1", "agreeing"));
            html += figure(w.image(head_grid(p, max_heads, [&](int64_t l, int64_t h) {
                                       return viridis(ms(min_of(p.layers[l].heads[h].sample_recall)));
                                   }, kSmallMap),
                                   "stability_min_recall", "lowest per-sample recall of the shared mask", "hm"),
                           "Lowest mass the shared mask keeps on any one sample.<br>" +
                               colorbar_html(num(std::min(min_rec, 1.0), 3), "1", "min sample recall"));
            html += "</div>";
            // per sample
            html += "<h3>Per sample</h3><div class=\"scroll\"><table id=\"sample-table\" class=\"sortable\"><thead><tr><th>sample</th>";
            const DumpInfo* info = reader && static_cast<int64_t>(reader->info().samples.size()) == S ? &reader->info() : nullptr;
            if (info) html += "<th>timestep</th><th>step</th><th>prompt</th>";
            html += "<th>heads agreeing with the plan</th><th>mean recall of shared mask</th><th>min recall</th></tr></thead><tbody>";
            for (int64_t s = 0; s < S; ++s) {
                int64_t agree = 0;
                std::vector<double> rec;
                for (const auto& r : rows) {
                    agree += r.hp->sample_order[static_cast<size_t>(s)] == index_of(r.hp->order);
                    rec.push_back(r.hp->sample_recall[static_cast<size_t>(s)]);
                }
                fmt::format_to(out, "<tr><td>{}</td>", s);
                if (info) {
                    const auto& sm = info->samples[static_cast<size_t>(s)];
                    fmt::format_to(out, "<td>{}</td><td>{}</td><td>{}</td>", num(sm.timestep, 1),
                                   sm.step >= 0 ? std::to_string(sm.step) : std::string("n/a"), sm.prompt);
                }
                fmt::format_to(out, "<td data-v=\"{}\">{} / {}</td><td>{}</td><td>{}</td></tr>", agree, agree, total_heads,
                               num(mean_of(rec)), num(min_of(rec)));
            }
            html += "</tbody></table></div>";
            // heads where samples disagree
            std::vector<const HeadRow*> dis;
            for (const auto& r : rows)
                if (r.agree_count < S) dis.push_back(&r);
            std::stable_sort(dis.begin(), dis.end(), [](const HeadRow* a, const HeadRow* b) { return a->agree < b->agree; });
            fmt::format_to(out, "<h3>Heads whose samples disagree ({})</h3>", dis.size());
            if (dis.empty()) {
                html += "<p>None: every sample picks the plan's order for every head.</p>";
            } else {
                const size_t shown = std::min<size_t>(dis.size(), 200);
                if (shown < dis.size())
                    fmt::format_to(out, "<p class=\"note\">The {} least stable of {} are listed.</p>", shown, dis.size());
                html += "<div class=\"scroll\"><table id=\"disagree-table\" class=\"sortable\"><thead><tr><th>layer</th><th>head</th>"
                        "<th>plan</th><th>agreeing</th><th class=\"l\">order each sample would choose</th><th>min sample recall</th></tr></thead><tbody>";
                for (size_t i = 0; i < shown; ++i) {
                    const HeadRow& r = *dis[i];
                    std::string per;
                    for (uint8_t o : r.hp->sample_order) per += order_badge(kAllOrders[o]) + " ";
                    fmt::format_to(out, "<tr><td>{}</td><td>{}</td><td data-v=\"{}\">{}</td><td data-v=\"{}\">{} / {}</td><td class=\"l\">{}</td><td>{}</td></tr>",
                                   r.layer, r.head, to_string(r.hp->order), order_badge(r.hp->order), r.agree, r.agree_count, S,
                                   per, num(r.min_sample_recall));
                }
                html += "</tbody></table></div>";
            }
        }
        html += "</section>\n";
    }

    // ---- heads in detail
    {
        std::optional<TileStatsEngine> engine;
        if (reader) engine.emplace(p.layout, TileStatsOptions{p.block_q, 1e-3f});
        html += "<section id=\"heads\"><h2>Heads in detail</h2>";
        fmt::format_to(out, "<p class=\"note\">{}{}</p>",
                       opt.heads.empty() ? fmt::format("The {} worst and {} best heads by recall (choose with --heads L:H,...). ",
                                                       opt.default_heads_each, opt.default_heads_each)
                                         : std::string("Heads chosen with --heads. "),
                       reader ? "Tile mass: attention mass per 64&times;64 tile, summed over the dump's samples, as a "
                                "fraction of the total, on a log color scale shared by both panels."
                              : "Run with --dump DUMP to see the attention mass in raster and chosen order.");
        const int u_tile = static_cast<int>(std::clamp<int64_t>(256 / std::max<int64_t>(nb, 1), 1, 64));
        int index = 0;
        for (const HeadRef& ref : heads) {
            say(fmt::format("head {}:{} ({}/{})", ref.layer, ref.head, index + 1, heads.size()));
            const HeadPattern& hp = p.layers[ref.layer].heads[ref.head];
            const HeadDetail d = analyze_head(p, reader ? &*reader : nullptr, engine ? &*engine : nullptr, ref,
                                              opt.full_res_max_tokens);
            const std::string id = fmt::format("L{}H{}", ref.layer, ref.head);
            fmt::format_to(out, "<h3 id=\"head-{}\">Layer {}, head {}: {} &middot; density {} &middot; recall {}</h3>", id,
                           ref.layer, ref.head, order_badge(hp.order), num(mean_of(hp.density)), num(mean_of(hp.recall)));
            html += "<div class=\"figs\">";
            if (d.has_dump) {
                double hi = 0, lo = std::numeric_limits<double>::infinity();
                for (const auto* v : {&d.raster_mass, &d.chosen_mass})
                    for (double x : *v) {
                        hi = std::max(hi, x);
                        if (x > 0) lo = std::min(lo, x);
                    }
                if (!(hi > 0)) hi = 1;
                lo = std::max(std::isfinite(lo) ? lo : hi * 1e-6, hi * 1e-6);
                const ColorScale cs{lo, hi, true};
                html += figure(w.image(matrix_image(d.raster_mass, nb, cs, u_tile), id + "_mass_raster",
                                       "tile mass in raster order"),
                               "Tile mass, raster order (FHW).");
                html += figure(w.image(matrix_image(d.chosen_mass, nb, cs, u_tile), id + "_mass_chosen",
                                       "tile mass in the chosen order"),
                               "Tile mass, chosen order " + to_string(hp.order) + ".<br>" +
                                   colorbar_html(fmt::format("{:.1e}", lo), fmt::format("{:.1e}", hi), "log scale"));
            }
            for (int t = 0; t < T; ++t)
                html += figure(w.image(mask_image(hp.masks[static_cast<size_t>(t)], u_tile), fmt::format("{}_mask_slot{}", id, t),
                                       fmt::format("mask, slot {}", t)),
                               fmt::format("Mask, slot {} {}: {} of {} tiles kept (dark), recall {}.", t,
                                           esc(p.slots.describe(t)), hp.masks[static_cast<size_t>(t)].count(), nb * nb,
                                           num(hp.recall[static_cast<size_t>(t)])));
            html += "</div>";
            if (d.full_n > 0) {
                double hi = 0;
                for (double x : d.full_raster) hi = std::max(hi, x);
                if (!(hi > 0)) hi = 1;
                const ColorScale cs{hi * 1e-5, hi, true};
                const int u = static_cast<int>(std::clamp<int64_t>(512 / d.full_n, 1, 16));
                html += "<div class=\"figs\">";
                html += figure(w.image(matrix_image(d.full_raster, d.full_n, cs, u), id + "_full_raster",
                                       "attention, raster order", "full"),
                               fmt::format("Attention P (mean over samples), all {} tokens, raster order.", d.full_n));
                html += figure(w.image(matrix_image(d.full_chosen, d.full_n, cs, u), id + "_full_chosen",
                                       "attention, chosen order", "full"),
                               "Attention P, tokens reordered " + to_string(hp.order) + ".<br>" +
                                   colorbar_html(fmt::format("{:.1e}", hi * 1e-5), fmt::format("{:.1e}", hi), "log scale"));
                html += "</div>";
            }
            // scores
            fmt::format_to(out, "<table class=\"scores\" id=\"scores-{}\"><thead><tr><th class=\"l\">order</th>", id);
            for (const char* m : kMetricNames) fmt::format_to(out, "<th>{}</th>", m);
            html += "</tr></thead><tbody>";
            for (AxisOrder o : kAllOrders) {
                const auto v = metric_values(hp.scores[index_of(o)]);
                fmt::format_to(out, "<tr{}><td class=\"l\">{}</td>", o == hp.order ? " class=\"chosen\"" : "",
                               order_badge(o));
                for (int k = 0; k < kNumMetrics; ++k) {
                    const std::string name = kMetricNames[k];
                    const bool absent = name == "output_rel_l1" && v[k] < 0;  // -1: not computed
                    fmt::format_to(out, "<td>{}</td>", absent ? std::string("n/a") : num(v[k], name == "incoherence" ? 2 : 4));
                }
                html += "</tr>";
            }
            html += "</tbody></table>";
            // samples
            if (S > 0 || d.has_dump) {
                const int64_t rowsS = std::max<int64_t>(S, d.has_dump ? static_cast<int64_t>(d.sample_recall.size()) : 0);
                fmt::format_to(out, "<h3>Layer {}, head {}: per sample</h3><table class=\"samples\"><thead><tr><th>sample</th>",
                               ref.layer, ref.head);
                if (d.has_dump) html += "<th>timestep</th><th>step</th><th>prompt</th><th>slot</th>";
                html += "<th>order alone</th><th>recall (pattern)</th>";
                if (d.has_dump) html += "<th>recall (recomputed from dump)</th>";
                html += "</tr></thead><tbody>";
                for (int64_t s = 0; s < rowsS; ++s) {
                    fmt::format_to(out, "<tr><td>{}</td>", s);
                    if (d.has_dump) {
                        if (s < static_cast<int64_t>(d.sample_recall.size())) {
                            const auto& sm = reader->info().samples[static_cast<size_t>(s)];
                            const int slot = d.sample_slot[static_cast<size_t>(s)];
                            fmt::format_to(out, "<td>{}</td><td>{}</td><td>{}</td><td>{}</td>", num(sm.timestep, 1),
                                           sm.step >= 0 ? std::to_string(sm.step) : std::string("n/a"), sm.prompt,
                                           slot >= 0 ? std::to_string(slot) : std::string("n/a"));
                        } else {
                            html += "<td></td><td></td><td></td><td></td>";
                        }
                    }
                    if (s < S)
                        fmt::format_to(out, "<td class=\"l\">{}</td><td>{}</td>",
                                       order_badge(kAllOrders[hp.sample_order[static_cast<size_t>(s)]]),
                                       num(hp.sample_recall[static_cast<size_t>(s)]));
                    else
                        html += "<td></td><td></td>";
                    if (d.has_dump)
                        fmt::format_to(out, "<td>{}</td>",
                                       s < static_cast<int64_t>(d.sample_recall.size()) ? num(d.sample_recall[static_cast<size_t>(s)])
                                                                                       : std::string());
                    html += "</tr>";
                }
                html += "</tbody></table>";
            }
            ++index;
        }
        html += "</section>\n";
    }

    // ---- all heads
    say("score table");
    {
        html += "<section id=\"scores\"><h2>All heads</h2><p class=\"note\">Click a column to sort. The objective (";
        html += esc(p.objective);
        html += p.higher_is_better ? ", higher is better" : ", lower is better";
        html += ") of every order; the chosen order's value is underlined. Density and recall list one value per slot.</p>";
        html += "<div class=\"scroll\"><table id=\"heads-table\" class=\"sortable\"><thead><tr><th>layer</th><th>head</th>"
                "<th>order</th><th class=\"l\">density per slot</th><th class=\"l\">recall per slot</th><th>samples agreeing</th>"
                "<th>min sample recall</th><th>qk/pv bits</th>";
        for (AxisOrder o : kAllOrders) fmt::format_to(out, "<th>{}</th>", to_string(o));
        html += "</tr></thead><tbody>\n";
        for (const auto& r : rows) {
            const HeadPattern& hp = *r.hp;
            std::string dens, rec;
            for (int t = 0; t < T; ++t) {
                dens += (t ? " " : "") + num(hp.density[t]);
                rec += (t ? " " : "") + num(hp.recall[t]);
            }
            fmt::format_to(out,
                           "<tr data-l=\"{}\" data-h=\"{}\"><td>{}</td><td>{}</td><td class=\"order\" data-v=\"{}\">{}</td>"
                           "<td class=\"density l\" data-v=\"{}\">{}</td><td class=\"recall l\" data-v=\"{}\">{}</td>"
                           "<td data-v=\"{}\">{}</td><td>{}</td><td>{}/{}</td>",
                           r.layer, r.head, r.layer, r.head, to_string(hp.order), to_string(hp.order), r.mean_density, dens,
                           r.mean_recall, rec, std::isfinite(r.agree) ? fmt::format("{}", r.agree) : std::string(),
                           S > 0 ? fmt::format("{}/{}", r.agree_count, S) : std::string("n/a"), num(r.min_sample_recall),
                           hp.qk_bits, to_string(hp.pv_format));
            for (AxisOrder o : kAllOrders)
                fmt::format_to(out, "<td{}>{}</td>", o == hp.order ? " class=\"best\"" : "",
                               num(hp.scores[index_of(o)].objective));
            html += "</tr>\n";
        }
        html += "</tbody></table></div></section>\n";
    }

    // ---- options and provenance
    {
        std::string opts = p.provenance.options_json;
        try {
            opts = nlohmann::json::parse(opts).dump(2);
        } catch (const std::exception&) {
        }
        html += "<section id=\"options\"><h2>Options and provenance</h2><table class=\"kv\">";
        fmt::format_to(out, "<tr><td>paro version</td><td>{}</td></tr><tr><td>created</td><td>{}</td></tr>"
                            "<tr><td>source dump</td><td>{}</td></tr><tr><td>source checksum</td><td>{}</td></tr>",
                       esc(p.provenance.tool_version), esc(p.provenance.created), esc(p.provenance.source_dump),
                       esc(p.provenance.source_checksum));
        html += "</table><h3>Calibration options</h3><pre id=\"options-json\">" + esc(opts) + "</pre></section>\n";
    }

    // ---- data for hover read-outs
    {
        nlohmann::json j;
        j["max_heads"] = max_heads;
        j["orders"] = nlohmann::json::array();
        for (AxisOrder o : kAllOrders) j["orders"].push_back(to_string(o));
        const auto r4 = [](double v) -> nlohmann::json {
            if (!std::isfinite(v)) return nullptr;
            return std::round(v * 1e4) / 1e4;
        };
        nlohmann::json layers = nlohmann::json::array();
        size_t k = 0;
        for (int64_t l = 0; l < L; ++l) {
            nlohmann::json lh = nlohmann::json::array();
            for (size_t h = 0; h < p.layers[l].heads.size(); ++h, ++k) {
                const HeadRow& r = rows[k];
                nlohmann::json x;
                x["o"] = index_of(r.hp->order);
                x["d"] = nlohmann::json::array();
                x["r"] = nlohmann::json::array();
                for (int t = 0; t < T; ++t) x["d"].push_back(r4(r.hp->density[t])), x["r"].push_back(r4(r.hp->recall[t]));
                x["a"] = r4(r.agree);
                x["m"] = r4(r.min_sample_recall);
                lh.push_back(std::move(x));
            }
            layers.push_back(std::move(lh));
        }
        j["layers"] = std::move(layers);
        std::string data = j.dump();
        // Keep "</" out of the script element.
        for (size_t pos = 0; (pos = data.find("</", pos)) != std::string::npos; pos += 3) data.replace(pos, 2, "<\\/");
        html += "</main>\n<script type=\"application/json\" id=\"paro-data\">" + data + "</script>\n<script>" + kJs +
                "</script>\n</body></html>\n";
    }

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
    res.html_bytes = static_cast<int64_t>(html.size());
    res.total_bytes = dir_bytes(tmp.path);
    install_dir(tmp.path, dir);
    tmp.keep = true;
    res.index_path = (dir / "index.html").string();
    return res;
}

}  // namespace paro
