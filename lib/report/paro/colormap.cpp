#include "paro/colormap.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace paro {

namespace {
// matplotlib viridis at i/32, i = 0..32.
constexpr unsigned char kViridis[33][3] = {
    {68, 1, 84},     {71, 13, 96},    {72, 24, 106},   {72, 35, 116},   {71, 45, 123},   {69, 55, 129},
    {66, 64, 134},   {62, 73, 137},   {59, 82, 139},   {55, 91, 141},   {51, 99, 141},   {47, 107, 142},
    {44, 114, 142},  {41, 122, 142},  {38, 130, 142},  {35, 137, 142},  {33, 145, 140},  {31, 152, 139},
    {31, 160, 136},  {34, 167, 133},  {40, 174, 128},  {50, 182, 122},  {63, 188, 115},  {78, 195, 107},
    {94, 201, 98},   {112, 207, 87},  {132, 212, 75},  {152, 216, 62},  {173, 220, 48},  {194, 223, 35},
    {216, 226, 25},  {236, 229, 27},  {253, 231, 37}};

// Okabe-Ito, indexed by AxisOrder.
constexpr unsigned char kOrderColors[kNumOrders][3] = {
    {0, 114, 178},    // FHW  blue
    {86, 180, 233},   // FWH  sky blue
    {0, 158, 115},    // HFW  bluish green
    {230, 159, 0},    // HWF  orange
    {213, 94, 0},     // WFH  vermillion
    {204, 121, 167},  // WHF  reddish purple
};
}  // namespace

Rgb viridis(double t) {
    if (!(t > 0)) t = 0;  // also NaN
    if (t > 1) t = 1;
    const double x = t * 32.0;
    const int i = std::min(31, static_cast<int>(x));
    const double f = x - i;
    Rgb c;
    for (int k = 0; k < 3; ++k)
        c[k] = static_cast<uint8_t>(std::lround(kViridis[i][k] * (1 - f) + kViridis[i + 1][k] * f));
    return c;
}

Rgb order_color(AxisOrder o) {
    const auto* c = kOrderColors[index_of(o)];
    return {c[0], c[1], c[2]};
}

std::string css_hex(Rgb c) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "#%02x%02x%02x", c[0], c[1], c[2]);
    return buf;
}

double ColorScale::operator()(double v) const {
    if (!std::isfinite(v)) return 0;
    if (log) {
        if (v <= lo || lo <= 0) return 0;
        const double a = std::log10(lo), b = std::log10(hi);
        return b > a ? std::clamp((std::log10(v) - a) / (b - a), 0.0, 1.0) : 1.0;
    }
    return hi > lo ? std::clamp((v - lo) / (hi - lo), 0.0, 1.0) : 0.5;
}

}  // namespace paro
