#include "paro/atomic_output.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <filesystem>

#include "paro/error.hpp"

namespace paro {

namespace fs = std::filesystem;

AtomicOutput::AtomicOutput(const std::string& path) : final_(path) {
    const fs::path p(path);
    const fs::path dir = p.has_parent_path() ? p.parent_path() : fs::path(".");
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) throw InputError(path, "option -o", "the output directory does not exist");
    temp_ = (dir / fmt::format(".{}.tmp{}", p.filename().string(), ::getpid())).string();
    fs::remove_all(temp_, ec);
}

AtomicOutput::~AtomicOutput() {
    if (committed_) return;
    std::error_code ec;
    fs::remove_all(temp_, ec);
}

void AtomicOutput::commit() {
    std::error_code ec;
    if (fs::is_directory(final_, ec)) fs::remove_all(final_, ec);
    fs::rename(temp_, final_, ec);
    if (ec) throw InputError(final_, "option -o", "cannot be written: " + ec.message());
    committed_ = true;
}

}  // namespace paro
