// `paro`: one program, git-style subcommands. Exit status: 0 success, 1 a check failed,
// 2 bad input or usage (one line on stderr naming the file and what is at fault).
#include <omp.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <new>
#include <string>

#include "commands.hpp"
#include "paro/error.hpp"
#include "paro/version.hpp"

int main(int argc, char** argv) {
    CLI::App app{"paro: pattern-aware token reordering for sparse, quantized attention in video DiTs"};
    app.require_subcommand(1);
    app.set_version_flag("--version", std::string("paro ") + paro::kVersion);
    paro::cli::GlobalOptions g;
    paro::cli::Runner run;
    paro::cli::add_calibrate(app, run, g);
    paro::cli::add_inspect(app, run, g);
    paro::cli::add_check(app, run, g);
    paro::cli::add_synth(app, run, g);
    paro::cli::add_validate(app, run, g);
    paro::cli::add_bench(app, run, g);
    paro::cli::add_report(app, run, g);
    paro::cli::add_merge(app, run, g);
    paro::cli::add_export(app, run, g);
    for (CLI::App* sub : app.get_subcommands({})) {
        sub->add_flag("-q,--quiet", g.quiet, "No progress line or summary chatter");
        sub->add_option("--threads", g.threads, "Worker threads (default: all cores)")->check(CLI::NonNegativeNumber);
    }
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        const int code = app.exit(e);
        return code == 0 ? 0 : 2;  // usage errors are bad input
    }
    if (g.threads > 0) omp_set_num_threads(g.threads);
    try {
        return run ? run() : 2;
    } catch (const paro::InputError& e) {
        std::fprintf(stderr, "paro: %s\n", e.what());
        return 2;
    } catch (const std::bad_alloc&) {
        // Name what was being read: the subcommand's first argument that is not an option.
        const CLI::App* sub = app.get_subcommands().empty() ? nullptr : app.get_subcommands().front();
        std::string input;
        for (int i = 1; i < argc && input.empty(); ++i)
            if (argv[i][0] != '-' && (!sub || sub->get_name() != argv[i])) input = argv[i];
        std::fprintf(stderr, "paro: %sout of memory in paro %s (declared sizes beyond this machine's memory?)\n",
                     input.empty() ? "" : (input + ": ").c_str(), sub ? sub->get_name().c_str() : "");
        return 2;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "paro: %s\n", e.what());
        return 2;
    }
}
