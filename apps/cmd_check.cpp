// paro check FILE: verify a dump, a pattern or a statistics file against its schema; exit 1 listing violations.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "commands.hpp"
#include "paro/schema_check.hpp"

namespace paro::cli {

void add_check(CLI::App& app, Runner& run, const GlobalOptions& g) {
    auto file = std::make_shared<std::string>();
    auto* sub = app.add_subcommand("check", "Verify a dump, pattern or statistics file against its schema (schemas/)");
    sub->add_option("file", *file, "paro-dump, paro-pattern or paro-stats file")->required();
    sub->callback([file, &run, &g] {
        run = [file, &g] {
            const CheckResult r = check_file(*file);
            for (const auto& v : r.violations) std::printf("%s: %s\n", file->c_str(), v.c_str());
            if (!g.quiet)
                std::fprintf(r.ok() ? stdout : stderr, "%s: %s, %zu violation(s)\n", file->c_str(), r.format.c_str(),
                             r.violations.size());
            return r.ok() ? 0 : 1;
        };
    });
}

}  // namespace paro::cli
