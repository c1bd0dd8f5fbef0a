// libFuzzer harness: the dump reader (header, layers, samples), one head decoded (q, k, v, the
// NaN/Inf and shape checks), and `paro inspect --json` of the dump (the JSON must parse back).
#include <nlohmann/json.hpp>

#include "fuzz_input.hpp"
#include "paro/dump.hpp"
#include "paro/error.hpp"
#include "paro/json_text.hpp"
#include "paro/summary.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string& path = paro::fuzz::write_input(data, size);
    try {
        paro::DumpReader reader(path);
        (void)nlohmann::json::parse(paro::json_text(paro::dump_json(reader.info())));
        if (!reader.info().samples.empty() && !reader.info().layers.empty() && reader.info().layers[0].heads > 0)
            (void)reader.read(0, 0, 0, reader.info().has_v());
    } catch (const paro::InputError&) {
    }
    return 0;
}
