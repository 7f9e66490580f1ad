#pragma once
// Text from outside (agents' output, issue bodies, tracker answers) kept as data wherever the
// host writes it down:
// - JSON files (session JSONL, JSON log lines) must stay valid UTF-8, so invalid bytes become
//   U+FFFD; control characters are escaped by the JSON serializer itself (\u001b).
// - Human log lines (the console) must not carry terminal escapes, forged line breaks or bidi
//   overrides, so controls are written as \n, \r, \u001b, \u202e, ... and invalid bytes as \xNN
//   (kept visible for diagnosis). docs/operations.md describes both.

#include <boost/json/value.hpp>

#include <string>
#include <string_view>

namespace vik::util {

bool is_valid_utf8(std::string_view text);
// Each byte that does not start or continue a well-formed UTF-8 sequence becomes U+FFFD
// (overlong forms, surrogates and code points past U+10FFFF included).
std::string to_valid_utf8(std::string_view text);
// Every string and object key in `v`, however deep, made valid UTF-8. Returns whether anything changed.
bool make_valid_utf8(boost::json::value &v);
// For a human-read line: C0 controls except tab, DEL, C1 controls and the bidi controls
// (U+061C, U+200E/F, U+202A-U+202E, U+2066-U+2069) escaped; invalid bytes as \xNN.
std::string escape_for_terminal(std::string_view text);

} // namespace vik::util
