// `paro`: one program, git-style subcommands. Exit status (commands.hpp, `paro help exit-status`):
// 0 success, 1 a check failed, 2 bad input or usage (one line on stderr naming the file and what is
// at fault), 3 no usable GPU.
#include <hdf5.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <omp.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <new>
#include <string>
#include <vector>

#include "cli_docs.hpp"
#include "commands.hpp"
#include "paro/error.hpp"
#include "paro/version.hpp"

namespace paro::cli {

bool GlobalOptions::color_on(int fd) const {
    if (color == "always") return true;
    if (color == "never") return false;
    const char* no_color = std::getenv("NO_COLOR");
    const char* term = std::getenv("TERM");
    return ::isatty(fd) && !(no_color && *no_color) && !(term && std::strcmp(term, "dumb") == 0);
}

}  // namespace paro::cli

int main(int argc, char** argv) {
    using namespace paro::cli;
    // Every file paro opens is closed by its owner before exit. libhdf5 1.10's own exit handler
    // would close again a file whose writing failed (a full disk) and crash there (H5F__close_cb),
    // turning the one-line error and exit status 2 into a segmentation fault.
    H5dont_atexit();
    // Calibration allocates and frees a batch's statistics over and over (9 MB per head at the
    // CogVideoX shape) from several threads. glibc returned that memory to the kernel (mmap for
    // blocks above its threshold, trimming the heaps' tops), and every next batch page-faulted it
    // in again, the threads' faults serializing in the kernel: kept in the process instead (the
    // peak is the same; bench/RESULTS.md, "Freed memory kept").
#ifdef __GLIBC__
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 512 << 20);
#endif
    CLI::App app{"paro: pattern-aware token reordering for sparse, quantized attention in video DiTs"};
    app.require_subcommand(1);
    app.set_version_flag("--version", std::string("paro ") + paro::kVersion);
    GlobalOptions g;
    Runner run;
    add_calibrate(app, run, g);
    add_inspect(app, run, g);
    add_check(app, run, g);
    add_synth(app, run, g);
    add_validate(app, run, g);
    add_bench(app, run, g);
    add_report(app, run, g);
    add_merge(app, run, g);
    add_export(app, run, g);
    for (CLI::App* sub : app.get_subcommands({})) {
        sub->add_flag("-q,--quiet", g.quiet, "No progress line or summary chatter");
        sub->add_option("--threads", g.threads, "Worker threads (default: all cores)")->check(CLI::Range(0, kMaxThreads));
        sub->add_option("--color", g.color, "ANSI colors: auto (on a terminal, unless NO_COLOR is set), always, never")
            ->check(CLI::IsMember({"auto", "always", "never"}))
            ->capture_default_str();
    }
    add_help(app, run, g);
    add_completion(app, run, g);
    // `paro frobnicate`: CLI11 would say only that an argument was not expected.
    const std::vector<std::string> commands = subcommand_names(app);
    if (argc > 1 && argv[1][0] != '-' && std::find(commands.begin(), commands.end(), argv[1]) == commands.end()) {
        std::fprintf(stderr, "paro: unknown command '%s'%s; paro --help lists the commands\n", argv[1],
                     suggestion(commands, argv[1]).c_str());
        return kExitBadInput;
    }
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
        // Usage errors are bad input, on one line naming the command (CLI11 adds a second line).
        const std::vector<CLI::App*> subs = app.get_subcommands();
        const std::string command = subs.empty() ? "paro" : "paro " + subs.front()->get_name();
        std::fprintf(stderr, "%s: %s (%s --help)\n", command.c_str(), e.what(), command.c_str());
        return kExitBadInput;
    }
    // OMP_NUM_THREADS is capped as --threads is: tens of thousands of OpenMP threads fail to start (or crash
    // libgomp) where the worker pools of this tool never use them.
    if (g.threads > 0) omp_set_num_threads(g.threads);
    else if (omp_get_max_threads() > kMaxThreads) omp_set_num_threads(kMaxThreads);
    try {
        return run ? run() : kExitBadInput;
    } catch (const paro::InputError& e) {
        std::fprintf(stderr, "paro: %s\n", e.what());
        return kExitBadInput;
    } catch (const paro::NoDeviceError& e) {
        std::fprintf(stderr, "paro: %s\n", e.what());
        return kExitNoDevice;
    } catch (const std::bad_alloc&) {
        // Name what was being read: the subcommand's first argument that is not an option.
        const CLI::App* sub = app.get_subcommands().empty() ? nullptr : app.get_subcommands().front();
        std::string input;
        for (int i = 1; i < argc && input.empty(); ++i)
            if (argv[i][0] != '-' && (!sub || sub->get_name() != argv[i])) input = argv[i];
        std::fprintf(stderr, "paro: %sout of memory in paro %s (declared sizes beyond this machine's memory?)\n",
                     input.empty() ? "" : (input + ": ").c_str(), sub ? sub->get_name().c_str() : "");
        return kExitBadInput;
    } catch (const std::filesystem::filesystem_error& e) {
        // A file or directory the command creates or moves beside its output (a checkpoint, a
        // report's images): the path and the system's reason, without the library's decorations.
        const std::string path = e.path1().empty() ? std::string("a file beside the output") : e.path1().string();
        std::fprintf(stderr, "paro: %s: cannot be created or moved (%s)\n", paro::printable(path).c_str(),
                     e.code().message().c_str());
        return kExitBadInput;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "paro: %s\n", e.what());
        return kExitBadInput;
    }
}
