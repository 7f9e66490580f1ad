#include "util/untrusted_text.hpp"

#include <boost/json.hpp>

#include <cstdio>

namespace vik::util {

namespace json = boost::json;

namespace {

// Length of the well-formed UTF-8 sequence at text[i] (RFC 3629 table), 0 when it is not one.
size_t sequence_length(std::string_view t, size_t i, char32_t &cp) {
    auto b = [&](size_t k) { return static_cast<unsigned char>(t[k]); };
    unsigned char c = b(i);
    size_t n = t.size() - i;
    auto cont = [&](size_t k) { return k < t.size() && (b(k) & 0xC0) == 0x80; };
    if (c < 0x80) {
        cp = c;
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF && n >= 2 && cont(i + 1)) {
        cp = (c & 0x1Fu) << 6 | (b(i + 1) & 0x3Fu);
        return 2;
    }
    if (c >= 0xE0 && c <= 0xEF && n >= 3 && cont(i + 1) && cont(i + 2)) {
        unsigned char c1 = b(i + 1);
        if ((c == 0xE0 && c1 < 0xA0) || (c == 0xED && c1 > 0x9F)) return 0; // overlong, surrogate
        cp = (c & 0x0Fu) << 12 | (c1 & 0x3Fu) << 6 | (b(i + 2) & 0x3Fu);
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4 && n >= 4 && cont(i + 1) && cont(i + 2) && cont(i + 3)) {
        unsigned char c1 = b(i + 1);
        if ((c == 0xF0 && c1 < 0x90) || (c == 0xF4 && c1 > 0x8F)) return 0; // overlong, > U+10FFFF
        cp = (c & 0x07u) << 18 | (c1 & 0x3Fu) << 12 | (b(i + 2) & 0x3Fu) << 6 | (b(i + 3) & 0x3Fu);
        return 4;
    }
    return 0;
}

bool escaped_in_terminal(char32_t cp) {
    return (cp < 0x20 && cp != '\t') || (cp >= 0x7F && cp <= 0x9F) || cp == 0x061C || cp == 0x200E || cp == 0x200F ||
           (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069);
}

} // namespace

bool is_valid_utf8(std::string_view t) {
    char32_t cp;
    for (size_t i = 0; i < t.size();) {
        size_t n = sequence_length(t, i, cp);
        if (n == 0) return false;
        i += n;
    }
    return true;
}

std::string to_valid_utf8(std::string_view t) {
    if (is_valid_utf8(t)) return std::string(t);
    std::string out;
    out.reserve(t.size() + 16);
    char32_t cp;
    for (size_t i = 0; i < t.size();) {
        size_t n = sequence_length(t, i, cp);
        if (n == 0) {
            out += "\xEF\xBF\xBD";
            ++i;
        } else {
            out.append(t.substr(i, n));
            i += n;
        }
    }
    return out;
}

bool make_valid_utf8(json::value &v) {
    bool changed = false;
    switch (v.kind()) {
    case json::kind::string:
        if (!is_valid_utf8(v.get_string())) {
            v = json::string(to_valid_utf8(v.get_string()));
            changed = true;
        }
        break;
    case json::kind::array:
        for (auto &x : v.get_array())
            changed = make_valid_utf8(x) || changed;
        break;
    case json::kind::object: {
        auto &o = v.get_object();
        bool bad_key = false;
        for (auto &kv : o) {
            changed = make_valid_utf8(kv.value()) || changed;
            bad_key = bad_key || !is_valid_utf8(kv.key());
        }
        if (bad_key) {
            json::object fixed;
            for (auto &kv : o)
                fixed[to_valid_utf8(kv.key())] = std::move(kv.value());
            v = std::move(fixed);
            changed = true;
        }
        break;
    }
    default:
        break;
    }
    return changed;
}

std::string escape_for_terminal(std::string_view t) {
    std::string out;
    out.reserve(t.size());
    char32_t cp;
    char buf[16];
    for (size_t i = 0; i < t.size();) {
        size_t n = sequence_length(t, i, cp);
        if (n == 0) {
            std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned char>(t[i]));
            out += buf;
            ++i;
            continue;
        }
        if (!escaped_in_terminal(cp))
            out.append(t.substr(i, n));
        else if (cp == '\n')
            out += "\\n";
        else if (cp == '\r')
            out += "\\r";
        else {
            std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(cp));
            out += buf;
        }
        i += n;
    }
    return out;
}

} // namespace vik::util
