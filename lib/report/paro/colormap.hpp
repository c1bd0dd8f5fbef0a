#pragma once
// Colormaps for the report: a perceptually uniform sequential map (matplotlib's viridis, sampled
// at 33 points and interpolated linearly) and a categorical palette for the six axis orders
// (Okabe-Ito colors, distinguishable with the common color-vision deficiencies).
#include <string>

#include "paro/axis_order.hpp"
#include "paro/png_image.hpp"

namespace paro {

// t in [0, 1] (clamped; NaN maps to the low end).
Rgb viridis(double t);
// Color of one axis order (FHW, the raster order, is the neutral blue).
Rgb order_color(AxisOrder o);
// "#rrggbb" for CSS.
std::string css_hex(Rgb c);

// Maps a value onto [0, 1] for a color scale, linear or log10 between lo and hi (values at or
// below lo map to 0; with log, lo must be > 0).
struct ColorScale {
    double lo = 0, hi = 1;
    bool log = false;
    double operator()(double v) const;
};

// Special colors shared by all images.
inline constexpr Rgb kMissingColor = {224, 224, 224};   // no data
inline constexpr Rgb kMaskKeptColor = {33, 33, 33};       // tile computed
inline constexpr Rgb kMaskDroppedColor = {245, 245, 245}; // tile skipped
inline constexpr Rgb kGridLineColor = {255, 255, 255};

}  // namespace paro
