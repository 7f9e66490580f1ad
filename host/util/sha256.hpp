#pragma once
// SHA-256 (FIPS 180-4), for the few places the host needs a stable digest of a short text (the
// hash part of a workspace key). Written here rather than taken from libcrypto: linking libcrypto
// for this alone mapped 1.4 MiB of library into every host (docs/performance.md); the TLS client
// that does need OpenSSL is loaded only when a workflow has webhooks.
//
// Threading: pure functions.

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace vik::util {

std::array<uint8_t, 32> sha256(std::string_view data);

// The digest in lower-case hex, cut to its first `hex_chars` characters (at most 64).
std::string sha256_hex(std::string_view data, size_t hex_chars = 64);

} // namespace vik::util
