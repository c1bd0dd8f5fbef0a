#pragma once
// The subcommands of `paro`. Each add_* registers one subcommand on the root app and, when it is
// the one parsed, its runner is what main calls. Runners return the exit status:
// 0 success, 1 a check ran and failed, 2 bad input (InputError thrown, turned into 2 by main).
#include <functional>

namespace CLI {
class App;
}

namespace paro::cli {

using Runner = std::function<int()>;

struct GlobalOptions {
    bool quiet = false;
    int threads = 0;  // 0: all cores
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

}  // namespace paro::cli
