#include "option_names.hpp"

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cmath>
#include <limits>

#include "paro/error.hpp"

namespace paro::cli {

Runner with_option_names(OptionNames names, Runner body) {
    return [names = std::move(names), body = std::move(body)] {
        try {
            return body();
        } catch (const ParameterError& e) {
            for (const auto& [parameter, option] : names)
                if (e.parameter() == parameter) throw InputError(e.file(), "option " + option, e.message());
            throw;
        }
    };
}

CLI::Validator number_in(double lo, double hi) {
    const auto bound = [](double b) { return std::isinf(b) ? std::string(b > 0 ? "inf" : "-inf") : fmt::format("{:g}", b); };
    return CLI::Validator(
        [lo, hi, bound](std::string& text) -> std::string {
            double x = 0;
            if (!CLI::detail::lexical_cast(text, x)) return "'" + text + "' is not a number";
            if (!(x >= lo && x <= hi)) return fmt::format("{} is not in [{}, {}]", text, bound(lo), bound(hi));
            return {};
        },
        fmt::format("NUMBER in [{}, {}]", bound(lo), bound(hi)));
}

}  // namespace paro::cli
