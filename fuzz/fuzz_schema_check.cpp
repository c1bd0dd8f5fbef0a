// libFuzzer harness: `paro check` on any file (dump, pattern or statistics by its paro_format).
#include "fuzz_input.hpp"
#include "paro/error.hpp"
#include "paro/schema_check.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string& path = paro::fuzz::write_input(data, size);
    try {
        (void)paro::check_file(path);
    } catch (const paro::InputError&) {
    }
    return 0;
}
