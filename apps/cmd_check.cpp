// paro check FILE: verify a dump, a pattern or a statistics file against its schema; exit 1 listing
// violations (one per line, or with --json one object: schemas/check.schema.json).
#include <CLI/CLI.hpp>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "paro/json_text.hpp"
#include "paro/schema_check.hpp"

namespace paro::cli {

void add_check(CLI::App& app, Runner& run, const GlobalOptions& g) {
    struct Args {
        std::string file;
        bool json = false;
    };
    auto a = std::make_shared<Args>();
    auto* sub = app.add_subcommand("check", "Verify a dump, pattern or statistics file against its schema (schemas/)");
    sub->add_option("file", a->file, "paro-dump, paro-pattern or paro-stats file")->required();
    sub->add_flag("--json", a->json, "print one JSON object: the format and every violation");
    sub->callback([a, &run, &g] {
        run = [a, &g] {
            const CheckResult r = check_file(a->file);
            if (a->json) {
                const nlohmann::json j{{"file", a->file}, {"format", r.format}, {"ok", r.ok()}, {"violations", r.violations}};
                std::printf("%s\n", json_text(j, 2).c_str());
                return r.ok() ? 0 : 1;
            }
            for (const auto& v : r.violations) std::printf("%s: %s\n", a->file.c_str(), v.c_str());
            if (!g.quiet)
                std::fprintf(r.ok() ? stdout : stderr, "%s: %s, %zu violation(s)\n", a->file.c_str(), r.format.c_str(),
                             r.violations.size());
            return r.ok() ? 0 : 1;
        };
    });
}

}  // namespace paro::cli
