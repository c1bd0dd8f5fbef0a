#pragma once
// Documentation and shell completion drawn from the command definitions: `paro help`, the man page
// and the bash / zsh completion scripts walk the same CLI11 apps and options the parser uses, so
// they cannot drift from the commands. The build generates paro.1, paro.bash and _paro with the
// built paro, and `cmake --install` installs them (cmake/install.cmake).
#include <string>
#include <vector>

namespace CLI {
class App;
class Option;
}  // namespace CLI

namespace paro::cli {

// The type name of an option that takes one of a few words, "{a,b,c}": help shows it, completion
// offers the words. Display only: the command still parses the value (and names it when wrong).
std::string choice_type(const std::vector<std::string>& words);
// The words of an option's "{a,b,c}" (its type name or a CLI::IsMember check), else none.
std::vector<std::string> choices_of(const CLI::Option& opt);

// The names of app's subcommands, in the order they were added.
std::vector<std::string> subcommand_names(const CLI::App& app);
// " (did you mean 'x'?)" when one of `names` is close to `word` (a prefix, or at most two edits
// for words of five or more characters), else "".
std::string suggestion(const std::vector<std::string>& names, const std::string& word);

// A help topic that is not a command: exit-status, environment, files.
struct HelpTopic {
    const char* name;
    const char* title;  // a man page section name
    const char* text;   // paragraphs separated by blank lines; "  x   y" lines are a term and its meaning
};
const std::vector<HelpTopic>& help_topics();

std::string man_page(const CLI::App& app);
std::string bash_completion(const CLI::App& app);
std::string zsh_completion(const CLI::App& app);

}  // namespace paro::cli
