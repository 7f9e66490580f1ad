#pragma once
// What the codex and claude line-mapper targets share: replay an input as a CLI's stdout, one
// line at a time through one mapper (the mappers keep state across lines), and check every event.
//
// The contract checked: each event is a JSON object with a string "kind" (the session recorder
// drops anything else as "invalid"), as long as the CLI printed UTF-8 (both CLIs do); the
// announced outcome is none, completed or failed. An input that does not end with a newline has
// its last line passed as truncated, as the process service does for a line cut at its cap.
#include <vik/plugin.h>

#include <boost/json.hpp>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace vik::fuzz {

// Strict UTF-8 (no overlongs, no surrogates), the rule boost::json::parse applies.
inline bool valid_utf8(std::string_view s) {
    size_t i = 0;
    while (i < s.size()) {
        auto c = static_cast<unsigned char>(s[i]);
        size_t n;
        uint32_t cp;
        if (c < 0x80) {
            ++i;
            continue;
        }
        if ((c & 0xE0) == 0xC0) {
            n = 1;
            cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            n = 2;
            cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            n = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (i + n >= s.size()) return false;
        for (size_t k = 1; k <= n; ++k) {
            auto d = static_cast<unsigned char>(s[i + k]);
            if ((d & 0xC0) != 0x80) return false;
            cp = (cp << 6) | (d & 0x3F);
        }
        if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += n + 1;
    }
    return true;
}

template <class Mapper> int replay_and_check(const uint8_t *data, size_t size) {
    std::string_view text(reinterpret_cast<const char *>(data), size);
    Mapper mapper;
    size_t start = 0;
    while (start < text.size()) {
        size_t nl = text.find('\n', start);
        bool truncated = nl == std::string_view::npos;
        std::string_view line = text.substr(start, truncated ? std::string_view::npos : nl - start);
        for (const auto &e : mapper.map(line, truncated)) {
            if (!valid_utf8(line)) continue; // a CLI prints UTF-8; other bytes may come out as they went in
            boost::system::error_code ec;
            boost::json::value v = boost::json::parse(e, ec);
            if (ec || !v.is_object() || !v.get_object().contains("kind") || !v.get_object().at("kind").is_string()) {
                std::fprintf(stderr, "event is not a JSON object with a string \"kind\" (%s)\nline: %.*s\nevent: %s\n",
                             ec ? ec.message().c_str() : "bad shape", static_cast<int>(line.size()), line.data(), e.c_str());
                std::abort();
            }
        }
        if (truncated) break;
        start = nl + 1;
    }
    if (mapper.terminal != -1 && mapper.terminal != VIK_SESSION_COMPLETED && mapper.terminal != VIK_SESSION_FAILED) {
        std::fprintf(stderr, "terminal outcome %d is none of -1, completed, failed\n", mapper.terminal);
        std::abort();
    }
    return 0;
}

} // namespace vik::fuzz
