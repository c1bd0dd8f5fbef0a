// Placeholder until the report subcommand lands.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "commands.hpp"

namespace paro::cli {
void add_report(CLI::App& app, Runner& run, const GlobalOptions&) {
    auto* sub = app.add_subcommand("report", "(not yet available)");
    sub->callback([&run] {
        run = [] {
            std::fprintf(stderr, "paro: report is not available in this build\n");
            return 2;
        };
    });
}
}  // namespace paro::cli
