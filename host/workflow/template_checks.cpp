#include "workflow/template_checks.hpp"

#include "template/template.hpp"
#include "util/bounded_read.hpp"
#include "workflow/yaml_guard.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>

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

// Compiles `source`; on a syntax error adds the diagnostic. `file` and `origin` place the
// template: for a prompt file its own path (line 1 = the file's first line); for a value inside
// workflow.yml the workflow path and where the value starts there.
// Where an engine error points, in the terms of the file the template lives in.
std::string place(const Where &w, const fs::path &file, const std::optional<SourcePos> &origin) {
    if (!origin) return file.string() + (w.line ? ":" + std::to_string(w.line) + ":" + std::to_string(w.col) : "");
    return file.string() + (origin->line ? ":" + std::to_string(origin->line) + ":" + std::to_string(origin->col) : "") +
           (w.line ? " (line " + std::to_string(w.line) + ", column " + std::to_string(w.col) + " of the template)" : "");
}

enum class Kind { text, shell };

// Compiles `source`; on a syntax error adds the diagnostic. A shell template is also lexed as
// shell (tmpl::shell_refusal): a value placed where escaping cannot be certain is an error now,
// not a failed hook for every issue later. `file` and `origin` place the template: for a prompt
// file its own path (line 1 = the file's first line); for a value inside workflow.yml the
// workflow path and where the value starts there. The engine bounds its own nesting depth.
void compile(const std::string &pointer, const std::string &source, const fs::path &file, std::optional<SourcePos> origin,
             Kind kind, Diagnostics &d) {
    try {
        tmpl::Template t(source, pointer);
        if (kind != Kind::shell) return;
        if (auto refusal = tmpl::shell_refusal(t)) {
            Where w = split(*refusal, pointer);
            d.unsafe_shell_template(pointer, place(w, file, origin), w.what);
        }
    } catch (const tmpl::TemplateError &e) {
        Where w = split(e.what(), pointer);
        d.invalid_template(pointer, place(w, file, origin), w.what);
    }
}

} // namespace

void check_templates(const Config &c, Diagnostics &d) {
    auto inline_template = [&](const std::string &pointer, const std::optional<std::string> &source, Kind kind) {
        if (!source) return;
        auto it = c.template_positions.find(pointer);
        compile(pointer, *source, c.workflow_path, it == c.template_positions.end() ? SourcePos{} : it->second, kind, d);
    };
    inline_template("issues.pull.command", c.pull_command, Kind::shell);
    inline_template("issue.hooks.after_create", c.after_create, Kind::shell);
    inline_template("issue.hooks.before_remove", c.before_remove, Kind::shell);
    inline_template("issue.hooks.on_completed", c.on_completed, Kind::shell);
    inline_template("issue.hooks.on_failed", c.on_failed, Kind::shell);
    inline_template("issue.hooks.on_blocked", c.on_blocked, Kind::shell);
    for (const auto &s : c.stages) {
        std::string p = "issue.stages." + s.name;
        inline_template(p + ".prompt", s.prompt, Kind::text);
        inline_template(p + ".resume_prompt", s.resume_prompt, Kind::text);
        inline_template(p + ".hooks.before_run", s.before_run, Kind::shell);
        inline_template(p + ".hooks.after_run", s.after_run, Kind::shell);
        inline_template(p + ".gate.command", s.gate.command, Kind::shell);
        inline_template(p + ".gate.prompt", s.gate.prompt, Kind::text);
        if (s.outcome && s.outcome->succeed_if)
            inline_template(p + ".outcome.succeed_if", workflow::condition_template(*s.outcome->succeed_if), Kind::text);
        if (!s.prompt_file) continue;
        std::ifstream in(*s.prompt_file, std::ios::binary);
        if (!in) {
            d.unreadable_prompt_file(p + ".prompt_file", s.prompt_file->string(), std::strerror(errno));
            continue;
        }
        // The same bound as workflow.yml itself: a prompt is text for a model, not a data set.
        const size_t max_bytes = YamlLimits{}.max_file_bytes;
        std::string text = util::read_at_most(in, max_bytes);
        if (text.size() > max_bytes) {
            d.unreadable_prompt_file(p + ".prompt_file", s.prompt_file->string(),
                                     "larger than " + std::to_string(max_bytes / (1024 * 1024)) + " MiB");
            continue;
        }
        compile(p + ".prompt_file", text, *s.prompt_file, std::nullopt, Kind::text, d);
    }
}

} // namespace vik::workflow
