#pragma once
// YAML to JSON, one set of rules for the whole tree (the workflow loader and the file tracker):
// YAML 1.2's core schema, as vik's serde_yaml reads it. Quoted scalars are strings; plain ones
// are booleans (true, True, TRUE, false, ...), null (null, Null, NULL, ~, empty), integers
// (decimal, 0x hex, 0o octal), floats (also .inf, .nan) by their look, and strings otherwise.

#include <boost/json/value.hpp>

#include <functional>
#include <string>

namespace YAML {
class Node;
}

namespace vik::util {

// `keep_string(key)`: map keys whose plain scalar values stay strings whatever they look like
// (the file tracker's `id: 42` is the id "42"). Map keys are taken as written.
using KeepString = std::function<bool(const std::string &key)>;
boost::json::value yaml_to_json(const YAML::Node &node, const KeepString &keep_string = {});

// One plain scalar by the core schema (exposed for tests).
boost::json::value plain_scalar_to_json(const std::string &text);

} // namespace vik::util
