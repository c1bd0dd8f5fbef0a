#pragma once
// Whether a dump is one a pattern can be applied to or compared with: the same token layout and,
// layer by layer, the same number of heads. One rule for every tool that reads both (validate,
// report), so they accept and refuse the same pairs.
#include <string>

#include "paro/dump.hpp"
#include "paro/pattern.hpp"

namespace paro {

// Throws InputError naming the dump file and what differs: the token layout ("attribute grid"),
// the layer count ("/layers") or a layer's head count ("/layers/L"). pattern_file, when given, is
// named in the message too.
void check_dump_fits_pattern(const DumpInfo& dump, const Pattern& pattern, const std::string& pattern_file = "");

}  // namespace paro
