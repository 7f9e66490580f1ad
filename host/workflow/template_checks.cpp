#include "workflow/template_checks.hpp"

#include "template/template.hpp"
#include "workflow/yaml_guard.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string_view>

namespace vik::workflow {

namespace fs = std::filesystem;

namespace {

struct Where {
    int line = 0, col = 0;
    std::string what;
};

// The engine's errors read "<name>:<line>:<col>: <what>"; the name here is the pointer.
Where split(const std::string &error, const std::string &name) {
    Where w{0, 0, error};
    if (error.rfind(name + ":", 0) != 0) return w;
    std::string rest = error.substr(name.size() + 1);
    int line = 0, col = 0, used = 0;
    if (std::sscanf(rest.c_str(), "%d:%d: %n", &line, &col, &used) == 2 && used > 0)
        return {line, col, rest.substr(static_cast<size_t>(used))};
    return w;
}

// The template engine parses by recursion, one level per bracket and per open block; a few
// thousand levels overflow the stack and kill the process (measured: ~2,000 nested parentheses in
// a debug build). Until the engine bounds its own depth, templates nested deeper than this are
// refused here, before they are compiled. Real prompts nest a handful of levels.
constexpr size_t kMaxTemplateNesting = 256;

bool starts_word(std::string_view s, std::string_view word) {
    return s.substr(0, word.size()) == word &&
           (s.size() == word.size() || !std::isalnum(static_cast<unsigned char>(s[word.size()])));
}

// The deepest nesting of brackets inside tags and of `if`/`for` blocks, from a scan of the tags
// (an upper bound is all this needs).
size_t nesting_depth(const std::string &s) {
    size_t blocks = 0, deepest = 0;
    size_t i = 0;
    while (i + 1 < s.size()) {
        if (s[i] != '{' || (s[i + 1] != '{' && s[i + 1] != '%')) {
            ++i;
            continue;
        }
        bool statement = s[i + 1] == '%';
        size_t end = s.find(statement ? "%}" : "}}", i + 2);
        if (end == std::string::npos) end = s.size();
        size_t depth = 0;
        for (size_t j = i + 2; j < end; ++j) {
            char ch = s[j];
            if (ch == '(' || ch == '[' || ch == '{')
                deepest = std::max(deepest, ++depth);
            else if ((ch == ')' || ch == ']' || ch == '}') && depth > 0)
                --depth;
        }
        if (statement) {
            std::string_view body(s.data() + i + 2, end - i - 2);
            size_t k = body.find_first_not_of("-+ \t\r\n");
            body = k == std::string_view::npos ? std::string_view() : body.substr(k);
            if (starts_word(body, "if") || starts_word(body, "for"))
                deepest = std::max(deepest, ++blocks);
            else if ((starts_word(body, "endif") || starts_word(body, "endfor")) && blocks > 0)
                --blocks;
        }
        i = end + 2;
    }
    return deepest;
}

// Compiles `source`; on a syntax error adds the diagnostic. `file` and `origin` place the
// template: for a prompt file its own path (line 1 = the file's first line); for a value inside
// workflow.yml the workflow path and where the value starts there.
void compile(const std::string &pointer, const std::string &source, const fs::path &file, std::optional<SourcePos> origin,
             Diagnostics &d) {
    if (nesting_depth(source) > kMaxTemplateNesting) {
        std::string at = file.string() +
                         (origin && origin->line ? ":" + std::to_string(origin->line) + ":" + std::to_string(origin->col) : "");
        d.invalid_template(pointer, at,
                           "nesting deeper than " + std::to_string(kMaxTemplateNesting) + " levels (brackets or if/for blocks)");
        return;
    }
    try {
        tmpl::Template t(source, pointer);
    } catch (const tmpl::TemplateError &e) {
        Where w = split(e.what(), pointer);
        std::string at;
        if (!origin)
            at = file.string() + (w.line ? ":" + std::to_string(w.line) + ":" + std::to_string(w.col) : "");
        else
            at = file.string() + (origin->line ? ":" + std::to_string(origin->line) + ":" + std::to_string(origin->col) : "") +
                 (w.line ? " (line " + std::to_string(w.line) + ", column " + std::to_string(w.col) + " of the template)" : "");
        d.invalid_template(pointer, at, w.what);
    }
}

} // namespace

void check_templates(const Config &c, Diagnostics &d) {
    auto inline_template = [&](const std::string &pointer, const std::optional<std::string> &source) {
        if (!source) return;
        auto it = c.template_positions.find(pointer);
        compile(pointer, *source, c.workflow_path, it == c.template_positions.end() ? SourcePos{} : it->second, d);
    };
    inline_template("issues.pull.command", c.pull_command);
    inline_template("issue.hooks.after_create", c.after_create);
    inline_template("issue.hooks.before_remove", c.before_remove);
    for (const auto &s : c.stages) {
        std::string p = "issue.stages." + s.name;
        inline_template(p + ".prompt", s.prompt);
        inline_template(p + ".hooks.before_run", s.before_run);
        inline_template(p + ".hooks.after_run", s.after_run);
        if (!s.prompt_file) continue;
        std::ifstream in(*s.prompt_file, std::ios::binary);
        if (!in) {
            d.unreadable_prompt_file(p + ".prompt_file", s.prompt_file->string(), std::strerror(errno));
            continue;
        }
        // The same bound as workflow.yml itself: a prompt is text for a model, not a data set.
        const size_t max_bytes = YamlLimits{}.max_file_bytes;
        std::string text(max_bytes + 1, '\0');
        in.read(text.data(), static_cast<std::streamsize>(text.size()));
        text.resize(static_cast<size_t>(in.gcount()));
        if (text.size() > max_bytes) {
            d.unreadable_prompt_file(p + ".prompt_file", s.prompt_file->string(),
                                     "larger than " + std::to_string(max_bytes / (1024 * 1024)) + " MiB");
            continue;
        }
        compile(p + ".prompt_file", text, *s.prompt_file, std::nullopt, d);
    }
}

} // namespace vik::workflow
