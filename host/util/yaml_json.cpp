#include "util/yaml_json.hpp"

#include <boost/json.hpp>
#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <regex>

namespace vik::util {

namespace json = boost::json;

json::value plain_scalar_to_json(const std::string &s) {
    if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return nullptr;
    if (s == "true" || s == "True" || s == "TRUE") return true;
    if (s == "false" || s == "False" || s == "FALSE") return false;
    // The core schema's patterns, matched whole (so "1e3" is a float and "0x1G" a string).
    static const std::regex decimal("[-+]?[0-9]+"), hex("0x[0-9a-fA-F]+"), octal("0o[0-7]+"),
        floating("[-+]?(\\.[0-9]+|[0-9]+(\\.[0-9]*)?)([eE][-+]?[0-9]+)?"), inf("[-+]?\\.(inf|Inf|INF)"), nan("\\.(nan|NaN|NAN)");
    auto integer = [&](const char *digits, int base) -> json::value {
        errno = 0;
        char *end = nullptr;
        long long v = std::strtoll(digits, &end, base);
        if (errno == ERANGE) return json::string(s); // too large for 64 bits: keep the text
        return static_cast<int64_t>(v);
    };
    if (std::regex_match(s, decimal)) return integer(s.c_str(), 10);
    if (std::regex_match(s, hex)) return integer(s.c_str() + 2, 16);
    if (std::regex_match(s, octal)) return integer(s.c_str() + 2, 8);
    if (std::regex_match(s, floating)) return std::strtod(s.c_str(), nullptr);
    if (std::regex_match(s, inf))
        return s[0] == '-' ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::infinity();
    if (std::regex_match(s, nan)) return std::numeric_limits<double>::quiet_NaN();
    return json::string(s);
}

namespace {

json::value convert(const YAML::Node &n, const KeepString &keep_string, bool keep) {
    switch (n.Type()) {
    case YAML::NodeType::Sequence: {
        json::array a;
        for (const auto &item : n)
            a.push_back(convert(item, keep_string, false));
        return a;
    }
    case YAML::NodeType::Map: {
        json::object o;
        for (const auto &kv : n) {
            std::string key = kv.first.Scalar();
            o[key] = convert(kv.second, keep_string, keep_string && keep_string(key));
        }
        return o;
    }
    case YAML::NodeType::Scalar:
        // yaml-cpp tags quoted scalars "!": they are strings whatever they look like.
        if (n.Tag() == "!" || keep) return json::string(n.Scalar());
        return plain_scalar_to_json(n.Scalar());
    case YAML::NodeType::Null:
        // `id: ~` stays null even for keep-string keys: there is no text to keep.
        return nullptr;
    default:
        return nullptr;
    }
}

} // namespace

json::value yaml_to_json(const YAML::Node &node, const KeepString &keep_string) { return convert(node, keep_string, false); }

} // namespace vik::util
