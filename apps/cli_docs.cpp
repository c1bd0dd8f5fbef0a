#include "cli_docs.hpp"

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>

#include "commands.hpp"
#include "paro/error.hpp"
#include "paro/version.hpp"

namespace paro::cli {

namespace {

std::vector<const CLI::App*> subcommands(const CLI::App& app) {
    return app.get_subcommands([](const CLI::App*) { return true; });
}

// What completion offers after an option: nothing for a flag, its words, nothing for a number
// (INT, UINT, FLOAT, NUMBER), else file names.
enum class ValueKind { none, words, number, file };

ValueKind value_kind(const CLI::Option& o) {
    if (o.get_items_expected_max() == 0) return ValueKind::none;
    if (!choices_of(o).empty()) return ValueKind::words;
    const std::string t = o.get_type_name();
    for (const char* n : {"INT", "FLOAT", "NUMBER"})
        if (t.find(n) != std::string::npos) return ValueKind::number;
    return ValueKind::file;
}

// The option's spellings: -o, --output.
std::vector<std::string> spellings(const CLI::Option& o) {
    std::vector<std::string> out;
    for (const auto& s : o.get_snames()) out.push_back("-" + s);
    for (const auto& l : o.get_lnames()) out.push_back("--" + l);
    return out;
}

std::string join(const std::vector<std::string>& v, const std::string& sep) {
    std::string out;
    for (const auto& s : v) out += (out.empty() ? "" : sep) + s;
    return out;
}

size_t edit_distance(const std::string& a, const std::string& b) {
    std::vector<size_t> row(b.size() + 1);
    for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
    for (size_t i = 1; i <= a.size(); ++i) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= b.size(); ++j) {
            const size_t up = row[j];
            row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] != b[j - 1])});
            diag = up;
        }
    }
    return row[b.size()];
}

// --- the man page (troff, man(7) macros) ---

// Text for troff: backslashes and hyphens escaped, no line starting with a control character.
std::string roff(const std::string& s) {
    std::string out;
    for (char c : s) {
        if (c == '\\') out += "\\e";
        else if (c == '-') out += "\\-";
        else out += c;
    }
    if (!out.empty() && (out[0] == '.' || out[0] == '\'')) out = "\\&" + out;
    return out;
}

// A topic's text as man paragraphs: "  term   meaning" lines become tagged paragraphs.
std::string roff_text(const std::string& text) {
    std::string out;
    size_t pos = 0;
    while (pos <= text.size()) {
        const size_t end = std::min(text.find('\n', pos), text.size());
        const std::string line = text.substr(pos, end - pos);
        pos = end + 1;
        if (line.empty()) {
            out += ".PP\n";
        } else if (line.rfind("  ", 0) == 0) {
            const size_t gap = line.find("  ", 2);
            out += ".TP\n.B " + roff(line.substr(2, gap - 2)) + "\n" +
                   roff(gap == std::string::npos ? "" : line.substr(line.find_first_not_of(' ', gap))) + "\n";
        } else {
            out += roff(line) + "\n";
        }
    }
    return out;
}

std::string option_synopsis(const CLI::Option& o) {
    if (o.get_positional() && !o.nonpositional()) return "\\fI" + roff(o.get_name(true)) + "\\fR";
    std::string out = "\\fB" + roff(join(spellings(o), ", ")) + "\\fR";
    if (o.get_items_expected_max() != 0) out += " \\fI" + roff(o.get_type_name()) + "\\fR";
    return out;
}

// --- completion scripts ---

// A word list for a single-quoted shell string (no quote can occur: names and choices are ours).
std::string words_of(const std::vector<std::string>& v) { return join(v, " "); }

// zsh _arguments help text: brackets, colons and single quotes would end the spec.
std::string zsh_text(std::string s) {
    std::string out;
    for (char c : s) {
        if (c == '[' || c == ']') out += '\\';
        if (c == '\'') {
            out += "'\\''";
            continue;
        }
        if (c == ':') out += '\\';
        out += c;
    }
    return out;
}

}  // namespace

std::string choice_type(const std::vector<std::string>& words) { return "{" + join(words, ",") + "}"; }

std::vector<std::string> choices_of(const CLI::Option& opt) {
    const std::string t = opt.get_type_name();
    const size_t open = t.find('{'), close = t.find('}', open);
    if (open == std::string::npos || close == std::string::npos) return {};
    std::vector<std::string> out;
    const std::string body = t.substr(open + 1, close - open - 1);
    for (size_t pos = 0; pos <= body.size();) {
        const size_t comma = std::min(body.find(',', pos), body.size());
        if (comma > pos) out.push_back(body.substr(pos, comma - pos));
        pos = comma + 1;
    }
    return out;
}

