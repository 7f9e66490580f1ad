#pragma once
// The contract of vik::sdk::FlatJson, checked against boost::json (fuzz/flat_json.cpp,
// tests/sdk/flat_json_test.cpp): giving up on a line is always allowed; a line it accepts is
// valid JSON that boost::json reads as exactly the members it reported.
#include <vik/flat_json.hpp>

#include <boost/json.hpp>

#include <string>
#include <string_view>

namespace vik::fuzz {

// The object of `flat`'s members whose parent is `parent`, as a tree.
inline boost::json::object flat_json_tree(const vik::sdk::FlatJson &flat, int parent) {
    boost::json::object out;
    for (size_t i = 0; i < flat.size(); ++i) {
        const auto &m = flat[i];
        if (m.parent != parent) continue;
        boost::json::string_view key(m.key.data(), m.key.size());
        switch (m.type) {
        case vik::sdk::FlatJson::Type::text:
            out[key] = boost::json::string_view(m.text.data(), m.text.size());
            break;
        case vik::sdk::FlatJson::Type::integer:
            out[key] = m.integer;
            break;
        case vik::sdk::FlatJson::Type::object:
            out[key] = flat_json_tree(flat, static_cast<int>(i));
            break;
        }
    }
    return out;
}

// Empty when `flat` read `line` as boost::json does (or gave up); otherwise what differs.
inline std::string flat_json_disagreement(vik::sdk::FlatJson &flat, std::string_view line) {
    if (!flat.read(line)) return {};
    boost::system::error_code ec;
    boost::json::value tree = boost::json::parse(boost::json::string_view(line.data(), line.size()), ec);
    if (ec) return "accepted a line boost::json refuses (" + ec.message() + ")";
    if (!tree.is_object()) return "accepted a line that is not an object";
    // A raw line break in an accepted line can only be whitespace between tokens: it is reported.
    bool breaks = line.find_first_of("\r\n") != std::string_view::npos;
    if (flat.spans_lines() != breaks)
        return breaks ? "a line break between tokens is not reported" : "a line break is reported that is not there";
    boost::json::value mine = flat_json_tree(flat, -1);
    if (mine != tree) return "read " + boost::json::serialize(mine) + ", boost::json reads " + boost::json::serialize(tree);
    // Every member is found by its path.
    for (size_t i = 0; i < flat.size(); ++i) {
        const auto &m = flat[i];
        std::string path =
            m.parent < 0 ? std::string(m.key) : std::string(flat[static_cast<size_t>(m.parent)].key) + "." + std::string(m.key);
        if (flat.find(path) != &m) return "member '" + path + "' is not found by its path";
    }
    return {};
}

} // namespace vik::fuzz
