// Placeholder until the validate subcommand lands.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "commands.hpp"

namespace paro::cli {
void add_validate(CLI::App& app, Runner& run, const GlobalOptions&) {
    auto* sub = app.add_subcommand("validate", "(not yet available)");
    sub->callback([&run] {
        run = [] {
            std::fprintf(stderr, "paro: validate is not available in this build\n");
            return 2;
        };
    });
}
}  // namespace paro::cli
