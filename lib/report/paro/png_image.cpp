#include "paro/png_image.hpp"

#include <png.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <stdexcept>

namespace paro {

RgbImage::RgbImage(int width, int height, Rgb fill) : w_(width), h_(height) {
    if (width < 0 || height < 0) throw std::invalid_argument("RgbImage: negative size");
    px_.resize(static_cast<size_t>(width) * static_cast<size_t>(height) * 3);
    for (size_t i = 0; i < px_.size(); i += 3) px_[i] = fill[0], px_[i + 1] = fill[1], px_[i + 2] = fill[2];
}

void RgbImage::fill_rect(int x0, int y0, int w, int h, Rgb c) {
    const int xa = std::max(0, x0), ya = std::max(0, y0);
    const int xb = std::min(w_, x0 + w), yb = std::min(h_, y0 + h);
    for (int y = ya; y < yb; ++y)
        for (int x = xa; x < xb; ++x) set(x, y, c);
}

namespace {
struct FileCloser {
    void operator()(std::FILE* f) const {
        if (f) std::fclose(f);
    }
};
using FilePtr = std::unique_ptr<std::FILE, FileCloser>;

[[noreturn]] void png_error_fn(png_structp png, png_const_charp msg) {
    // libpng requires this not to return; we unwind through setjmp below.
    auto* buf = static_cast<std::string*>(png_get_error_ptr(png));
    if (buf) *buf = msg ? msg : "unknown libpng error";
    png_longjmp(png, 1);
}
void png_warning_fn(png_structp, png_const_charp) {}
}  // namespace

void write_png(const RgbImage& img, const std::string& path) {
    if (img.width() <= 0 || img.height() <= 0) throw std::runtime_error(path + ": cannot write an empty image");
    FilePtr fp(std::fopen(path.c_str(), "wb"));
    if (!fp) throw std::runtime_error(path + ": cannot open for writing");
    std::string err;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &err, png_error_fn, png_warning_fn);
    if (!png) throw std::runtime_error(path + ": png_create_write_struct failed");
    png_infop info = png_create_info_struct(png);
    if (!info) {
        png_destroy_write_struct(&png, nullptr);
        throw std::runtime_error(path + ": png_create_info_struct failed");
    }
    std::vector<png_bytep> rows(static_cast<size_t>(img.height()));
    // Nothing with a destructor is created between setjmp and the libpng calls.
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        throw std::runtime_error(path + ": libpng: " + err);
    }
    png_init_io(png, fp.get());
    png_set_compression_level(png, 6);
    png_set_IHDR(png, info, static_cast<png_uint_32>(img.width()), static_cast<png_uint_32>(img.height()), 8,
                 PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    const size_t stride = static_cast<size_t>(img.width()) * 3;
    auto* base = const_cast<uint8_t*>(img.pixels().data());
    for (int y = 0; y < img.height(); ++y) rows[static_cast<size_t>(y)] = base + static_cast<size_t>(y) * stride;
    png_write_image(png, rows.data());
    png_write_end(png, nullptr);
    png_destroy_write_struct(&png, &info);
    if (std::fflush(fp.get()) != 0 || std::ferror(fp.get())) throw std::runtime_error(path + ": write failed");
    std::FILE* raw = fp.release();
    if (std::fclose(raw) != 0) throw std::runtime_error(path + ": write failed");
}

RgbImage read_png(const std::string& path) {
    FilePtr fp(std::fopen(path.c_str(), "rb"));
    if (!fp) throw std::runtime_error(path + ": cannot open");
    unsigned char sig[8];
    if (std::fread(sig, 1, 8, fp.get()) != 8 || png_sig_cmp(sig, 0, 8) != 0)
        throw std::runtime_error(path + ": not a PNG file");
    std::string err;
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &err, png_error_fn, png_warning_fn);
    if (!png) throw std::runtime_error(path + ": png_create_read_struct failed");
    png_infop info = png_create_info_struct(png);
    if (!info) {
        png_destroy_read_struct(&png, nullptr, nullptr);
        throw std::runtime_error(path + ": png_create_info_struct failed");
    }
    // Everything modified after setjmp lives on the heap: locals changed between setjmp and
    // longjmp would be indeterminate afterwards.
    struct State {
        RgbImage img;
        std::vector<png_bytep> rows;
    };
    const auto st = std::make_unique<State>();
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, nullptr);
        throw std::runtime_error(path + ": libpng: " + err);
    }
    png_init_io(png, fp.get());
    png_set_sig_bytes(png, 8);
    png_read_info(png, info);
    const png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    const int color = png_get_color_type(png, info);
    const int depth = png_get_bit_depth(png, info);
    if (depth == 16) png_set_strip_16(png);
    if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (color == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (color == PNG_COLOR_TYPE_GRAY || color == PNG_COLOR_TYPE_GRAY_ALPHA) png_set_gray_to_rgb(png);
    if (color & PNG_COLOR_MASK_ALPHA) png_set_strip_alpha(png);
    png_read_update_info(png, info);
    st->img = RgbImage(static_cast<int>(w), static_cast<int>(h));
    st->rows.resize(h);
    auto* base = const_cast<uint8_t*>(st->img.pixels().data());
    for (png_uint_32 y = 0; y < h; ++y) st->rows[y] = base + static_cast<size_t>(y) * w * 3;
    png_read_image(png, st->rows.data());
    png_read_end(png, nullptr);
    png_destroy_read_struct(&png, &info, nullptr);
    return std::move(st->img);
}

}  // namespace paro
