#include "paro/token_layout.hpp"

#include <fmt/format.h>

#include <limits>

#include "paro/error.hpp"

namespace paro {

std::string to_string(TextPosition p) { return p == TextPosition::prefix ? "prefix" : "suffix"; }

TextPosition parse_text_position(const std::string& s, const std::string& file,
                                 const std::string& where) {
    if (s == "prefix") return TextPosition::prefix;
    if (s == "suffix") return TextPosition::suffix;
    throw InputError(file, where, fmt::format("unknown text position '{}' (expected prefix or suffix)", s));
}

VideoCoord TokenLayout::coord(int64_t token) const {
    PARO_ASSERT(!is_text(token) && token >= 0 && token < tokens());
    const int64_t v = token - video_begin();
    return {v / (grid[1] * grid[2]), (v / grid[2]) % grid[1], v % grid[2]};
}

void TokenLayout::validate(const std::string& file) const {
    for (int a = 0; a < 3; ++a)
        if (grid[a] <= 0)
            throw InputError(file, "grid",
                             fmt::format("grid {}x{}x{} has a zero or negative size", grid[0], grid[1], grid[2]));
    if (text_tokens < 0)
        throw InputError(file, "text_tokens", fmt::format("negative text token count {}", text_tokens));
    // Token indices are 32-bit throughout (permutations, kernels): refuse larger sequences
    // before any product can overflow.
    constexpr int64_t kMaxTokens = std::numeric_limits<int32_t>::max();
    int64_t n = text_tokens;
    int64_t video = 1;
    for (int a = 0; a < 3; ++a) {
        if (grid[a] > kMaxTokens || video > kMaxTokens / grid[a])
            throw InputError(file, "grid", fmt::format("grid {}x{}x{} has more than 2^31 tokens", grid[0], grid[1], grid[2]));
        video *= grid[a];
    }
    if (text_tokens > kMaxTokens || (n += video) > kMaxTokens)
        throw InputError(file, "text_tokens", "the sequence has more than 2^31 tokens");
}

std::string TokenLayout::describe() const {
    std::string s = fmt::format("{}x{}x{}", grid[0], grid[1], grid[2]);
    if (text_tokens > 0) s += fmt::format(" + {} text ({})", text_tokens, to_string(text_position));
    return s;
}

}  // namespace paro
