#pragma once
// The library names a bad parameter as its API spells it (ParameterError: "density", "path");
// the command-line flags belong to the CLI. Each subcommand lists which of its options sets which
// library parameter and runs through with_option_names, so the user reads "option --density: ...".
#include <string>
#include <utility>
#include <vector>

#include "commands.hpp"

namespace CLI {
class Validator;
}

namespace paro::cli {

using OptionNames = std::vector<std::pair<std::string, std::string>>;  // {library parameter, option}

// body, with a ParameterError for a listed parameter rethrown as InputError(file, "option FLAG",
// message). Unlisted parameters pass through unchanged.
Runner with_option_names(OptionNames names, Runner body);

// A number option's range, lo <= x <= hi, that also refuses NaN (CLI::Range and
// CLI::NonNegativeNumber let it through: it compares false with both bounds).
CLI::Validator number_in(double lo, double hi);

}  // namespace paro::cli
