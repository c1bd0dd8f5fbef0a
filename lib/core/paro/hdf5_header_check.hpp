#pragma once
// The bounds check libhdf5 1.10 lacks when it decodes an attribute message. Such a message holds
// the attribute's name, datatype, dataspace and value, and says how long the first three are;
// libhdf5 1.10 trusts those lengths and copies the value from wherever they point, past the end
// of the message if a length is corrupt, with no error: the value read is stray memory, different
// from process to process (newer HDF5 checks; Debian 12 ships 1.10.8). So the walk reads each
// object header's raw bytes itself and refuses a file whose attribute message claims more than it
// holds. It reads compact attribute messages in object headers of version 1 and 2 (what h5py and
// paro write); attributes in dense storage (a fractal heap, for objects with many attributes in
// files written with the latest format) are not covered. It reports only that one defect: any
// other surprise in the raw bytes (an unknown version, a chunk past the end of the file) ends the
// check quietly and is left to libhdf5, so a valid file is never refused here.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

namespace paro::h5 {

struct RawFile {
    // Reads n bytes at HDF5 address addr (relative to the file's base address); false when they
    // are not all there.
    std::function<bool(uint64_t addr, void* out, size_t n)> read;
    unsigned sizeof_addr = 8, sizeof_size = 8;  // the superblock's sizes of offsets and lengths
};

// An attribute message whose name, datatype, dataspace and value do not fit in it.
struct AttributeOverrun {
    std::string name;            // as the message holds it (at most 64 bytes)
    uint64_t holds = 0;          // the message's size
    uint64_t claims = 0;         // where its value would end (~0: past 2^64)
};

// The first such message in the object header at `header`; nullopt when there is none.
std::optional<AttributeOverrun> attribute_message_overrun(const RawFile& file, uint64_t header);

}  // namespace paro::h5
