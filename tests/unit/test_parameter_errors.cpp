// Library errors about a call's parameters name the parameter as the API spells it, never a
// command-line flag: the library is also called from C and Python (error.hpp, ParameterError).
#include <string>

#include "catch.hpp"
#include "paro/atomic_output.hpp"
#include "paro/calibrator.hpp"
#include "paro/error.hpp"
#include "paro/synth.hpp"
#include "test_helpers.hpp"

using namespace paro;

namespace {
template <typename F>
void check_names_parameter(const std::string& parameter, F&& call) {
    INFO("parameter " << parameter);
    try {
        call();
        FAIL("no error");
    } catch (const ParameterError& e) {
        CHECK(e.parameter() == parameter);
        CHECK(std::string(e.what()).find(parameter) != std::string::npos);
        CHECK(std::string(e.what()).find("--") == std::string::npos);
        CHECK(std::string(e.what()).find("option") == std::string::npos);
    }
}
}  // namespace

TEST_CASE("library errors name the parameter and no flag", "[errors]") {
    test::TempDir tmp;
    DumpInfo dump;
    dump.path = "d.h5";
    dump.layout = {{2, 4, 6}, 8, TextPosition::prefix};
    dump.samples.resize(2);
    const auto calibration = [&](auto change) {
        return [&, change] {
            CalibrateOptions o;
            change(o);
            validate_calibration(dump, o);
        };
    };
    check_names_parameter("density", calibration([](CalibrateOptions& o) { o.mask.density = 0; }));
    check_names_parameter("density", calibration([](CalibrateOptions& o) {  // below the forced tiles' share
        o.tiles.block = 16;
        o.mask.density = 0.01;
    }));
    check_names_parameter("block", calibration([](CalibrateOptions& o) { o.tiles.block = 7; }));
    check_names_parameter("eps", calibration([](CalibrateOptions& o) { o.tiles.eps = 0; }));
    check_names_parameter("qk_bits", calibration([](CalibrateOptions& o) { o.qk_bits = 3; }));
    check_names_parameter("slots", calibration([](CalibrateOptions& o) { o.slots = 0; }));
    check_names_parameter("slots", calibration([](CalibrateOptions& o) { o.slots = 2; }));  // no steps
    check_names_parameter("objective", [] { parse_objective("nope"); });
    check_names_parameter("kinds", [] { parse_head_kind("diagonal"); });
    check_names_parameter("head_dim", [&] {
        SynthOptions so;
        so.head_dim = 96;
        write_synthetic_dump(so, tmp.file("d.h5"));
    });
    check_names_parameter("num_steps", [&] {
        SynthOptions so;
        so.num_steps = 0;
        write_synthetic_dump(so, tmp.file("d.h5"));
    });
    check_names_parameter("path", [&] { AtomicOutput::check(tmp.file("missing/p.h5")); });
}

TEST_CASE("error lines stay one bounded line whatever they echo", "[errors]") {
    const InputError e("f.h5", "attribute model", "unknown model '" + std::string(5000, 'x') + "\nsecond line'");
    const std::string line = e.what();
    CHECK(line.find('\n') == std::string::npos);
    CHECK(line.size() < 1100);
    CHECK(line.rfind("f.h5: attribute model: unknown model 'xxx", 0) == 0);
    CHECK(line.find("more bytes)") != std::string::npos);
}
