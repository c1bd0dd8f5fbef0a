#pragma once
// The memory budget: before large work a command estimates its peak from the declared sizes and
// refuses past a limit, so a small file claiming a huge grid fails at once with one line instead of
// growing until the system kills the process. The limit: the environment variable
// PARO_MEMORY_LIMIT (bytes, or with a K, M, G or T suffix), else 80% of the machine's memory.
#include <string>

namespace paro {

// The limit in bytes. Throws ParameterError ("PARO_MEMORY_LIMIT") for a malformed value.
double memory_limit();

// Throws InputError(file, where, "needs about X for WHAT; the limit is Y (...)") when
// bytes exceed memory_limit().
void require_memory(double bytes, const std::string& what, const std::string& file, const std::string& where);

}  // namespace paro
