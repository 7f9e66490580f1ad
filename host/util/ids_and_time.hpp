#pragma once
// Small shared helpers: UUIDv7 session ids and UTC timestamps.

#include <chrono>
#include <string>

namespace vik::util {

std::string uuid_v7();                                            // time-ordered, RFC 9562
std::string rfc3339_utc(std::chrono::system_clock::time_point t); // 2026-11-23T13:45:01.123Z
inline std::string now_rfc3339() { return rfc3339_utc(std::chrono::system_clock::now()); }
// Seconds since the epoch of an RFC 3339 UTC time ("...Z", fractions kept); -1 when it is not one.
double rfc3339_seconds(const std::string &text);
std::string utc_date(std::chrono::system_clock::time_point t); // 2026-11-23

} // namespace vik::util
