#pragma once
// Request targets taken apart. Path segments are split before they are decoded, so an issue id
// holding '/' (sent as %2F) stays one segment: ids are opaque data, never part of the route.

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vik::http {

// RFC 3986 percent-decoding. nullopt for a malformed escape ('%' not followed by two hex digits)
// or a decoded NUL, which no issue id or query value may hold. `plus_is_space` for query strings.
std::optional<std::string> percent_decode(std::string_view text, bool plus_is_space = false);

// RFC 3986 percent-encoding of everything but unreserved characters (for links and tests).
std::string percent_encode(std::string_view text);

struct Target {
    std::vector<std::string> segments;        // decoded; "/a//b/" -> {"a", "", "b", ""}
    std::map<std::string, std::string> query; // decoded; the first of repeated keys wins
    std::string path;                         // the raw path (before '?')
};

// nullopt when the target is not origin-form ("/...") or holds a malformed escape.
std::optional<Target> parse_target(std::string_view target);

} // namespace vik::http
