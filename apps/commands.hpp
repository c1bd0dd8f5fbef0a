#pragma once
// The subcommands of `paro`. Each add_* registers one subcommand on the root app and, when it is
// the one parsed, its runner is what main calls. Runners return the exit status:
// 0 success, 1 a check ran and failed, 2 bad input (InputError thrown, turned into 2 by main),
// 3 no usable GPU (NoDeviceError). `paro help exit-status` says the same to users.
#include <functional>
#include <string>

namespace CLI {
class App;
}

namespace paro::cli {

using Runner = std::function<int()>;

// Worker threads at most (--threads, OMP_NUM_THREADS): far above any machine's cores, far below where
// starting them fails.
constexpr int kMaxThreads = 1024;

struct GlobalOptions {
    bool quiet = false;
    int threads = 0;            // 0: all cores
    std::string color = "auto";  // --color: auto | always | never
    // Whether output to file descriptor fd gets ANSI colors: --color always / never, else (auto) when
    // fd is a terminal, NO_COLOR is unset or empty (no-color.org) and TERM is not "dumb".
    bool color_on(int fd) const;
};

void add_calibrate(CLI::App& app, Runner& run, const GlobalOptions& g);
void add_inspect(CLI::App& app, Runner& run, const GlobalOptions& g);
void add_check(CLI::App& app, Runner& run, const GlobalOptions& g);
void add_synth(CLI::App& app, Runner& run, const GlobalOptions& g);
void add_validate(CLI::App& app, Runner& run, const GlobalOptions& g);
void add_bench(CLI::App& app, Runner& run, const GlobalOptions& g);
void add_report(CLI::App& app, Runner& run, const GlobalOptions& g);
void add_export(CLI::App& app, Runner& run, const GlobalOptions& g);
void add_merge(CLI::App& app, Runner& run, const GlobalOptions& g);
// Documentation drawn from the command definitions (apps/cli_docs.cpp): `paro help [TOPIC]`,
// `paro help --man` (the man page), `paro completion bash|zsh`. Registered last: they walk the others.
void add_help(CLI::App& app, Runner& run, const GlobalOptions& g);
void add_completion(CLI::App& app, Runner& run, const GlobalOptions& g);

// The exit statuses, for `paro help exit-status`, the man page and main.
enum ExitStatus : int { kExitOk = 0, kExitCheckFailed = 1, kExitBadInput = 2, kExitNoDevice = 3 };

}  // namespace paro::cli
