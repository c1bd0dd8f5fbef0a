#pragma once
// What the libFuzzer harnesses share: the input bytes as a file (paro's readers take paths, and
// HDF5 reads files), and the rule that bad input may only surface as paro's own exceptions.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <string>

namespace paro::fuzz {

// The input written to one file per process in /dev/shm (or TMPDIR), rewritten for each input.
inline const std::string& write_input(const uint8_t* data, size_t size) {
    static const std::string path = [] {
        const char* dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        return std::string(dir) + "/paro_fuzz_" + std::to_string(getpid()) + ".h5";
    }();
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (f) {
        std::fwrite(data, 1, size, f);
        std::fclose(f);
    }
    return path;
}

}  // namespace paro::fuzz
