// PNG writer (through libpng) and the colormaps: round trips and the colors' basic properties.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <limits>
#include <filesystem>
#include <set>
#include <string>

#include "catch.hpp"
#include "paro/colormap.hpp"
#include "paro/png_image.hpp"

using namespace paro;
namespace fs = std::filesystem;

namespace {
fs::path temp_path(const std::string& name) {
    return fs::temp_directory_path() / ("paro_report_test_" + std::to_string(::getpid()) + "_" + name);
}
}  // namespace

TEST_CASE("PNG round trip keeps every pixel", "[report][png]") {
    RgbImage img(37, 19, {10, 20, 30});
    for (int y = 0; y < img.height(); ++y)
        for (int x = 0; x < img.width(); ++x)
            img.set(x, y, {static_cast<uint8_t>(x * 7), static_cast<uint8_t>(y * 13), static_cast<uint8_t>(x ^ y)});
    img.fill_rect(30, 15, 100, 100, {1, 2, 3});  // clipped
    const fs::path p = temp_path("rt.png");
    write_png(img, p.string());
    const RgbImage back = read_png(p.string());
    REQUIRE(back.width() == 37);
    REQUIRE(back.height() == 19);
    CHECK(back.pixels() == img.pixels());
    CHECK(back.get(36, 18) == Rgb{1, 2, 3});
    // A real PNG: the signature libpng and browsers look for.
    std::FILE* f = std::fopen(p.c_str(), "rb");
    REQUIRE(f);
    unsigned char sig[8] = {};
    REQUIRE(std::fread(sig, 1, 8, f) == 8);
    std::fclose(f);
    const unsigned char expected[8] = {0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a};
    CHECK(std::equal(sig, sig + 8, expected));
    fs::remove(p);
}

TEST_CASE("PNG errors are exceptions, not crashes", "[report][png]") {
    CHECK_THROWS(write_png(RgbImage(4, 4), "/nonexistent-dir/x.png"));
    CHECK_THROWS(write_png(RgbImage(), temp_path("empty.png").string()));
    const fs::path p = temp_path("notpng.png");
    {
        std::FILE* f = std::fopen(p.c_str(), "wb");
        std::fputs("definitely not a png file", f);
        std::fclose(f);
    }
    CHECK_THROWS(read_png(p.string()));
    // A truncated PNG: libpng's error path (longjmp) must surface as an exception.
    RgbImage img(64, 64);
    for (int i = 0; i < 64; ++i) img.set(i, i, {255, 0, 0});
    const fs::path q = temp_path("trunc.png");
    write_png(img, q.string());
    fs::resize_file(q, fs::file_size(q) / 2);
    CHECK_THROWS(read_png(q.string()));
    fs::remove(p);
    fs::remove(q);
}

TEST_CASE("viridis runs dark to bright and clamps", "[report][colormap]") {
    CHECK(viridis(0.0) == Rgb{68, 1, 84});
    CHECK(viridis(1.0) == Rgb{253, 231, 37});
    CHECK(viridis(-3.0) == viridis(0.0));
    CHECK(viridis(7.0) == viridis(1.0));
    CHECK(viridis(std::numeric_limits<double>::quiet_NaN()) == viridis(0.0));
    // Perceived lightness (approximate luma) increases monotonically.
    double prev = -1;
    for (int i = 0; i <= 100; ++i) {
        const Rgb c = viridis(i / 100.0);
        const double luma = 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2];
        CHECK(luma >= prev - 0.5);
        prev = luma;
    }
}

TEST_CASE("the six orders get six distinct colors", "[report][colormap]") {
    std::set<std::string> seen;
    for (AxisOrder o : kAllOrders) seen.insert(css_hex(order_color(o)));
    CHECK(seen.size() == 6);
    CHECK(css_hex({0, 114, 178}) == "#0072b2");
}

TEST_CASE("color scales map linear and log ranges onto [0, 1]", "[report][colormap]") {
    const ColorScale lin{2, 4, false};
    CHECK(lin(2) == Approx(0));
    CHECK(lin(3) == Approx(0.5));
    CHECK(lin(9) == Approx(1));
    CHECK(ColorScale{1, 1, false}(1) == Approx(0.5));  // a flat range maps to the middle
    const ColorScale lg{1e-4, 1, true};
    CHECK(lg(1e-2) == Approx(0.5));
    CHECK(lg(0) == Approx(0));
    CHECK(lg(1e-9) == Approx(0));
}
