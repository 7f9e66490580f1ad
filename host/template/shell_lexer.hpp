#pragma once
// A POSIX sh lexer for hook templates: it follows the literal text a template author wrote,
// character by character, and tells for every point where a substituted value lands how that
// value must be escaped, or refuses the value.
//
// Why a lexer: a value is data only if the shell sees it as one word (or part of one) in a
// quoting context it cannot leave. That context depends on everything before it: quotes,
// comments, `$(…)` and backticks at any depth, `${…}`, arithmetic, heredocs, line continuations.
// The lexer models each of them; where it cannot be certain what the shell will do with a value
// (a heredoc body, `${…}`, the argument of `eval`, `sh -c`, `ssh`, an interpreter, a pipeline
// into a shell, nested backticks, ...) it refuses, naming the template, line and column. Refusal
// is the safe direction: the hook does not run, and the author moves the value into the
// environment (`"$VIK_ISSUE_TITLE"`), where the shell never parses it.
//
// The lexer sees only template text; values are opaque. Escaping a value never changes the
// lexer's state, so the text after a value is lexed exactly as the author wrote it.

#include <memory>
#include <string>
#include <string_view>

namespace vik::tmpl::shell {

// How one value must be written at the point where it lands.
enum class Quoting {
    word,    // unquoted in a command: one single-quoted word part
    single,  // inside '…': spliced with '\''
    dquote,  // inside "…": \ before $ ` " and backslash
    comment, // inside a comment: kept on its line
    integer, // inside arithmetic: a decimal integer or nothing
};

struct Placement {
    Quoting quoting = Quoting::word;
    bool in_backticks = false; // one backtick layer around it: \ before $ ` and backslash again
    bool after_tilde = false;  // the word so far is `~…`: quote even safe values (no ~user expansion)
};

struct LexerState;

class Lexer {
  public:
    // `name` names the template in errors (a workflow key such as issue.hooks.after_create).
    explicit Lexer(std::string name);
    ~Lexer();
    Lexer(const Lexer &) = delete;
    Lexer &operator=(const Lexer &) = delete;

    // Template text, in order. Throws ShellContextError when text after a value makes it unsafe
    // (a pipeline that feeds a value into a shell).
    void literal(std::string_view text);

    // A value lands here; (line, col) is where its `{{` stands in the template. Throws
    // ShellContextError when the context cannot be escaped with certainty.
    Placement value(int line, int col);

    // The end of the script: ends the last word (a trailing `| sh` is checked too).
    void finish();

  private:
    std::unique_ptr<LexerState> s_;
};

// Writes `value` for a placement. Throws ShellContextError for values no context can hold
// (a NUL byte; a non-integer in arithmetic).
std::string escape(const std::string &value, const Placement &where, const std::string &name, int line, int col);

} // namespace vik::tmpl::shell
