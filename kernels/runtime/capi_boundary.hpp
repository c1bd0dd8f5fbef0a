#pragma once
// The C API boundary of paro's shared libraries (libparo_runtime.so, libparo_stats.so): each
// library keeps its own per-thread last error, and exceptions become status codes here alone.
#include <exception>
#include <new>
#include <stdexcept>
#include <string>

#include "paro/error.hpp"
#include "paro_runtime.h"

namespace paro::capi {

// An exception that says which status it becomes at the boundary.
class StatusError : public std::runtime_error {
public:
    StatusError(paro_status s, const std::string& what) : std::runtime_error(what), status_(s) {}
    paro_status status() const { return status_; }

private:
    paro_status status_;
};

inline paro_status fail(std::string& last_error, paro_status s, const std::string& message) {
    last_error = message;
    return s;
}

// Runs f (which returns a paro_status) and turns what it throws into a status and a message:
// StatusError into its own status, InputError into on_input_error, bad_alloc into
// PARO_ERROR_OUT_OF_MEMORY, any other exception into on_other.
template <typename F>
paro_status guarded(std::string& last_error, paro_status on_input_error, paro_status on_other, F&& f) {
    try {
        return f();
    } catch (const std::bad_alloc&) {
        return fail(last_error, PARO_ERROR_OUT_OF_MEMORY, "out of host memory");
    } catch (const StatusError& e) {
        return fail(last_error, e.status(), e.what());
    } catch (const InputError& e) {
        return fail(last_error, on_input_error, e.what());
    } catch (const std::exception& e) {
        return fail(last_error, on_other, e.what());
    }
}

}  // namespace paro::capi
