// paro export PATTERN --flex OUT.pt --authors OUT.pth [--num-steps N]: a pattern for FlexAttention
// or the original authors' runtime. The exports write PyTorch files, so they live in the Python
// package (python/paro/export.py); this runs `python3 -m paro.export` with that package found in
// the install (share/paro/python next to bin/) or else in the source tree this paro was built from.
#include <fmt/format.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "commands.hpp"
#include "paro/error.hpp"
#include "paro/pattern.hpp"

extern char** environ;

namespace paro::cli {

namespace {
struct ExportArgs {
    std::string pattern, flex, authors;
    int num_steps = 50;
};

std::string python_package_dir() {
    std::error_code ec;
    const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
    if (!ec) {
        const auto installed = exe.parent_path().parent_path() / "share" / "paro" / "python";
        if (std::filesystem::is_directory(installed / "paro")) return installed.string();
    }
    return PARO_SOURCE_PYTHON_DIR;
}

int run_export(const ExportArgs& a) {
    // The pattern passes paro's own reader first (the HDF5 probe, every structural and range check),
    // so export accepts exactly what calibrate, inspect and the runtime accept; the Python side then
    // reads a file known to be sound.
    (void)read_pattern_file(a.pattern);
    const char* env_python = std::getenv("PARO_PYTHON");
    const std::string python = env_python && *env_python ? env_python : "python3";
    const std::string dir = python_package_dir();
    const char* old = std::getenv("PYTHONPATH");
    const std::string path = old && *old ? dir + ":" + old : dir;
    std::vector<std::string> args{python, "-m", "paro.export", a.pattern, "--num-steps", std::to_string(a.num_steps)};
    if (!a.flex.empty()) args.insert(args.end(), {"--flex", a.flex});
    if (!a.authors.empty()) args.insert(args.end(), {"--authors", a.authors});
    std::vector<char*> argv;
    for (std::string& s : args) argv.push_back(s.data());
    argv.push_back(nullptr);
    std::vector<std::string> env_strings{"PYTHONPATH=" + path};
    for (char** e = environ; *e; ++e)
        if (std::string(*e).rfind("PYTHONPATH=", 0) != 0) env_strings.emplace_back(*e);
    std::vector<char*> envp;
    for (std::string& s : env_strings) envp.push_back(s.data());
    envp.push_back(nullptr);
    pid_t pid = 0;
    if (posix_spawnp(&pid, python.c_str(), nullptr, nullptr, argv.data(), envp.data()) != 0)
        throw InputError("", "PARO_PYTHON", fmt::format("cannot run '{}' (the exports need Python with torch, numpy "
                                                        "and h5py)", python));
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 2;
}
}  // namespace

void add_export(CLI::App& app, Runner& run, const GlobalOptions&) {
    auto a = std::make_shared<ExportArgs>();
    auto* sub = app.add_subcommand("export", "Write a pattern for FlexAttention (--flex) or the authors' runtime "
                                             "(--authors), as PyTorch files");
    sub->add_option("pattern", a->pattern, "paro-pattern file")->required();
    sub->add_option("--flex", a->flex, "FlexAttention file to write (.pt)");
    sub->add_option("--authors", a->authors, "authors' layout file to write (.pth): permute and sparse");
    sub->add_option("--num-steps", a->num_steps, "sampling steps, for the authors' uniform step-to-slot rule")
        ->capture_default_str();
    sub->callback([a, &run] { run = [a] { return run_export(*a); }; });
}

}  // namespace paro::cli
