// Files that crash or hang libhdf5 1.10 (found by byte flips; tests/data/corrupt) are refused with
// one line naming the file, through the readers and `check`; a sound file reads the same with the
// child-process walk as without it.
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "catch.hpp"
#include "paro/dump.hpp"
#include "paro/error.hpp"
#include "paro/hdf5_probe.hpp"
#include "paro/pattern.hpp"
#include "paro/schema_check.hpp"
#include "paro/synth.hpp"
#include "test_helpers.hpp"

using namespace paro;

namespace {
const std::string kCorrupt = std::string(PARO_TEST_DATA) + "/corrupt/";

// The InputError message of f(), or "" when it did not throw one.
template <typename F>
std::string input_error_of(F&& f) {
    try {
        f();
    } catch (const InputError& e) {
        return e.what();
    }
    return "";
}
}  // namespace

TEST_CASE("a pattern whose string heap crashes libhdf5 is refused, not read", "[probe]") {
    const std::string path = kCorrupt + "pattern_heap_overflow.h5";
    const std::string msg = input_error_of([&] { (void)read_pattern_file(path); });
    CHECK(msg.find(path) != std::string::npos);
    CHECK(msg.find('\n') == std::string::npos);
    // The same file through check: refused the same way (exit 2 in the command).
    CHECK(input_error_of([&] { (void)check_file(path); }) == msg);
}

TEST_CASE("a numeric attribute of a corrupt integer type is refused before conversion", "[probe]") {
    const std::string path = kCorrupt + "pattern_bad_int_type.h5";
    const std::string msg = input_error_of([&] { (void)read_pattern_file(path); });
    CHECK(msg.find("num_samples") != std::string::npos);
}

TEST_CASE("metadata libhdf5 loops on ends within the probe's time limit", "[probe]") {
    ::setenv("PARO_HDF5_PROBE_SECONDS", "2", 1);
    const std::string path = kCorrupt + "dump_metadata_loop.h5";
    const std::string msg = input_error_of([&] { (void)DumpReader(path); });
    ::unsetenv("PARO_HDF5_PROBE_SECONDS");
    CHECK(msg.find("could not be read within 2 s") != std::string::npos);
    CHECK(msg.find("PARO_HDF5_PROBE_SECONDS") != std::string::npos);
}

TEST_CASE("a sound file reads the same with and without the child-process walk", "[probe]") {
    test::TempDir tmp;
    const std::string path = tmp.file("dump.h5");
    SynthOptions o;
    o.layout = TokenLayout{{2, 4, 4}, 8, TextPosition::prefix};
    o.layers = 1;
    o.heads = 2;
    o.samples = 1;
    o.model = "probe-test";
    write_synthetic_dump(o, path);
    const DumpReader walked(path);  // walked first (this process has one thread)
    ::setenv("PARO_HDF5_PROBE", "0", 1);
    const std::string copy = tmp.file("copy.h5");
    std::filesystem::copy_file(path, copy);
    const DumpReader direct(copy);
    ::unsetenv("PARO_HDF5_PROBE");
    CHECK(walked.info().model == direct.info().model);
    CHECK(walked.info().layout.text_position == direct.info().layout.text_position);
    CHECK(walked.info().layers.size() == direct.info().layers.size());
    CHECK(walked.info().tokens() == direct.info().tokens());
}

TEST_CASE("a layer group named other than a number is a violation, not an expression", "[probe]") {
    // Found by the schema-check fuzzer: the name went into the layer's shape expressions.
    const std::string path = kCorrupt + "pattern_layer_name.h5";
    CheckResult r;
    REQUIRE_NOTHROW(r = check_file(path));
    REQUIRE(r.violations.size() == 1);
    CHECK(r.violations[0].find("unexpected member") != std::string::npos);
}

TEST_CASE("a read rehearsed in a child that crashes there is refused in the parent", "[probe]") {
    test::TempDir tmp;
    const std::string path = tmp.file("any.h5");
    const std::string crash = input_error_of([&] { h5::rehearse_in_child(path, [] { std::raise(SIGSEGV); }); });
    CHECK(crash.find(path) != std::string::npos);
    CHECK(crash.find("crashed") != std::string::npos);
    // A read that throws is the parent's to report: the rehearsal passes.
    CHECK(input_error_of([&] {
              h5::rehearse_in_child(path, [&] { throw InputError(path, "", "refused"); });
          }).empty());
    ::setenv("PARO_HDF5_PROBE_SECONDS", "0.5", 1);
    const std::string loop = input_error_of([&] { h5::rehearse_in_child(path, [] { for (;;) pause(); }); });
    ::unsetenv("PARO_HDF5_PROBE_SECONDS");
    CHECK(loop.find("could not be read within 0.5 s") != std::string::npos);
    // The pattern the pattern-reader fuzzer crashed on is refused too (by the walk or the rehearsal).
    const std::string lookup = kCorrupt + "pattern_attribute_lookup.h5";
    CHECK(input_error_of([&] { (void)read_pattern_file(lookup); }).find(lookup) != std::string::npos);
}

TEST_CASE("an attribute message claiming more than it holds is refused, whatever the heap holds", "[probe]") {
    // libhdf5 1.10 reads this value from past its message: h5py and paro read different numbers
    // from run to run; the walk's own bounds check refuses the file every time.
    const std::string path = kCorrupt + "pattern_attribute_overread.h5";
    const std::string msg = input_error_of([&] { (void)read_pattern_file(path); });
    CHECK(msg.find(path) != std::string::npos);
    CHECK(msg.find("attribute 'text_tokens' of /: its message holds 56 bytes, its fields claim 32304") !=
          std::string::npos);
    CHECK(input_error_of([&] { (void)check_file(path); }) == msg);
}
