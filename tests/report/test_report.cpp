// The report writer: what lands in the directory, that every image it references is a real,
// non-blank PNG, that the numbers on the page are the pattern's, that text from the files is
// HTML-escaped, that bad input leaves nothing behind, and that an earlier report is replaced but a
// foreign directory is not.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <string>

#include "catch.hpp"
#include "paro/calibrator.hpp"
#include "paro/dump.hpp"
#include "paro/error.hpp"
#include "paro/pattern.hpp"
#include "paro/png_image.hpp"
#include "paro/report.hpp"
#include "paro/synth.hpp"

using namespace paro;
namespace fs = std::filesystem;

namespace {

struct Scratch {
    fs::path dir;
    Scratch() {
        static int counter = 0;
        dir = fs::temp_directory_path() /
              ("paro_report_ut_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
        fs::remove_all(dir);
        fs::create_directories(dir);
    }
    ~Scratch() {
        std::error_code ec;
        fs::remove_all(dir, ec);
    }
    std::string operator/(const std::string& name) const { return (dir / name).string(); }
};

std::string slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// A hand-made pattern: L x H heads, T slots, S samples, with a band mask per head.
Pattern make_pattern(int L, int H, int T, int S, TokenLayout layout = {{2, 6, 8}, 10, TextPosition::prefix},
                     int block = 16) {
    Pattern p;
    p.layout = layout;
    p.block_q = p.block_k = block;
    p.slots = SlotPlan::make(T, true);
    p.objective = "recall";
    p.provenance = {"test", R"({"density":0.5,"note":"<b>escaped</b>"})", "hand.h5", "crc32:00000000",
                    "2026-11-27T00:00:00Z"};
    const int64_t nb = p.tiles_per_side();
    for (int l = 0; l < L; ++l) {
        LayerPattern lp;
        for (int h = 0; h < H; ++h) {
            HeadPattern hp;
            hp.order = kAllOrders[(l * H + h) % kNumOrders];
            for (int t = 0; t < T; ++t) {
                BlockMask m(nb);
                for (int64_t r = 0; r < nb; ++r)
                    for (int64_t c = 0; c < nb; ++c)
                        if (std::abs(r - c) <= (h + t) % 3) m.set(r, c);
                hp.density.push_back(m.density());
                hp.recall.push_back(0.5 + 0.01 * (l * H + h) + 0.001 * t);
                hp.masks.push_back(std::move(m));
            }
            for (int o = 0; o < kNumOrders; ++o)
                hp.scores[o] = {0.1 * o, 0.5, 3.0 + o, 0.4, -1};
            for (int s = 0; s < S; ++s) {
                hp.sample_order.push_back(static_cast<uint8_t>(s == 1 && h == 0 ? (index_of(hp.order) + 1) % 6
                                                                                 : index_of(hp.order)));
                hp.sample_recall.push_back(0.45 + 0.01 * s);
            }
            lp.heads.push_back(std::move(hp));
        }
        p.layers.push_back(std::move(lp));
    }
    return p;
}

std::string id_text(const std::string& html, const std::string& id) {
    const std::regex re("id=\"" + id + "\">([^<]*)<");
    std::smatch m;
    REQUIRE(std::regex_search(html, m, re));
    return m[1];
}

// Every <img src="..."> of the page exists and is a PNG with more than one color.
int check_images(const fs::path& dir, const std::string& html) {
    const std::regex re("<img src=\"([^\"]+)\"");
    std::set<std::string> srcs;
    for (auto it = std::sregex_iterator(html.begin(), html.end(), re); it != std::sregex_iterator(); ++it)
        srcs.insert((*it)[1]);
    for (const auto& src : srcs) {
        INFO(src);
        REQUIRE(src.rfind("img/", 0) == 0);  // relative, inside DIR: works offline
        const RgbImage img = read_png((dir / src).string());
        CHECK(img.width() > 0);
        std::set<uint32_t> colors;
        for (int y = 0; y < img.height(); y += 1)
            for (int x = 0; x < img.width(); x += 1) {
                const Rgb c = img.get(x, y);
                colors.insert((uint32_t(c[0]) << 16) | (uint32_t(c[1]) << 8) | c[2]);
            }
        CHECK(colors.size() > 1);
    }
    return static_cast<int>(srcs.size());
}

}  // namespace

TEST_CASE("parse_head_list", "[report]") {
    CHECK(parse_head_list("0:1") == std::vector<HeadRef>{{0, 1}});
    CHECK(parse_head_list(" 3:7 , 0:0,3:7") == std::vector<HeadRef>{{3, 7}, {0, 0}});
    for (const char* bad : {"", ",", "1", "1:", ":2", "a:b", "1:2:3", "-1:2", "1:2,", "99999999999:1"}) {
        INFO(bad);
        CHECK_THROWS_AS(parse_head_list(bad), InputError);
    }
}

TEST_CASE("a report holds the pattern's numbers and only real images", "[report]") {
    Scratch s;
    const Pattern p = make_pattern(3, 5, 2, 3);
    write_pattern_file(p, s / "p.h5");
    ReportOptions o;
    o.pattern_path = s / "p.h5";
    o.out_dir = s / "rep";
    const ReportResult r = write_report(o);
    const fs::path dir = s.dir / "rep";
    REQUIRE(fs::exists(dir / "index.html"));
    CHECK(fs::exists(dir / ".paro-report"));
    CHECK(r.index_path == (dir / "index.html").string());
    CHECK(r.heads.size() == 6);  // 3 worst + 3 best of 15
    const std::string html = slurp(dir / "index.html");
    CHECK(html.find("http://") == std::string::npos);   // nothing fetched from a network
    CHECK(html.find("https://") == std::string::npos);
    CHECK(id_text(html, "sum-grid") == "2 &times; 6 &times; 8");
    CHECK(id_text(html, "sum-text-tokens") == "10");
    CHECK(id_text(html, "sum-block") == "16 &times; 16");
    CHECK(id_text(html, "sum-slots") == "2");
    CHECK(id_text(html, "sum-samples") == "3");
    CHECK(std::stod(id_text(html, "sum-density")) == Approx(p.mean_density()).margin(5e-5));
    CHECK(std::stod(id_text(html, "sum-recall")) == Approx(p.mean_recall()).margin(5e-5));
    // The options are shown, HTML-escaped.
    CHECK(html.find("&lt;b&gt;escaped&lt;/b&gt;") != std::string::npos);
    CHECK(html.find("<b>escaped</b>") == std::string::npos);
    // One table row per head, with its order and per-slot densities.
    for (int l = 0; l < 3; ++l)
        for (int h = 0; h < 5; ++h) {
            const auto& hp = p.layers[l].heads[h];
            const std::regex row("<tr data-l=\"" + std::to_string(l) + "\" data-h=\"" + std::to_string(h) +
                                 "\">.*?<td class=\"order\"[^>]*>([A-Z]{3})</td><td class=\"density l\"[^>]*>([^<]*)</td>");
            std::smatch m;
            REQUIRE(std::regex_search(html, m, row));
            CHECK(m[1] == to_string(hp.order));
            std::istringstream dens(m[2]);
            for (int t = 0; t < 2; ++t) {
                double d = -1;
                dens >> d;
                CHECK(d == Approx(hp.density[t]).margin(5e-5));
            }
        }
    // Stability: head 0 of every layer has one disagreeing sample of 3.
    CHECK(id_text(html, "stab-all-agree") == "12");
    const int n = check_images(dir, html);
    CHECK(n == r.images);
    CHECK(n >= 2 + 2 * 2 + 2 + 6 * 2);  // orders, bars, density/recall per slot, stability, masks
}

TEST_CASE("text from the files is HTML-escaped, markup and all", "[report]") {
    Scratch s;
    Pattern p = make_pattern(1, 2, 1, 2);
    const std::string evil = R"(<script>alert("x & 'y'")</script>)";
    const std::string escaped = "&lt;script&gt;alert(&quot;x &amp; &apos;y&apos;&quot;)&lt;/script&gt;";
    p.provenance.source_dump = evil + ".h5";
    p.provenance.source_checksum = "crc32:" + evil;
    p.provenance.options_json = nlohmann::json{{"note", evil}, {"density", 0.5}}.dump();
    const std::string name = "p&<b>'q'.h5";  // the page title and header show the file's name
    write_pattern_file(p, s / name);
    ReportOptions o;
    o.pattern_path = s / name;
    o.out_dir = s / "rep";
    write_report(o);
    const std::string html = slurp(s.dir / "rep/index.html");
    // Only the page's own two script elements (the hover data and the script); no injected markup.
    const std::regex script("<script");
    CHECK(std::distance(std::sregex_iterator(html.begin(), html.end(), script), std::sregex_iterator()) == 2);
    CHECK(html.find("<script>alert") == std::string::npos);
    CHECK(html.find("<b>'q'") == std::string::npos);
    CHECK(html.find("<title>paro report: p&amp;&lt;b&gt;&apos;q&apos;.h5</title>") != std::string::npos);
    // The source dump (summary and provenance table) and the checksum, escaped character by character.
    size_t shown = 0;
    for (size_t pos = 0; (pos = html.find(escaped + ".h5", pos)) != std::string::npos; ++pos) ++shown;
    CHECK(shown == 2);
    CHECK(html.find("crc32:" + escaped) != std::string::npos);
    // The options, pretty-printed, read back unchanged once the entities are decoded.
    std::string opts = id_text(html, "options-json");
    for (const auto& [entity, c] : std::vector<std::pair<std::string, std::string>>{
             {"&lt;", "<"}, {"&gt;", ">"}, {"&quot;", "\""}, {"&apos;", "'"}, {"&amp;", "&"}})
        for (size_t pos = 0; (pos = opts.find(entity, pos)) != std::string::npos; pos += c.size())
            opts.replace(pos, entity.size(), c);
    CHECK(opts == nlohmann::json::parse(p.provenance.options_json).dump(2));
}

TEST_CASE("a report with the dump shows attention maps and recomputed recall", "[report]") {
    Scratch s;
    SynthOptions so;
    so.layout = {{2, 8, 8}, 0, TextPosition::prefix};  // N = 128: 8 x 8 tiles, none forced
    so.layers = 1;
    so.heads = 3;
    so.samples = 3;
    so.head_dim = 64;
    write_synthetic_dump(so, s / "d.h5");
    DumpReader reader(s / "d.h5");
    CalibrateOptions co;
    co.tiles.block = 16;
    co.slots = 1;
    const Pattern cal = calibrate(reader, co);
    write_pattern_file(cal, s / "p.h5");

    ReportOptions o;
    o.pattern_path = s / "p.h5";
    o.dump_path = s / "d.h5";
    o.out_dir = s / "rep";
    o.heads = {{0, 2}};
    const ReportResult r = write_report(o);
    REQUIRE(r.heads == std::vector<HeadRef>{{0, 2}});
    const fs::path dir = s.dir / "rep";
    const std::string html = slurp(dir / "index.html");
    for (const char* f : {"img/L0H2_mass_raster.png", "img/L0H2_mass_chosen.png", "img/L0H2_full_raster.png",
                          "img/L0H2_full_chosen.png", "img/L0H2_mask_slot0.png"}) {
        INFO(f);
        CHECK(fs::exists(dir / f));
    }
    check_images(dir, html);
    // The recall recomputed from the dump matches what calibrate stored, sample by sample.
    const auto& hp = cal.layers[0].heads[2];
    const std::regex row("<tr><td>(\\d+)</td><td>[^<]*</td><td>[^<]*</td><td>[^<]*</td><td>0</td>"
                         "<td class=\"l\">.*?</td><td>([0-9.]+)</td><td>([0-9.]+)</td></tr>");
    int rows = 0;
    for (auto it = std::sregex_iterator(html.begin(), html.end(), row); it != std::sregex_iterator(); ++it, ++rows) {
        const int sidx = std::stoi((*it)[1]);
        CHECK(std::stod((*it)[2]) == Approx(hp.sample_recall[sidx]).margin(5e-5));
        CHECK(std::stod((*it)[3]) == Approx(hp.sample_recall[sidx]).margin(2e-3));
    }
    CHECK(rows == 3);
}

TEST_CASE("bad input leaves no directory behind", "[report]") {
    Scratch s;
    write_pattern_file(make_pattern(2, 2, 1, 1), s / "p.h5");
    const auto entries = [&] {
        std::set<std::string> e;
        for (const auto& x : fs::directory_iterator(s.dir)) e.insert(x.path().filename().string());
        return e;
    };
    const auto before = entries();
    ReportOptions o;
    o.out_dir = s / "rep";

    o.pattern_path = s / "missing.h5";
    CHECK_THROWS_AS(write_report(o), InputError);

    {  // not HDF5 at all
        std::ofstream(s / "junk.h5") << "junk";
    }
    o.pattern_path = s / "junk.h5";
    CHECK_THROWS_AS(write_report(o), InputError);
    fs::remove(s / "junk.h5");

    o.pattern_path = s / "p.h5";
    o.heads = {{5, 0}};
    CHECK_THROWS_AS(write_report(o), InputError);
    o.heads = {{0, 2}};
    CHECK_THROWS_AS(write_report(o), InputError);
    o.heads.clear();

    o.dump_path = s / "missing_dump.h5";
    CHECK_THROWS_AS(write_report(o), InputError);

    // A dump whose layout differs from the pattern's.
    SynthOptions so;
    so.layout = {{2, 4, 4}, 0, TextPosition::prefix};
    so.layers = 2;
    so.heads = 2;
    so.samples = 1;
    write_synthetic_dump(so, s / "other.h5");
    o.dump_path = s / "other.h5";
    try {
        write_report(o);
        FAIL("expected InputError");
    } catch (const InputError& e) {
        CHECK(e.file() == s / "other.h5");
    }
    fs::remove(s / "other.h5");
    o.dump_path.clear();

    o.out_dir = s / "no/such/parent";
    CHECK_THROWS_AS(write_report(o), InputError);

    CHECK(entries() == before);  // no DIR, no temporary directory
}

TEST_CASE("an earlier report is replaced, anything else is refused", "[report]") {
    Scratch s;
    write_pattern_file(make_pattern(1, 2, 1, 2), s / "p.h5");
    ReportOptions o;
    o.pattern_path = s / "p.h5";
    o.out_dir = s / "rep";
    write_report(o);
    std::ofstream(s / "rep/img/stale.png") << "stale";
    write_report(o);  // replaces the whole directory
    CHECK(fs::exists(s.dir / "rep/index.html"));
    CHECK_FALSE(fs::exists(s.dir / "rep/img/stale.png"));

    // An existing empty directory is fine.
    fs::create_directories(s.dir / "empty");
    o.out_dir = s / "empty";
    write_report(o);
    CHECK(fs::exists(s.dir / "empty/index.html"));

    // A directory with someone else's files is left alone.
    fs::create_directories(s.dir / "mine");
    std::ofstream(s / "mine/notes.txt") << "keep me";
    o.out_dir = s / "mine";
    CHECK_THROWS_AS(write_report(o), InputError);
    CHECK(slurp(s.dir / "mine/notes.txt") == "keep me");
    CHECK_FALSE(fs::exists(s.dir / "mine/index.html"));

    // A file at the output path is refused too.
    std::ofstream(s / "afile") << "x";
    o.out_dir = s / "afile";
    CHECK_THROWS_AS(write_report(o), InputError);

    // No temporary directories are left beside the outputs.
    for (const auto& e : fs::directory_iterator(s.dir)) CHECK(e.path().filename().string().find(".tmp") == std::string::npos);
}
