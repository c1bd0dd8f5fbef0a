#pragma once
// CRC-32 (zlib's: the gzip polynomial and conditioning) of a buffer. Calibration checksums every
// value it reads (the pattern's source_checksum), about 9 MB of floats per head at the CogVideoX
// shape: zlib 1.2's table-driven CRC (~2 GB/s on one core) was a third of decoding a dump.
// libdeflate's (carry-less multiplication) is several times faster and gives the same values; paro
// uses it where it was built with it (libdeflate-dev), else zlib's.
#include <cstddef>
#include <cstdint>

namespace paro {

// The CRC-32 of `bytes` bytes at `data`, continuing `crc` (0 for a new one).
uint32_t crc32_update(uint32_t crc, const void* data, size_t bytes);

}  // namespace paro