std::vector<std::string> subcommand_names(const CLI::App& app) {
    std::vector<std::string> out;
    for (const CLI::App* s : subcommands(app)) out.push_back(s->get_name());
    return out;
}

std::string suggestion(const std::vector<std::string>& names, const std::string& word) {
    std::string best;
    size_t best_d = 3;
    for (const auto& n : names) {
        if (!word.empty() && n.rfind(word, 0) == 0) return " (did you mean '" + n + "'?)";
        const size_t d = edit_distance(word, n);
        if (d < best_d && (d <= 1 || word.size() >= 5)) best = n, best_d = d;
    }
    return best.empty() ? "" : " (did you mean '" + best + "'?)";
}

const std::vector<HelpTopic>& help_topics() {
    static const std::vector<HelpTopic> topics = {
        {"exit-status", "EXIT STATUS",
         "Every command ends with one of these statuses:\n"
         "  0   success (warnings, such as a pattern's low recall, do not change it)\n"
         "  1   a check ran and failed: check found violations, validate's thresholds (--min-cosine, "
         "--max-rel-l1, --min-psnr) were missed\n"
         "  2   bad input or usage: one line on stderr names the file and the dataset, attribute or option "
         "at fault; no output file is left behind\n"
         "  3   the work needs a CUDA GPU and none is usable (or paro was built without CUDA): calibrate "
         "--device cuda, validate and bench; calibrate --device cpu and validate --cpu run without one"},
        {"environment", "ENVIRONMENT",
         "  NO_COLOR   when set and not empty, no ANSI colors unless --color always (no-color.org)\n"
         "  TERM   'dumb' turns colors off as NO_COLOR does\n"
         "  PARO_MEMORY_LIMIT   the memory budget a command checks its estimate against before work "
         "(e.g. 200G; default 80% of the machine's memory)\n"
         "  PARO_HDF5_PROBE_SECONDS   time limit of the child-process walk of an input file's metadata "
         "(default 20)\n"
         "  PARO_HDF5_PROBE   0 skips that walk (files you trust only)\n"
         "  PARO_PYTHON   the Python with torch that paro export runs\n"
         "  PARO_ATTENTION_KERNEL   mma.sync makes the runtime use its sm_80 kernels on Hopper (comparisons)\n"
         "  CUDA_VISIBLE_DEVICES   the GPUs paro sees (--device auto uses all of them)\n"
         "  OMP_NUM_THREADS   CPU threads when --threads is not given (at most 1024)"},
        {"files", "FILES",
         "  paro-dump (HDF5)   attention inputs (q, k, v) or attention maps of calibration samples\n"
         "  paro-stats (HDF5)   tile statistics recorded during a forward pass (python paro.Capture(stats=...))\n"
         "  paro-pattern (HDF5)   the deployable result: per head an axis order, per timestep slot a block "
         "mask, the quantization plan\n"
         "  paro-partial (HDF5)   a calibrate --layers shard; paro merge stitches shards into a pattern\n"
         "  OUTPUT.checkpoint/   finished layers of an interrupted calibrate, beside its output; the same "
         "command resumes from it\n"
         "\n"
         "The layouts are in share/paro/schemas/ (machine-readable) and docs/formats.md."},
    };
    return topics;
}

