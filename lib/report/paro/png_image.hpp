#pragma once
// RgbImage: a plain 8-bit RGB raster, written to (and read back from) PNG through libpng.
// Used by the report (heatmaps, masks, bar charts); read_png exists for the tests.
#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace paro {

using Rgb = std::array<uint8_t, 3>;

class RgbImage {
public:
    RgbImage() = default;
    RgbImage(int width, int height, Rgb fill = {255, 255, 255});

    int width() const { return w_; }
    int height() const { return h_; }
    const std::vector<uint8_t>& pixels() const { return px_; }  // row-major, 3 bytes per pixel

    Rgb get(int x, int y) const {
        const size_t i = (static_cast<size_t>(y) * static_cast<size_t>(w_) + static_cast<size_t>(x)) * 3;
        return {px_[i], px_[i + 1], px_[i + 2]};
    }
    void set(int x, int y, Rgb c) {
        const size_t i = (static_cast<size_t>(y) * static_cast<size_t>(w_) + static_cast<size_t>(x)) * 3;
        px_[i] = c[0], px_[i + 1] = c[1], px_[i + 2] = c[2];
    }
    // Fills the rectangle [x0, x0 + w) x [y0, y0 + h), clipped to the image.
    void fill_rect(int x0, int y0, int w, int h, Rgb c);

private:
    int w_ = 0, h_ = 0;
    std::vector<uint8_t> px_;
};

// Writes an 8-bit RGB PNG. Throws std::runtime_error (with the path) when the file cannot be
// written; the report writes into its own temporary directory, so this is an environment error.
void write_png(const RgbImage& img, const std::string& path);
// Reads any 8-bit PNG libpng understands, converted to RGB. Throws std::runtime_error.
RgbImage read_png(const std::string& path);

}  // namespace paro
