#include "util/json_text.hpp"

#include <boost/json.hpp>
#include <vik/event_text.hpp>

#include <string_view>

namespace vik::util {

namespace {

// serde_json escapes as the SDK's writer does ('"', '\\', control bytes; UTF-8 as it is).
void escape_into(std::string &out, std::string_view text) { vik::sdk::append_json_string(out, text); }

// serde_json's two writers: indent < 0 is compact, otherwise pretty at that depth.
void write_json(std::string &out, const boost::json::value &v, int indent) {
    auto newline = [&](int depth) {
        out += '\n';
        out.append(static_cast<size_t>(depth) * 2, ' ');
    };
    switch (v.kind()) {
    case boost::json::kind::object: {
        const auto &o = v.get_object();
        if (o.empty()) {
            out += "{}";
            return;
        }
        out += '{';
        bool first = true;
        for (const auto &kv : o) {
            if (!first) out += ',';
            first = false;
            if (indent >= 0) newline(indent + 1);
            escape_into(out, std::string_view(kv.key().data(), kv.key().size()));
            out += indent >= 0 ? ": " : ":";
            write_json(out, kv.value(), indent >= 0 ? indent + 1 : -1);
        }
        if (indent >= 0) newline(indent);
        out += '}';
        return;
    }
    case boost::json::kind::array: {
        const auto &a = v.get_array();
        if (a.empty()) {
            out += "[]";
            return;
        }
        out += '[';
        bool first = true;
        for (const auto &item : a) {
            if (!first) out += ',';
            first = false;
            if (indent >= 0) newline(indent + 1);
            write_json(out, item, indent >= 0 ? indent + 1 : -1);
        }
        if (indent >= 0) newline(indent);
        out += ']';
        return;
    }
    case boost::json::kind::string:
        escape_into(out, std::string_view(v.get_string().data(), v.get_string().size()));
        return;
    default:
        out += boost::json::serialize(v);
        return;
    }
}

} // namespace

std::string json_compact(const boost::json::value &v) {
    std::string out;
    write_json(out, v, -1);
    return out;
}

std::string json_pretty(const boost::json::value &v) {
    std::string out;
    write_json(out, v, 0);
    return out;
}

} // namespace vik::util
