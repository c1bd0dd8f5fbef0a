#pragma once
// JSON text of values that may hold strings from other people's files: bytes that are not UTF-8
// (a corrupted or hostile attribute) become U+FFFD instead of an exception mid-output.
#include <nlohmann/json.hpp>

#include <string>

namespace paro {

inline std::string json_text(const nlohmann::json& j, int indent = -1) {
    return j.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace paro
