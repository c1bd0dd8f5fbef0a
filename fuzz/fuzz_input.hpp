#pragma once
// What the libFuzzer harnesses share: the input bytes as a file (paro's readers take paths, and
// HDF5 reads files), and the rule that bad input may only surface as paro's own exceptions.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <string>

namespace paro::fuzz {

// Each input goes to a new file in /dev/shm (or /tmp), the previous one removed. A new inode per
// input: paro remembers its child-process walk of a file by identity (device, inode, size, times),
// and a rewrite of one path within the clock's tick could otherwise pass for the walked file.
inline const std::string& write_input(const uint8_t* data, size_t size) {
    static const std::string dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    static unsigned long count = 0;
    static std::string path;
    if (!path.empty()) unlink(path.c_str());
    path = dir + "/paro_fuzz_" + std::to_string(getpid()) + "_" + std::to_string(count++) + ".h5";
    if (std::FILE* f = std::fopen(path.c_str(), "wb")) {
        std::fwrite(data, 1, size, f);
        std::fclose(f);
    }
    return path;
}

}  // namespace paro::fuzz
