#pragma once
// Error vocabulary of paro.
//  - InputError: the user's input is bad (file, dataset, attribute). Becomes exit status 2 with one
//    line "paro: FILE: WHERE: message" at the top of the `paro` command.
//  - ParameterError: an InputError whose `where` is a parameter of a library call, named as the
//    library's API spells it (a field of an options struct or an argument: "density", "slots"),
//    never as a command-line flag: the library is also called from C and Python. The `paro`
//    command maps these names to its own options (apps/option_names.hpp).
//  - NoDeviceError: the work needs a CUDA GPU and this machine (or this build) has none usable.
//    Not bad input: exit status 3, so scripts can tell "no GPU here" from a broken file.
//  - PARO_ASSERT: a broken internal invariant (a bug in paro, not in the input).
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>

namespace paro {

// Text from other people's files made safe for a terminal: control bytes (an escape sequence that
// clears the screen, a newline that forges a line) become '?'.
inline std::string printable(std::string s) {
    for (char& c : s)
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
    return s;
}

class InputError : public std::runtime_error {
public:
    // file: the path at fault (may be empty for options); where: dataset, attribute or option.
    InputError(std::string file, std::string where, std::string message)
        : std::runtime_error(compose(file, where, message)),
          file_(std::move(file)), where_(std::move(where)), message_(std::move(message)) {}

    const std::string& file() const { return file_; }
    const std::string& where() const { return where_; }
    const std::string& message() const { return message_; }  // without file and where

private:
    // One line of bounded length whatever the input echoed into it (attribute values, names).
    static std::string compose(const std::string& file, const std::string& where,
                               const std::string& message) {
        std::string s;
        if (!file.empty()) s += file + ": ";
        if (!where.empty()) s += where + ": ";
        s += message;
        constexpr size_t kMaxLine = 1000;
        if (s.size() > kMaxLine)
            s = s.substr(0, kMaxLine) + "... (" + std::to_string(s.size() - kMaxLine) + " more bytes)";
        return printable(std::move(s));
    }
    std::string file_, where_, message_;
};

class ParameterError : public InputError {
public:
    // file: the input the value does not fit, when there is one (a dump too short for "slots").
    ParameterError(std::string parameter, std::string message, std::string file = "")
        : InputError(std::move(file), std::move(parameter), std::move(message)) {}
    const std::string& parameter() const { return where(); }
};

// An InputError for metadata the HDF5 library cannot read reliably (it crashed, looped or read past
// a corrupt message): the file as a whole is unreadable, so `paro check` refuses it (exit 2) rather
// than listing it as a rule the file breaks.
class CorruptMetadataError : public InputError {
public:
    using InputError::InputError;
};

class NoDeviceError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

[[noreturn]] inline void assertion_failed(const char* expr, const char* file, int line) {
    std::fprintf(stderr, "paro: internal error: assertion '%s' failed at %s:%d\n", expr, file, line);
    std::abort();
}

}  // namespace paro

#define PARO_ASSERT(expr) \
    ((expr) ? (void)0 : ::paro::assertion_failed(#expr, __FILE__, __LINE__))