std::string man_page(const CLI::App& app) {
    std::string out = fmt::format(".TH PARO 1 \"\" \"paro {}\" \"User Commands\"\n", kVersion);
    out += ".SH NAME\nparo \\- " + roff(app.get_description().substr(app.get_description().find(": ") + 2)) + "\n";
    out += ".SH SYNOPSIS\n.B paro\n.I command\n.RI [ options ]\n.br\n.B paro help\n.RI [ command | topic ]\n";
    out += ".SH DESCRIPTION\n" +
           roff("paro picks, for every attention head of a video or image diffusion transformer, the order of the "
                "token axes (frame, height, width) that turns its attention into dense blocks, builds block masks "
                "per timestep slot and a quantization plan, and writes them to one pattern file that its CUDA "
                "runtime runs as block-sparse INT8 attention.") +
           "\n.PP\n" +
           roff("The usual path: capture q and k (and v) of a few calibration prompts into a dump (the Python "
                "package's paro.Capture, or paro synth for a synthetic one), paro calibrate it, read paro report, "
                "check the pattern with paro validate on the GPU, and ship the pattern file with the runtime.") +
           "\n.PP\n" +
           roff("Every command has --help, --quiet, --threads and --color; paro help COMMAND prints a command's "
                "options, paro help TOPIC one of the sections below.") +
           "\n.SH COMMANDS\n";
    for (const CLI::App* sub : subcommands(app)) {
        std::string synopsis = "paro " + sub->get_name();
        for (const CLI::Option* o : sub->get_options())
            if (o->get_positional() && !o->nonpositional()) {
                std::string name = o->get_name(true);
                std::transform(name.begin(), name.end(), name.begin(), ::toupper);
                synopsis += " " + (o->get_required() ? name : "[" + name + "]");
            }
        out += ".SS \"" + roff(synopsis) + "\"\n" + roff(sub->get_description()) + "\n";
        for (const CLI::Option* o : sub->get_options()) {
            std::string text = o->get_description();
            if (o->get_required()) text += " (required)";
            if (!o->get_default_str().empty()) text += " [default: " + o->get_default_str() + "]";
            out += ".TP\n" + option_synopsis(*o) + "\n" + roff(text) + "\n";
        }
    }
    for (const HelpTopic& t : help_topics()) out += std::string(".SH ") + t.title + "\n" + roff_text(t.text);
    out += ".SH SEE ALSO\n" + roff("docs/ in the source tree: formats.md, method.md, runtime.md, scale.md, security.md.") +
           "\n";
    return out;
}

std::string bash_completion(const CLI::App& app) {
    std::string cases;
    for (const CLI::App* sub : subcommands(app)) {
        if (sub->get_name() == "help" || sub->get_name() == "completion") continue;  // handled above
        std::vector<std::string> options, numbers, files;
        std::string words_cases;
        for (const CLI::Option* o : sub->get_options()) {
            if (!o->nonpositional()) continue;
            const auto names = spellings(*o);
            options.insert(options.end(), names.begin(), names.end());
            switch (value_kind(*o)) {
            case ValueKind::words:
                words_cases += fmt::format("            {}) COMPREPLY=($(compgen -W '{}' -- \"$cur\")); return ;;\n",
                                           join(names, "|"), words_of(choices_of(*o)));
                break;
            case ValueKind::number: numbers.insert(numbers.end(), names.begin(), names.end()); break;
            case ValueKind::file: files.insert(files.end(), names.begin(), names.end()); break;
            case ValueKind::none: break;
            }
        }
        cases += "    " + sub->get_name() + ")\n        case $prev in\n" + words_cases;
        if (!numbers.empty()) cases += "            " + join(numbers, "|") + ") return ;;\n";
        if (!files.empty()) cases += "            " + join(files, "|") + ") compopt -o filenames; COMPREPLY=($(compgen -f -- \"$cur\")); return ;;\n";
        cases += "        esac\n        opts='" + words_of(options) + "' ;;\n";
    }
    return fmt::format(R"(# bash completion for paro {version}; generated by `paro completion bash` from the command definitions.
_paro() {{
    local cur=${{COMP_WORDS[COMP_CWORD]}} prev=${{COMP_WORDS[COMP_CWORD-1]}} sub= i opts=
    # --opt=value: bash splits at '=' (COMP_WORDBREAKS)
    if [[ $prev == = && $COMP_CWORD -ge 2 ]]; then prev=${{COMP_WORDS[COMP_CWORD-2]}}; fi
    for ((i = 1; i < COMP_CWORD; i++)); do
        case ${{COMP_WORDS[i]}} in -*) ;; *) sub=${{COMP_WORDS[i]}}; break ;; esac
    done
    if [[ -z $sub ]]; then
        COMPREPLY=($(compgen -W '{commands} --help --version' -- "$cur"))
        return
    fi
    case $sub in
    help) COMPREPLY=($(compgen -W '{commands} {topics} --man' -- "$cur")); return ;;
    completion) COMPREPLY=($(compgen -W 'bash zsh' -- "$cur")); return ;;
{cases}    *) return ;;
    esac
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$opts" -- "$cur"))
    else
        compopt -o filenames
        COMPREPLY=($(compgen -f -- "$cur"))
    fi
}}
complete -F _paro paro
)",
                       fmt::arg("version", kVersion), fmt::arg("commands", words_of(subcommand_names(app))),
                       fmt::arg("topics", words_of([] {
                                    std::vector<std::string> t;
                                    for (const auto& h : help_topics()) t.push_back(h.name);
                                    return t;
                                }())),
                       fmt::arg("cases", cases));
}

