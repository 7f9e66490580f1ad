// Context-aware shell escaping and vik's prompt command expansion, both driven by the
// literal/substituted marks on rendered segments.
#include "template/template.hpp"

namespace vik::tmpl {

namespace {

bool safe_bare(const std::string &v) {
    if (v.empty()) return false;
    for (char c : v) {
        bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '/' || c == '-' || c == ':' ||
                  c == '@' || c == '%' || c == '+' || c == ',' || c == '=';
        if (!ok) return false;
    }
    return true;
}

// Tracks the quoting state of shell text as literal characters go by.
struct QuoteState {
    ShellContext ctx = ShellContext::bare;
    bool escaped = false; // the previous literal char was a backslash (outside single quotes)

    void feed(char c) {
        if (escaped) {
            escaped = false;
            return;
        }
        switch (ctx) {
        case ShellContext::bare:
            if (c == '\\') escaped = true;
            else if (c == '\'') ctx = ShellContext::single_quoted;
            else if (c == '"') ctx = ShellContext::double_quoted;
            break;
        case ShellContext::single_quoted:
            if (c == '\'') ctx = ShellContext::bare;
            break;
        case ShellContext::double_quoted:
            if (c == '\\') escaped = true;
            else if (c == '"') ctx = ShellContext::bare;
            break;
        }
    }
};

} // namespace

std::string shell_escape(const std::string &value, ShellContext context) {
    std::string out;
    switch (context) {
    case ShellContext::bare:
        if (safe_bare(value)) return value;
        out = "'";
        for (char c : value) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
        return out + "'";
    case ShellContext::single_quoted:
        // Close the quote, add an escaped quote, reopen: the value can never end the quoting.
        for (char c : value) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
        return out;
    case ShellContext::double_quoted:
        for (char c : value) {
            if (c == '"' || c == '\\' || c == '$' || c == '`') out += '\\';
            out += c;
        }
        return out;
    }
    return out;
}

std::string to_shell(const Segments &segments) {
    std::string out;
    QuoteState state;
    for (const auto &s : segments) {
        if (s.literal) {
            for (char c : s.text) state.feed(c);
            out += s.text;
        } else {
            // A value right after a literal backslash would have its first char escaped; the
            // escape belongs to the template, so the state simply moves on.
            state.escaped = false;
            out += shell_escape(s.text, state.ctx);
        }
    }
    return out;
}

std::string expand_prompt_commands(const Segments &segments, const CommandRunner &run) {
    // Flatten into text plus a per-byte "came from the template source" flag.
    std::string text;
    std::vector<bool> literal;
    for (const auto &s : segments) {
        text += s.text;
        literal.insert(literal.end(), s.text.size(), s.literal);
    }
    auto literal_at = [&](size_t pos, std::string_view what) {
        if (pos + what.size() > text.size() || text.compare(pos, what.size(), what) != 0) return false;
        for (size_t k = pos; k < pos + what.size(); ++k)
            if (!literal[k]) return false;
        return true;
    };
    std::string out;
    size_t i = 0;
    while (i < text.size()) {
        if (literal_at(i, "`exec(")) {
            size_t cmd_start = i + 6;
            size_t close = std::string::npos;
            for (size_t k = cmd_start; k + 1 < text.size(); ++k)
                if (literal_at(k, ")`")) {
                    close = k;
                    break;
                }
            if (close != std::string::npos) {
                // Rebuild the command as segments so substituted parts are shell-escaped.
                Segments cmd;
                for (size_t k = cmd_start; k < close; ++k) {
                    if (cmd.empty() || cmd.back().literal != literal[k]) cmd.push_back(Segment{"", literal[k]});
                    cmd.back().text += text[k];
                }
                bool bang = !out.empty() && out.back() == '!' && i > 0 && literal[i - 1];
                if (bang) out.pop_back();
                std::string result = run(to_shell(cmd));
                if (!result.empty() && result.back() == '\n') result.pop_back();
                out += result;
                i = close + 2;
                continue;
            }
        }
        out += text[i++];
    }
    return out;
}

} // namespace vik::tmpl
