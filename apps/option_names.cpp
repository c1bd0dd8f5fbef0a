#include "option_names.hpp"

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

}  // namespace paro::cli
