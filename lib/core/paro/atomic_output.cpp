#include "paro/atomic_output.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <filesystem>

#include "paro/error.hpp"

namespace paro {

namespace fs = std::filesystem;

namespace {
fs::path parent_of(const fs::path& p) { return p.has_parent_path() ? p.parent_path() : fs::path("."); }
}  // namespace

void AtomicOutput::check(const std::string& path) {
    std::error_code ec;
    if (path.empty()) throw ParameterError("path", "empty output path");
    if (fs::is_directory(path, ec)) throw ParameterError("path", "is a directory; name a file to write", path);
    if (!fs::is_directory(parent_of(path), ec))
        throw ParameterError("path", "the output directory does not exist", path);
}

AtomicOutput::AtomicOutput(const std::string& path) : final_(path) {
    check(path);
    const fs::path p(path);
    temp_ = (parent_of(p) / fmt::format(".{}.tmp{}", p.filename().string(), ::getpid())).string();
}

AtomicOutput::~AtomicOutput() {
    if (committed_) return;
    std::error_code ec;
    fs::remove(temp_, ec);
}

void AtomicOutput::commit() {
    std::error_code ec;
    fs::rename(temp_, final_, ec);
    if (ec) throw ParameterError("path", "cannot be written: " + ec.message(), final_);
    committed_ = true;
}

}  // namespace paro
