#include "paro/checksum.hpp"

#ifdef PARO_HAVE_LIBDEFLATE
#include <libdeflate.h>
#else
#include <zlib.h>
#endif

namespace paro {

uint32_t crc32_update(uint32_t crc, const void* data, size_t bytes) {
#ifdef PARO_HAVE_LIBDEFLATE
    return libdeflate_crc32(crc, data, bytes);
#else
    return static_cast<uint32_t>(crc32_z(crc, static_cast<const Bytef*>(data), bytes));
#endif
}

}  // namespace paro
