#pragma once
// A strict Jinja subset (MiniJinja-compatible for what workflows use): `{{ expr }}` with dotted
// and indexed access, literals, arithmetic and comparisons, filters, `{% if/elif/else %}`,
// `{% for %}` (with `loop.*`), `{% set %}`, `is defined` / `is not defined`, comments and
// whitespace control. Undefined variables and attributes are errors (strict undefined).
//
// Rendering yields segments that remember whether their text came from the template source
// (literal) or from a value (substituted). That is what lets the host escape substituted values
// for the shell context they land in, and expand `exec(...)` only where the template wrote it.

#include <boost/json/value.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace vik::tmpl {

struct TemplateError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// Substitution into shell source was refused: the value would land in a context the shell lexer
// cannot escape with certainty (a heredoc body, `eval`, `sh -c "…"`, ...). The message names the
// template, line and column, and what to write instead.
struct ShellContextError : TemplateError {
    using TemplateError::TemplateError;
};

struct Segment {
    std::string text;
    bool literal = true;   // true: from the template source; false: a substituted value
    int line = 0, col = 0; // for substituted values: where the `{{` stands in the template source
};
using Segments = std::vector<Segment>;

namespace detail {
struct Node; // the parsed template (syntax.hpp)
}

class Template {
  public:
    // Parses `source`; `name` appears in error messages (a file path or a workflow key).
    // Throws TemplateError naming line and column for malformed input.
    Template(std::string source, std::string name);
    ~Template();
    Template(Template &&) noexcept;
    Template &operator=(Template &&) noexcept;

    // Renders against a JSON object of variables. Throws TemplateError on undefined names.
    Segments render(const boost::json::object &context) const;
    const std::string &name() const { return name_; }

    // The template's text without evaluating anything: literal text as written and every `{{ }}`
    // as a placeholder value at its position; `if` takes its first branch, `for` runs its body
    // once. What `doctor` lexes to find shell contexts that would be refused at render time.
    Segments sketch() const;

  private:
    std::string name_;
    std::shared_ptr<detail::Node> root_;
};

// Plain text: segments joined as they are (prompts, messages).
std::string to_text(const Segments &segments);

// Shell text: each substituted value escaped for exactly the shell context the literal text
// around it puts it in (see shell_lexer.hpp), so a value is always data: one word or part of one.
// Throws ShellContextError, naming `name`, line and column, where no escaping is certain.
std::string to_shell(const Segments &segments, const std::string &name = "shell snippet");

// The static check behind `doctor`: lexes the template's sketch (see Template::sketch) as shell
// and returns the refusal rendering would raise, if any (the message names the template, line
// and column).
std::optional<std::string> shell_refusal(const Template &shell_template);

// vik's prompt command expansion: `` !`exec(CMD)` `` and `` `exec(CMD)` `` are replaced by CMD's
// output (one trailing newline dropped). Only markers written in the template source count; CMD is
// built with to_shell so substituted values inside it are escaped. `run` returns the output or
// throws TemplateError (non-zero exit, timeout). `name` names the template in errors.
using CommandRunner = std::function<std::string(const std::string &command)>;
std::string expand_prompt_commands(const Segments &segments, const CommandRunner &run, const std::string &name = "prompt");

// Convenience: parse + render + to_text / to_shell in one call.
std::string render_text(const std::string &source, const std::string &name, const boost::json::object &context);
std::string render_shell(const std::string &source, const std::string &name, const boost::json::object &context);

} // namespace vik::tmpl
