#pragma once
// Template text with `{{v}}` markers -> Segments: the text between markers literal, each marker a
// substituted value (what Template::render yields for `{{ issue.title }}`), so the shell targets
// drive to_shell directly, without the template language's own syntax in the way.
#include "template/template.hpp"

#include <string>
#include <string_view>

namespace vik::fuzz {

inline constexpr std::string_view kMarker = "{{v}}";

// With no marker the value goes at the end (`echo ` + value), so every input substitutes something.
inline tmpl::Segments make_segments(std::string_view templ, const std::string &value) {
    tmpl::Segments out;
    size_t start = 0, at, line = 1, col = 1;
    bool any = false;
    auto advance = [&](std::string_view text) {
        for (char c : text) {
            if (c == '\n')
                ++line, col = 1;
            else
                ++col;
        }
    };
    while ((at = templ.find(kMarker, start)) != std::string_view::npos) {
        std::string_view lit = templ.substr(start, at - start);
        if (!lit.empty()) out.push_back(tmpl::Segment{std::string(lit), true});
        advance(lit);
        out.push_back(tmpl::Segment{value, false, static_cast<int>(line), static_cast<int>(col)});
        advance(kMarker);
        start = at + kMarker.size();
        any = true;
    }
    std::string_view rest = templ.substr(start);
    if (!rest.empty()) out.push_back(tmpl::Segment{std::string(rest), true});
    advance(rest);
    if (!any) out.push_back(tmpl::Segment{value, false, static_cast<int>(line), static_cast<int>(col)});
    return out;
}

// Shell source cannot hold a NUL byte (argv and the shells' parsers end strings there).
inline bool has_nul(std::string_view s) { return s.find('\0') != std::string_view::npos; }

} // namespace vik::fuzz
