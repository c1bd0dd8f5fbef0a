// AtomicOutput: temporaries of killed runs are removed by the next run for the same output, and
// only those (live processes' temporaries and other outputs' stay); commit replaces the file.
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "catch.hpp"
#include "paro/atomic_output.hpp"
#include "paro/error.hpp"
#include "test_helpers.hpp"

using namespace paro;
namespace fs = std::filesystem;

namespace {

pid_t dead_pid() {
    const pid_t pid = ::fork();
    if (pid == 0) ::_exit(0);
    ::waitpid(pid, nullptr, 0);
    return pid;
}

void touch(const std::string& path) { std::ofstream(path) << "partial"; }

}  // namespace

TEST_CASE("stale temporaries of dead runs are removed, others kept", "[atomic_output]") {
    test::TempDir tmp;
    const std::string out = tmp.file("out.h5");
    const std::string dead_file = tmp.file(".out.h5.tmp" + std::to_string(dead_pid()));
    const std::string dead_dir = tmp.file(".out.h5.tmp" + std::to_string(dead_pid()));
    const std::string live = tmp.file(".out.h5.tmp1");  // init: always running
    const std::string other = tmp.file(".other.h5.tmp" + std::to_string(dead_pid()));
    const std::string not_a_pid = tmp.file(".out.h5.tmpx1");
    touch(dead_file);
    fs::create_directories(fs::path(dead_dir) / "img");
    touch(live);
    touch(other);
    touch(not_a_pid);
    {
        AtomicOutput o(out);
        CHECK_FALSE(fs::exists(dead_file));
        CHECK_FALSE(fs::exists(dead_dir));
        CHECK(fs::exists(live));
        CHECK(fs::exists(other));
        CHECK(fs::exists(not_a_pid));
        std::ofstream(o.temp_path()) << "complete";
        o.commit();
    }
    std::ifstream in(out);
    std::string text;
    in >> text;
    CHECK(text == "complete");
    CHECK(temporary_path(out) == tmp.file(".out.h5.tmp" + std::to_string(::getpid())));
}

TEST_CASE("outputs that are not regular files are refused; symbolic links are followed", "[atomic_output]") {
    test::TempDir tmp;
    // A FIFO (as a device would be): refused before anything is written, and left as it was.
    const std::string fifo = tmp.file("fifo.h5");
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    CHECK_THROWS_AS(AtomicOutput(fifo), ParameterError);
    CHECK(fs::is_fifo(fifo));
    if (fs::exists("/dev/null")) CHECK_THROWS_AS(AtomicOutput::check("/dev/null"), ParameterError);
    // A link to a file: the file is replaced, the link stays a link to it.
    const std::string target = tmp.file("target.h5"), link = tmp.file("link.h5");
    touch(target);
    fs::create_symlink(target, link);
    {
        AtomicOutput out(link);
        std::ofstream(out.temp_path()) << "complete";
        out.commit();
    }
    CHECK(fs::is_symlink(link));
    std::ifstream in(target);
    std::string text;
    in >> text;
    CHECK(text == "complete");
}
