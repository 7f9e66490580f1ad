// Shell text from rendered segments (every value escaped for its exact context by the shell
// lexer, or refused) and vik's prompt command expansion, both driven by the literal/substituted
// marks on rendered segments.
#include "template/shell_lexer.hpp"
#include "template/template.hpp"

namespace vik::tmpl {

std::string to_shell(const Segments &segments, const std::string &name) {
    shell::Lexer lexer(name);
    std::string out;
    for (const auto &s : segments) {
        if (s.literal) {
            lexer.literal(s.text);
            out += s.text;
        } else {
            out += shell::escape(s.text, lexer.value(s.line, s.col), name, s.line, s.col);
        }
    }
    lexer.finish();
    return out;
}

std::optional<std::string> shell_refusal(const Template &shell_template) {
    try {
        to_shell(shell_template.sketch(), shell_template.name());
    } catch (const ShellContextError &e) {
        return std::string(e.what());
    }
    return std::nullopt;
}

std::string expand_prompt_commands(const Segments &segments, const CommandRunner &run, const std::string &name) {
    // Flatten into text plus, per byte, the segment it came from (literal or not, and where).
    std::string text;
    std::vector<size_t> origin;
    for (size_t k = 0; k < segments.size(); ++k) {
        text += segments[k].text;
        origin.insert(origin.end(), segments[k].text.size(), k);
    }
    auto literal = [&](size_t pos) { return segments[origin[pos]].literal; };
    auto literal_at = [&](size_t pos, std::string_view what) {
        if (pos + what.size() > text.size() || text.compare(pos, what.size(), what) != 0) return false;
        for (size_t k = pos; k < pos + what.size(); ++k)
            if (!literal(k)) return false;
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
                // Rebuild the command as segments so substituted parts are escaped by to_shell.
                Segments cmd;
                size_t last = SIZE_MAX;
                for (size_t k = cmd_start; k < close; ++k) {
                    if (origin[k] != last) {
                        const Segment &from = segments[origin[k]];
                        cmd.push_back(Segment{"", from.literal, from.line, from.col});
                        last = origin[k];
                    }
                    cmd.back().text += text[k];
                }
                bool bang = !out.empty() && out.back() == '!' && i > 0 && literal(i - 1);
                if (bang) out.pop_back();
                std::string result = run(to_shell(cmd, name));
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
