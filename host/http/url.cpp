#include "http/url.hpp"

namespace vik::http {

namespace {

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

} // namespace

std::optional<std::string> percent_decode(std::string_view text, bool plus_is_space) {
    std::string out;
    out.reserve(text.size());
    for (size_t i = 0; i < text.size(); ++i) {
        char c = text[i];
        if (c == '%') {
            if (i + 2 >= text.size()) return std::nullopt;
            int hi = hex_value(text[i + 1]), lo = hex_value(text[i + 2]);
            if (hi < 0 || lo < 0) return std::nullopt;
            c = static_cast<char>(hi * 16 + lo);
            i += 2;
        } else if (c == '+' && plus_is_space) {
            c = ' ';
        }
        if (c == '\0') return std::nullopt;
        out.push_back(c);
    }
    return out;
}

std::string percent_encode(std::string_view text) {
    static const char *digits = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : text) {
        bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
                          c == '_' || c == '~';
        if (unreserved) {
            out.push_back(static_cast<char>(c));
        } else {
            out.push_back('%');
            out.push_back(digits[c >> 4]);
            out.push_back(digits[c & 15]);
        }
    }
    return out;
}

std::optional<Target> parse_target(std::string_view target) {
    if (target.empty() || target.front() != '/') return std::nullopt;
    Target t;
    size_t q = target.find('?');
    std::string_view path = target.substr(0, q);
    if (size_t h = path.find('#'); h != std::string_view::npos) path = path.substr(0, h);
    t.path = std::string(path);
    size_t pos = 1;
    while (true) {
        size_t slash = path.find('/', pos);
        auto seg = percent_decode(path.substr(pos, slash == std::string_view::npos ? std::string_view::npos : slash - pos));
        if (!seg) return std::nullopt;
        t.segments.push_back(std::move(*seg));
        if (slash == std::string_view::npos) break;
        pos = slash + 1;
    }
    if (q != std::string_view::npos) {
        std::string_view query = target.substr(q + 1);
        if (size_t h = query.find('#'); h != std::string_view::npos) query = query.substr(0, h);
        size_t p = 0;
        while (p <= query.size()) {
            size_t amp = query.find('&', p);
            std::string_view pair = query.substr(p, amp == std::string_view::npos ? std::string_view::npos : amp - p);
            if (!pair.empty()) {
                size_t eq = pair.find('=');
                auto key = percent_decode(pair.substr(0, eq), true);
                auto value = percent_decode(eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1), true);
                if (!key || !value) return std::nullopt;
                t.query.emplace(std::move(*key), std::move(*value));
            }
            if (amp == std::string_view::npos) break;
            p = amp + 1;
        }
    }
    return t;
}

} // namespace vik::http
