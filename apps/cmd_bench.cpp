// Placeholder until the bench subcommand lands.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "commands.hpp"

namespace paro::cli {
void add_bench(CLI::App& app, Runner& run, const GlobalOptions&) {
    auto* sub = app.add_subcommand("bench", "(not yet available)");
    sub->callback([&run] {
        run = [] {
            std::fprintf(stderr, "paro: bench is not available in this build\n");
            return 2;
        };
    });
}
}  // namespace paro::cli
