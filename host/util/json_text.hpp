#pragma once
// JSON text as vik's serde_json writes it: `compact` like serde_json::to_string (no spaces),
// `pretty` like serde_json::to_string_pretty (two-space indent, `"key": value`, `[]`/`{}` when
// empty, no trailing newline). Strings escape `"`, `\\`, \b \f \n \r \t and other controls as
// \u00xx; everything else is written as is. Used for logs, `doctor --json` and state.json.

#include <boost/json/value.hpp>

#include <string>

namespace vik::util {

std::string json_compact(const boost::json::value &v);
std::string json_pretty(const boost::json::value &v);

} // namespace vik::util
