#include "paro/dump_fits_pattern.hpp"

#include <fmt/format.h>

#include "paro/error.hpp"

namespace paro {

void check_dump_fits_pattern(const DumpInfo& dump, const Pattern& pattern, const std::string& pattern_file) {
    const std::string the_pattern = pattern_file.empty() ? "the pattern" : "the pattern " + pattern_file;
    if (!(dump.layout == pattern.layout))
        throw InputError(dump.path, "attribute grid",
                         fmt::format("token layout {}, {} has {}", dump.layout.describe(), the_pattern,
                                     pattern.layout.describe()));
    if (dump.layers.size() != pattern.layers.size())
        throw InputError(dump.path, "/layers",
                         fmt::format("{} layers, {} has {}", dump.layers.size(), the_pattern, pattern.layers.size()));
    for (size_t l = 0; l < dump.layers.size(); ++l)
        if (dump.layers[l].heads != static_cast<int64_t>(pattern.layers[l].heads.size()))
            throw InputError(dump.path, fmt::format("/layers/{}", l),
                             fmt::format("{} heads, {} has {}", dump.layers[l].heads, the_pattern,
                                         pattern.layers[l].heads.size()));
}

}  // namespace paro