std::string zsh_completion(const CLI::App& app) {
    std::string commands, cases, topics;
    for (const auto& h : help_topics()) topics += std::string(" ") + h.name;
    for (const CLI::App* sub : subcommands(app)) {
        commands += fmt::format("        '{}:{}'\n", sub->get_name(), zsh_text(sub->get_description()));
        if (sub->get_name() == "help" || sub->get_name() == "completion") continue;
        std::string specs;
        for (const CLI::Option* o : sub->get_options()) {
            const std::string text = zsh_text(o->get_description());
            std::string action;
            switch (value_kind(*o)) {
            case ValueKind::words: action = ":value:(" + words_of(choices_of(*o)) + ")"; break;
            case ValueKind::number: action = ":number: "; break;
            case ValueKind::file: action = ":file:_files"; break;
            case ValueKind::none: break;
            }
            if (!o->nonpositional()) {
                specs += "            '*:" + zsh_text(o->get_name(true)) + ":_files' \\\n";
                continue;
            }
            const auto names = spellings(*o);
            if (names.size() == 1)
                specs += "            '" + names[0] + "[" + text + "]" + action + "' \\\n";
            else
                specs += "            '(" + join(names, " ") + ")'{" + join(names, ",") + "}'[" + text + "]" + action +
                         "' \\\n";
        }
        cases += "    " + sub->get_name() + ")\n        _arguments -s \\\n" + specs + "        ;;\n";
    }
    return fmt::format(R"(#compdef paro
# zsh completion for paro {version}; generated by `paro completion zsh` from the command definitions.
_paro() {{
    local -a commands
    commands=(
{commands}    )
    if (( CURRENT == 2 )); then
        _describe -t commands 'paro command' commands
        _arguments '--help[Print help]' '--version[Print the version]'
        return
    fi
    local sub=$words[2]
    shift words
    (( CURRENT-- ))
    case $sub in
    help) _alternatives 'commands:command:(${{commands%%:*}})' 'topics:topic:({topics})' ;;
    completion) _values shell bash zsh ;;
{cases}    esac
}}
if [[ $zsh_eval_context[-1] == loadautofunc ]]; then
    _paro "$@"
else
    compdef _paro paro
fi
)",
                       fmt::arg("version", kVersion), fmt::arg("commands", commands), fmt::arg("topics", topics),
                       fmt::arg("cases", cases));
}

void add_help(CLI::App& app, Runner& run, const GlobalOptions&) {
    auto topic = std::make_shared<std::string>();
    auto man = std::make_shared<bool>(false);
    auto* sub = app.add_subcommand("help", "Help on a command or a topic (exit-status, environment, files); --man: the man page");
    sub->add_option("topic", *topic, "a command or a topic");
    sub->add_flag("--man", *man, "print the man page (troff) built from the command definitions");
    sub->callback([&app, topic, man, &run] {
        run = [&app, topic, man] {
            if (*man) {
                std::fputs(man_page(app).c_str(), stdout);
                return 0;
            }
            if (topic->empty()) {
                // app.help() would describe the subcommand parsed (this one)
                std::fputs(app.get_formatter()->make_help(&app, app.get_name(), CLI::AppFormatMode::Normal).c_str(),
                           stdout);
                std::string names;
                for (const auto& t : help_topics()) names += std::string(names.empty() ? "" : ", ") + t.name;
                std::printf("\nTopics: %s (paro help TOPIC); paro help COMMAND: that command's options.\n", names.c_str());
                return 0;
            }
            for (const CLI::App* s : subcommands(app))
                if (s->get_name() == *topic) {
                    std::fputs(s->help(app.get_name()).c_str(), stdout);
                    return 0;
                }
            std::vector<std::string> names = subcommand_names(app);
            for (const auto& t : help_topics()) {
                names.push_back(t.name);
                if (*topic == t.name) {
                    std::printf("%s\n\n%s\n", t.title, t.text);
                    return 0;
                }
            }
            throw InputError("", "paro help", "no command or topic '" + *topic + "'" + suggestion(names, *topic) +
                                                  "; paro help lists them");
        };
    });
}

void add_completion(CLI::App& app, Runner& run, const GlobalOptions&) {
    auto shell = std::make_shared<std::string>();
    auto* sub = app.add_subcommand("completion", "Print the shell completion script for bash or zsh");
    sub->add_option("shell", *shell, "bash or zsh")->required()->check(CLI::IsMember({"bash", "zsh"}));
    sub->callback([&app, shell, &run] {
        run = [&app, shell] {
            std::fputs((*shell == "bash" ? bash_completion(app) : zsh_completion(app)).c_str(), stdout);
            return 0;
        };
    });
}

}  // namespace paro::cli
