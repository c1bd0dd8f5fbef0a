// check_dump_fits_pattern: the one rule for "this dump goes with this pattern", one error per kind
// of mismatch, each naming the dump file and what differs.
#include "catch.hpp"
#include "paro/dump_fits_pattern.hpp"
#include "paro/error.hpp"

using namespace paro;

namespace {
const TokenLayout kLayout{{2, 4, 6}, 8, TextPosition::prefix};

DumpInfo dump(std::vector<int64_t> heads) {
    DumpInfo d;
    d.path = "dump.h5";
    d.layout = kLayout;
    for (int64_t h : heads) d.layers.push_back({DumpKind::qk, h, 64, 64, 0.125});
    return d;
}

Pattern pattern(std::vector<int> heads) {
    Pattern p;
    p.layout = kLayout;
    for (int h : heads) p.layers.push_back({std::vector<HeadPattern>(static_cast<size_t>(h))});
    return p;
}

// The error check_dump_fits_pattern throws (which must be one).
InputError mismatch(const DumpInfo& d, const Pattern& p, const std::string& pattern_file = "") {
    try {
        check_dump_fits_pattern(d, p, pattern_file);
    } catch (const InputError& e) {
        CHECK(e.file() == "dump.h5");
        CHECK(std::string(e.what()).find('\n') == std::string::npos);
        return e;
    }
    FAIL("no error");
    throw;  // unreachable
}
}  // namespace

TEST_CASE("a dump with the pattern's layout, layers and heads fits", "[fits]") {
    CHECK_NOTHROW(check_dump_fits_pattern(dump({4, 4}), pattern({4, 4})));
}

TEST_CASE("each kind of mismatch has its own error", "[fits]") {
    SECTION("token layout") {
        DumpInfo d = dump({4, 4});
        d.layout.grid[0] = 3;
        const InputError e = mismatch(d, pattern({4, 4}), "p.h5");
        CHECK(e.where() == "attribute grid");
        CHECK(e.message() == "token layout " + d.layout.describe() + ", the pattern p.h5 has " + kLayout.describe());
    }
    SECTION("fewer layers") {
        const InputError e = mismatch(dump({4}), pattern({4, 4}));
        CHECK(e.where() == "/layers");
        CHECK(e.message() == "1 layers, the pattern has 2");
    }
    SECTION("more layers") {
        CHECK(mismatch(dump({4, 4, 4}), pattern({4, 4})).where() == "/layers");
    }
    SECTION("heads of a layer") {
        const InputError e = mismatch(dump({4, 3}), pattern({4, 4}), "p.h5");
        CHECK(e.where() == "/layers/1");
        CHECK(e.message() == "3 heads, the pattern p.h5 has 4");
    }
}
