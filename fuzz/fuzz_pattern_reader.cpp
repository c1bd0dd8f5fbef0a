// libFuzzer harness: the pattern reader, then everything `paro inspect --json` derives from a
// pattern it accepted (the JSON must parse back). Bad input may only throw paro's errors.
#include <nlohmann/json.hpp>

#include "fuzz_input.hpp"
#include "paro/error.hpp"
#include "paro/json_text.hpp"
#include "paro/pattern.hpp"
#include "paro/summary.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string& path = paro::fuzz::write_input(data, size);
    try {
        const paro::Pattern p = paro::read_pattern_file(path);
        const std::string json = paro::json_text(paro::pattern_json(p, static_cast<int64_t>(size)));
        (void)nlohmann::json::parse(json);  // throws (and the fuzzer reports) on invalid JSON
    } catch (const paro::InputError&) {
    }
    return 0;
}
