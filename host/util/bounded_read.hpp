#pragma once
// Reading a file that has a size limit without allocating the limit.

#include <algorithm>
#include <istream>
#include <string>

namespace vik::util {

// At most `max_bytes + 1` bytes of `in` (one more than allowed, so the caller can tell a file
// that is too large), read in 64 KiB steps: memory grows with what the file holds, not with the
// limit (a buffer of the limit, zero-filled, was 4 MiB of the host's peak memory at every start).
inline std::string read_at_most(std::istream &in, size_t max_bytes) {
    std::string text;
    char chunk[64 * 1024];
    while (in && text.size() <= max_bytes) {
        size_t want = std::min(sizeof chunk, max_bytes + 1 - text.size());
        in.read(chunk, static_cast<std::streamsize>(want));
        text.append(chunk, static_cast<size_t>(in.gcount()));
    }
    return text;
}

} // namespace vik::util
