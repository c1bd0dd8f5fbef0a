#pragma once
// TokenLayout: how a diffusion transformer lays its tokens out in one sequence.
// Video tokens form a grid [F, H, W] flattened in raster order (w fastest); text tokens, if any,
// sit before ("prefix", CogVideoX) or after ("suffix", HunyuanVideo) the video tokens and are
// never permuted.
#include <array>
#include <cstdint>
#include <string>

namespace paro {

enum class TextPosition { prefix, suffix };

std::string to_string(TextPosition p);
// Throws InputError (file, where) for anything but "prefix"/"suffix".
TextPosition parse_text_position(const std::string& s, const std::string& file = "",
                                 const std::string& where = "text_position");

struct VideoCoord {
    int64_t f, h, w;
};

struct TokenLayout {
    std::array<int64_t, 3> grid{1, 1, 1};  // F, H, W
    int64_t text_tokens = 0;
    TextPosition text_position = TextPosition::prefix;

    int64_t video_tokens() const { return grid[0] * grid[1] * grid[2]; }
    int64_t tokens() const { return text_tokens + video_tokens(); }
    // Index of the first video token in the sequence.
    int64_t video_begin() const { return text_position == TextPosition::prefix ? text_tokens : 0; }
    int64_t text_begin() const { return text_position == TextPosition::prefix ? 0 : video_tokens(); }
    bool is_text(int64_t token) const {
        return token >= text_begin() && token < text_begin() + text_tokens;
    }
    // Raster coordinate of a video token (token must not be text).
    VideoCoord coord(int64_t token) const;
    // Sequence index of a raster coordinate.
    int64_t token(VideoCoord c) const {
        return video_begin() + (c.f * grid[1] + c.h) * grid[2] + c.w;
    }

    // Throws InputError when the grid has a zero or negative size or text_tokens < 0.
    void validate(const std::string& file = "") const;
    std::string describe() const;  // "13x30x45 + 226 text (prefix)"

    bool operator==(const TokenLayout& o) const {
        return grid == o.grid && text_tokens == o.text_tokens && text_position == o.text_position;
    }
};

}  // namespace paro
