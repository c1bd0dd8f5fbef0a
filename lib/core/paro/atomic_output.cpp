#include "paro/atomic_output.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "paro/error.hpp"

namespace paro {

namespace fs = std::filesystem;

namespace {
fs::path parent_of(const fs::path& p) { return p.has_parent_path() ? p.parent_path() : fs::path("."); }

void fsync_path(const fs::path& p) {
    const int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;  // nothing to flush we could open: the rename still orders the result
    ::fsync(fd);
    ::close(fd);
}
}  // namespace

std::string temporary_path(const std::string& final_path) {
    const fs::path p(final_path);
    return (parent_of(p) / fmt::format(".{}.tmp{}", p.filename().string(), ::getpid())).string();
}

void remove_stale_temporaries(const std::string& final_path) {
    const fs::path p(final_path);
    const std::string prefix = fmt::format(".{}.tmp", p.filename().string());
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(parent_of(p), ec)) {
        const std::string name = e.path().filename().string();
        if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) continue;
        const std::string digits = name.substr(prefix.size());
        if (digits.size() > 9 || !std::all_of(digits.begin(), digits.end(), ::isdigit)) continue;
        const pid_t pid = static_cast<pid_t>(std::stol(digits));
        if (pid > 0 && pid != ::getpid() && ::kill(pid, 0) != 0 && errno == ESRCH) fs::remove_all(e.path(), ec);
    }
}

std::string why_unwritable(const std::string& dir) {
    return ::access(dir.c_str(), W_OK | X_OK) == 0 ? std::string() : std::strerror(errno);
}

void AtomicOutput::check(const std::string& path) {
    std::error_code ec;
    if (path.empty()) throw ParameterError("path", "empty output path");
    if (fs::is_directory(path, ec)) throw ParameterError("path", "is a directory; name a file to write", path);
    // The rename would replace a device, FIFO or socket with a regular file (as root: /dev/null).
    const fs::file_status st = fs::status(path, ec);
    if (fs::exists(st) && !fs::is_regular_file(st))
        throw ParameterError("path", "is not a regular file (a device, FIFO or socket); name a file to write", path);
    if (!fs::is_directory(parent_of(path), ec))
        throw ParameterError("path", "the output directory does not exist", path);
    if (const std::string why = why_unwritable(parent_of(path).string()); !why.empty())
        throw ParameterError("path", "the output directory cannot be written (" + why + ")", path);
}

namespace {
// A symbolic link is followed: the file it names is replaced, the link stays (the rename would
// otherwise replace the link itself and leave its target as it was).
std::string followed(const std::string& path) {
    std::error_code ec;
    if (!fs::is_symlink(fs::symlink_status(path, ec))) return path;
    const fs::path target = fs::weakly_canonical(path, ec);
    return ec ? path : target.string();
}
}  // namespace

AtomicOutput::AtomicOutput(const std::string& path) : final_(followed(path)) {
    check(final_);
    remove_stale_temporaries(final_);
    temp_ = temporary_path(final_);
}

AtomicOutput::~AtomicOutput() {
    if (committed_) return;
    std::error_code ec;
    fs::remove(temp_, ec);
}

void AtomicOutput::commit() {
    fsync_path(temp_);
    std::error_code ec;
    fs::rename(temp_, final_, ec);
    if (ec) throw ParameterError("path", "cannot be written: " + ec.message(), final_);
    committed_ = true;
    fsync_path(parent_of(fs::path(final_)));
}

}  // namespace paro
