#include "template/shell_lexer.hpp"

#include "template/template.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <deque>
#include <optional>
#include <vector>

namespace vik::tmpl::shell {

namespace {

// Where the environment is the answer: every refusal ends with this advice.
constexpr const char *kUseEnvironment =
    "; pass untrusted text through the environment instead, e.g. \"$VIK_ISSUE_TITLE\", \"$VIK_ISSUE_BODY\", "
    "\"$VIK_ISSUE_ID\" (docs/security.md)";

enum class Kind {
    command,       // the script itself, or a subshell's commands
    subst,         // $( … ): commands, ends at the matching )
    procsubst,     // <( … ) / >( … ) (bash): commands, ends at the matching )
    backtick,      // ` … `: commands, ends at the next unescaped backtick
    squote,        // ' … '
    dquote,        // " … "
    ansi,          // $' … ' (bash): escapes are interpreted; values refused
    param,         // ${ … }: values refused
    arith,         // $(( … )) / (( … )): integers only
    arith_bracket, // $[ … ] (old bash arithmetic): integers only
};

bool is_command(Kind k) { return k == Kind::command || k == Kind::subst || k == Kind::procsubst || k == Kind::backtick; }

struct Frame {
    explicit Frame(Kind k) : kind(k) {}
    Kind kind;
    // command frames: the simple command being read
    std::vector<std::string> words; // completed words (quote-removed literal text)
    std::string cur;                // the word being read
    bool in_word = false, cur_quoted = false, cur_dynamic = false;
    bool expect_cmd = true;    // the next word names a command (or is an assignment / keyword)
    bool redir_target = false; // the next word is a redirection's target
    bool comment = false;
    bool after_pipe = false;                           // this simple command reads the output of an earlier one
    std::optional<std::pair<int, int>> pipeline_value; // first value in the current pipeline
    char prev = '\n';                                  // the previous literal character in this frame
    int parens = 0;                                    // subst/procsubst/arith: unmatched ( inside
    bool arith_closing = false;                        // arith: one ) of the closing )) seen
    bool ansi_backslash = false;                       // ansi: the previous character was a backslash
    bool array_list = false;                           // inside a bash array assignment's name=( … )
};

struct Heredoc {
    std::string delimiter;
    bool strip_tabs = false;
};

bool member(std::string_view w, std::initializer_list<std::string_view> set) {
    return std::find(set.begin(), set.end(), w) != set.end();
}

std::string_view basename_of(std::string_view w) {
    auto slash = w.rfind('/');
    return slash == std::string_view::npos ? w : w.substr(slash + 1);
}

bool starts_with_any(std::string_view w, std::initializer_list<std::string_view> prefixes) {
    for (auto p : prefixes)
        if (w.substr(0, p.size()) == p) return true;
    return false;
}

// Programs that read shell (or another language's) code from their arguments, or evaluate
// arguments arithmetically (bash executes $(…) inside array subscripts there).
bool shell_or_interpreter(std::string_view name) {
    return member(name, {"sh",        "bash",  "dash",    "zsh",      "ksh",     "mksh",  "ash",     "yash",
                         "fish",      "csh",   "tcsh",    "pwsh",     "busybox", "eval",  "source",  ".",
                         "osascript", "tclsh", "Rscript", "parallel", "at",      "batch", "sudoedit"}) ||
           starts_with_any(name, {"python", "perl", "ruby", "node", "php", "lua", "bash", "zsh"});
}

// Why a value in the arguments of the simple command `words` would be code, if it would.
// Shells, interpreters and the like count wherever they stand (wrappers such as `sudo`,
// `timeout`, `env` or `find -exec` put them anywhere); the bash builtins that evaluate names
// arithmetically count as the command name only (`read` or `test` as an argument is common).
std::optional<std::string> code_reader_in(const std::vector<std::string> &words) {
    for (size_t i = 0; i < words.size(); ++i) {
        std::string_view w = basename_of(words[i]);
        if (shell_or_interpreter(w) && (i == 0 || !member(w, {".", "source", "at", "batch"})))
            return "an argument of `" + std::string(w) + "`, which runs its arguments as code";
        if (member(w, {"trap", "alias", "ssh", "scp", "rsync", "su", "runuser", "watch", "script", "flock", "awk", "gawk", "mawk",
                       "nawk", "sed"}))
            return "an argument of `" + std::string(w) + "`, which can run its arguments as code";
        if (w == "git")
            for (size_t j = i + 1; j < words.size(); ++j)
                if (words[j] == "-c" || words[j] == "config" || words[j].rfind("--config-env", 0) == 0)
                    return "a git configuration value (git runs some, such as aliases and core.sshCommand, as shell commands)";
        if (i != 0) continue;
        if (member(w, {"declare", "typeset", "local", "read", "let", "[[", "readarray", "mapfile"}))
            return "an argument of `" + std::string(w) + "`, which bash evaluates arithmetically (array subscripts run $(…))";
        if (member(w, {"printf", "test", "["}))
            for (size_t j = 1; j < words.size(); ++j)
                if (words[j].rfind("-v", 0) == 0)
                    return "an argument of `" + std::string(w) +
                           " -v`, whose variable name bash evaluates (array subscripts run $(…))";
    }
    return std::nullopt;
}

bool reads_code_from_stdin(std::string_view name) {
    name = basename_of(name);
    return shell_or_interpreter(name) || member(name, {"xargs", "parallel", "at", "batch"});
}

bool is_assignment(const std::string &w) {
    if (w.empty() || !(std::isalpha(static_cast<unsigned char>(w[0])) || w[0] == '_')) return false;
    for (size_t i = 1; i < w.size(); ++i) {
        char c = w[i];
        if (c == '=' || c == '[' || (c == '+' && i + 1 < w.size() && w[i + 1] == '=')) return true;
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) return false;
    }
    return false;
}

} // namespace

struct LexerState {
    std::string name;
    std::vector<Frame> stack;
    // Pending decisions that need the next character.
    bool backslash = false;    // an unquoted/double-quoted backslash
    bool dollar = false;       // an unquoted/double-quoted $
    bool dollar_paren = false; // $( seen: $(( would be arithmetic
    bool paren_paren = false;  // ( at command position: (( would be arithmetic (bash)
    int lt_run = 0;            // consecutive < in a command frame
    bool heredoc_op = false;   // << (or <<-) seen: the next word is a delimiter
    bool heredoc_strip = false;
    bool reading_delimiter = false;
    // Backtick layer: the raw backslash before the next character inside `…`.
    bool bt_backslash = false;
    std::deque<Heredoc> pending_heredocs;
    std::optional<Heredoc> body; // inside a heredoc body
    std::string body_line;
    std::optional<std::string> poisoned; // why values can no longer be placed with certainty
    int out_line = 1, out_col = 1;       // position in the rendered script, for poison messages

    [[noreturn]] void refuse(int line, int col, const std::string &why) const {
        throw ShellContextError(name + ":" + std::to_string(line) + ":" + std::to_string(col) +
                                ": a value cannot be substituted here: " + why + kUseEnvironment);
    }

    void poison(const std::string &why) {
        if (!poisoned)
            poisoned = why + " (rendered script line " + std::to_string(out_line) + ", column " + std::to_string(out_col) +
                       "): the shell's reading of what follows cannot be predicted";
    }

    Frame &top() { return stack.back(); }
    Frame *command_frame() {
        for (auto it = stack.rbegin(); it != stack.rend(); ++it)
            if (is_command(it->kind)) return &*it;
        return nullptr;
    }
    bool inside(Kind k) const {
        return std::any_of(stack.begin(), stack.end(), [k](const Frame &f) { return f.kind == k; });
    }

    void push(Kind k) {
        if (Frame *c = command_frame(); c && !is_command(k)) {
            c->in_word = true;
            if (k == Kind::squote || k == Kind::dquote || k == Kind::ansi)
                c->cur_quoted = true;
            else
                c->cur_dynamic = true;
        } else if (c && is_command(k)) {
            c->in_word = true;
            c->cur_dynamic = true;
        }
        stack.push_back(Frame{k});
    }

    void pop() {
        if (stack.size() > 1) stack.pop_back();
    }

    // ---- words and simple commands -----------------------------------------------------------

    void end_word(Frame &f) {
        if (!f.in_word) return;
        std::string w = std::move(f.cur);
        bool plain = !f.cur_quoted && !f.cur_dynamic;
        f.cur.clear();
        f.in_word = false;
        f.cur_quoted = f.cur_dynamic = false;
        if (f.array_list) return; // an array element: data to bash, never a command name
        if (reading_delimiter) {
            reading_delimiter = false;
            pending_heredocs.push_back(Heredoc{w, heredoc_strip});
            return;
        }
        if (f.redir_target) {
            f.redir_target = false;
            return;
        }
        if (f.expect_cmd) {
            if (plain && member(w, {"if", "then", "else", "elif", "do", "while", "until", "!", "{", "time"})) return;
            if (plain && member(w, {"case"}) && (f.kind == Kind::subst || f.kind == Kind::procsubst))
                poison("`case` inside $(…)"); // its patterns' ) would end the substitution early for a paren counter
            if (is_assignment(w)) return;
            f.expect_cmd = false;
            f.words.push_back(w);
            if (f.after_pipe && f.pipeline_value && reads_code_from_stdin(w))
                refuse(f.pipeline_value->first, f.pipeline_value->second,
                       "the value is piped into `" + std::string(basename_of(w)) + "`, which runs its input as code");
            return;
        }
        f.words.push_back(w);
    }

    void new_command(Frame &f, bool pipe) {
        end_word(f);
        f.words.clear();
        f.expect_cmd = true;
        f.redir_target = false;
        f.after_pipe = pipe;
        if (!pipe) f.pipeline_value.reset();
    }

    void newline_token(Frame &f) {
        new_command(f, false);
        if (!pending_heredocs.empty()) {
            body = pending_heredocs.front();
            pending_heredocs.pop_front();
            body_line.clear();
        }
    }

    // ---- characters ----------------------------------------------------------------------------

    void feed(char c) {
        if (c == '\n') {
            ++out_line;
            out_col = 1;
        } else {
            ++out_col;
        }
        if (body) return heredoc_char(c);
        // The backtick layer: inside `…` the shell first removes \ before $ ` and \, then lexes.
        if (inside(Kind::backtick)) {
            if (bt_backslash) {
                bt_backslash = false;
                if (c == '`') {
                    poison("nested backticks (\\`)");
                    return;
                }
                // \$ and \\ reach the inner lexer as a plain $ or \ (that is what the shell does).
                if (c == '$' || c == '\\') return dispatch(c);
                dispatch('\\');
                return dispatch(c);
            }
            if (c == '\\') {
                bt_backslash = true;
                return;
            }
            if (c == '`') {
                // The first unescaped backtick ends the substitution, whatever is open inside.
                while (top().kind != Kind::backtick) {
                    if (!is_command(top().kind)) poison("a backtick substitution ends inside an open quote or expansion");
                    stack.pop_back();
                }
                end_word(top());
                stack.pop_back();
                resolve_pending_for_layer_end();
                return;
            }
        }
        dispatch(c);
    }

    void resolve_pending_for_layer_end() {
        backslash = dollar = dollar_paren = paren_paren = false;
        lt_run = 0;
    }

    void dispatch(char c) {
        // A heredoc delimiter is a plain word: the shells differ on a substitution in it (dash
        // reads a backtick one across lines, so the body starts elsewhere than a lexer thinks).
        if (reading_delimiter && (c == '`' || c == '$') && top().kind != Kind::squote)
            poison("a substitution or expansion in a heredoc delimiter");
        switch (top().kind) {
        case Kind::command:
        case Kind::subst:
        case Kind::procsubst:
        case Kind::backtick:
            return command_char(c);
        case Kind::squote:
            if (c == '\'')
                pop();
            else if (Frame *f = command_frame())
                f->cur += c;
            return;
        case Kind::ansi:
            return ansi_char(c);
        case Kind::dquote:
            return dquote_char(c);
        case Kind::param:
            return param_char(c);
        case Kind::arith:
        case Kind::arith_bracket:
            return arith_char(c);
        }
    }

    // After an unescaped $ in a context that expands: what follows decides.
    bool dollar_next(char c) {
        dollar = false;
        Frame &f = top();
        switch (c) {
        case '(':
            dollar_paren = true;
            return true;
        case '{':
            push(Kind::param);
            return true;
        case '[':
            push(Kind::arith_bracket);
            return true;
        case '\'':
            if (is_command(f.kind)) {
                push(Kind::ansi);
                return true;
            }
            return false;
        default:
            if (Frame *cf = command_frame()) cf->cur_dynamic = true;
            // A special parameter ($$, $!, $#, $?, $-, $@, $*, $0-$9) ends here: its character must
            // not start anything ($$( is the PID and a parenthesis, not a substitution).
            if (std::strchr("$!#?-@*0123456789", c) != nullptr && c != '\0') {
                if (Frame *cf = command_frame()) cf->in_word = true;
                return true;
            }
            return false; // a name or a literal $: the character is lexed as usual
        }
    }

    bool dollar_paren_next(char c) {
        dollar_paren = false;
        if (c == '(') {
            push(Kind::arith);
            return true;
        }
        push(Kind::subst);
        return false; // the character belongs to the substitution's first command
    }

    void command_char(char c) {
        if (dollar_paren && dollar_paren_next(c)) return;
        if (dollar && dollar_next(c)) return;
        Frame &f = top();
        if (f.comment) {
            if (c == '\n') {
                f.comment = false;
                newline_token(f);
                f.prev = c;
            }
            return;
        }
        if (paren_paren) {
            paren_paren = false;
            if (c == '(') {
                // ((…)): bash arithmetic; dash reads two subshells (integers are safe in both).
                if (f.kind == Kind::subst || f.kind == Kind::procsubst) --f.parens;
                push(Kind::arith);
                return;
            }
        }
        if (backslash) {
            backslash = false;
            if (c == '\n') return; // line continuation
            f.cur += c;
            f.in_word = true;
            f.cur_quoted = true;
            f.prev = 'a';
            return;
        }
        char prev = f.prev;
        f.prev = c;
        bool strip_dash = heredoc_op && c == '-' && prev == '<' && lt_run == 2; // <<-
        if (c != '<') lt_run = 0;
        if (strip_dash) {
            heredoc_strip = true;
            return;
        }
        if (heredoc_op && c != ' ' && c != '\t' && c != '<') {
            // The first character of the word after << (quoted or not) starts the delimiter.
            heredoc_op = false;
            reading_delimiter = true;
            f.redir_target = false;
        }
        if (f.array_list && array_list_char(f, c)) return;
        switch (c) {
        case '\\':
            backslash = true;
            return;
        case '\'':
            push(Kind::squote);
            return;
        case '"':
            push(Kind::dquote);
            return;
        case '`':
            push(Kind::backtick);
            return;
        case '$':
            f.in_word = true;
            dollar = true;
            return;
        case ' ':
        case '\t':
            end_word(f);
            return;
        case '\n':
            newline_token(f);
            return;
        case ';':
            new_command(f, false);
            return;
        case '&':
            if (prev == '>' || prev == '<') return;  // 2>&1, <&3
            if (prev == '|' && f.after_pipe) return; // |& (bash): still a pipe
            new_command(f, false);
            return;
        case '|':
            if (prev == '>') return; // >|
            if (prev == '|') {
                // || : not a pipe after all
                new_command(f, false);
                return;
            }
            new_command(f, true);
            return;
        case '(':
            if (f.in_word && (prev == '<' || prev == '>')) {
                push(Kind::procsubst);
                return;
            }
            if ((prev == '<' || prev == '>') && !f.in_word) {
                push(Kind::procsubst);
                return;
            }
            if (f.in_word && !f.cur.empty() && f.cur.back() == '=' && is_assignment(f.cur)) {
                // name=( … ): a bash array assignment (also after declare, local, export …).
                // Its list holds words only; see array_list_char.
                f.cur.clear();
                f.in_word = f.cur_quoted = f.cur_dynamic = false;
                f.array_list = true;
                return;
            }
            end_word(f);
            if (f.kind == Kind::subst || f.kind == Kind::procsubst) ++f.parens;
            if (f.expect_cmd) paren_paren = true;
            // A subshell right after a pipe reads that pipe: the pipeline goes on.
            new_command(f, f.after_pipe && f.words.empty());
            return;
        case ')':
            end_word(f);
            if (f.kind == Kind::subst || f.kind == Kind::procsubst) {
                if (f.parens == 0) {
                    pop();
                    return;
                }
                --f.parens;
            }
            new_command(f, false);
            return;
        case '<':
        case '>':
            end_word(f);
            if (c == '<') {
                ++lt_run;
                if (lt_run == 2) {
                    heredoc_op = true;
                    heredoc_strip = false;
                } else if (lt_run == 3) {
                    heredoc_op = false; // <<< here-string: an ordinary word follows
                }
            }
            f.redir_target = true;
            return;
        case '#':
            if (!f.in_word) {
                f.comment = true;
                return;
            }
            break;
        default:
            break;
        }
        f.cur += c;
        f.in_word = true;
    }

    // A character of an array assignment's list (bash). An operator there is a syntax error
    // that bash, unlike any other, does not treat as fatal: it drops the rest of the line and
    // resumes at the next one, which may lie inside a value the lexer reads as quoted data.
    bool array_list_char(Frame &f, char c) {
        switch (c) {
        case ')':
            end_word(f);
            f.array_list = false;
            return true;
        case '\n':
            if (!pending_heredocs.empty()) poison("a heredoc whose body starts inside a bash array assignment");
            end_word(f); // a newline separates elements; the command goes on
            return true;
        case ';':
        case '&':
        case '|':
        case '<':
        case '>':
        case '(':
            poison(std::string("`") + c + "` inside a bash array assignment `name=( … )`");
            return false;
        default:
            return false;
        }
    }

    void dquote_char(char c) {
        if (dollar_paren && dollar_paren_next(c)) return;
        if (dollar && dollar_next(c)) return;
        Frame *cf = command_frame();
        if (backslash) {
            backslash = false;
            if (c == '\n') return;
            if (cf) cf->cur += (c == '$' || c == '`' || c == '"' || c == '\\') ? std::string(1, c) : std::string("\\") + c;
            return;
        }
        switch (c) {
        case '\\':
            backslash = true;
            return;
        case '"':
            pop();
            return;
        case '$':
            dollar = true;
            return;
        case '`':
            push(Kind::backtick);
            return;
        default:
            if (cf) cf->cur += c;
        }
    }

    void ansi_char(char c) {
        Frame &f = top();
        if (f.ansi_backslash) {
            f.ansi_backslash = false;
            if (c == '\'') poison("$'…' with an escaped quote (dash and bash end it in different places)");
            return;
        }
        if (c == '\\')
            f.ansi_backslash = true;
        else if (c == '\'')
            pop();
    }

    void param_char(char c) {
        if (dollar_paren && dollar_paren_next(c)) return;
        if (dollar && dollar_next(c)) return;
        if (backslash) {
            backslash = false;
            return;
        }
        switch (c) {
        case '\\':
            backslash = true;
            return;
        case '}':
            pop();
            return;
        case '"':
            push(Kind::dquote);
            return;
        case '`':
            push(Kind::backtick);
            return;
        case '$':
            dollar = true;
            return;
        case '\'':
            poison("a single quote inside ${…} (shells disagree on its meaning)");
            return;
        case '{':
            poison("a brace inside ${…}");
            return;
        default:
            return;
        }
    }

    void arith_char(char c) {
        if (dollar_paren && dollar_paren_next(c)) return;
        if (dollar && dollar_next(c)) return;
        Frame &f = top();
        if (f.kind == Kind::arith_bracket) {
            if (c == ']')
                pop();
            else if (c == '$')
                dollar = true;
            else if (c == '`')
                push(Kind::backtick);
            return;
        }
        if (f.arith_closing) {
            f.arith_closing = false;
            if (c == ')') {
                pop();
                return;
            }
            poison("$(( … ) that is not arithmetic");
            pop();
            return;
        }
        switch (c) {
        case '(':
            ++f.parens;
            return;
        case ')':
            if (f.parens == 0)
                f.arith_closing = true;
            else
                --f.parens;
            return;
        case '$':
            dollar = true;
            return;
        case '`':
            push(Kind::backtick);
            return;
        case '"':
            push(Kind::dquote);
            return;
        case '\'':
            poison("a quote inside arithmetic");
            return;
        default:
            return;
        }
    }

    void heredoc_char(char c) {
        if (c != '\n') {
            body_line += c;
            return;
        }
        std::string_view line = body_line;
        if (body->strip_tabs) line.remove_prefix(std::min(line.find_first_not_of('\t'), line.size()));
        if (line == body->delimiter) {
            body.reset();
            if (!pending_heredocs.empty()) {
                body = pending_heredocs.front();
                pending_heredocs.pop_front();
            }
        }
        body_line.clear();
    }
};

Lexer::Lexer(std::string name) : s_(std::make_unique<LexerState>()) {
    s_->name = std::move(name);
    s_->stack.push_back(Frame{Kind::command});
}

Lexer::~Lexer() = default;

void Lexer::literal(std::string_view text) {
    for (char c : text)
        s_->feed(c);
}

void Lexer::finish() {
    for (auto it = s_->stack.rbegin(); it != s_->stack.rend(); ++it)
        if (is_command(it->kind) && !it->comment) s_->end_word(*it);
}

Placement Lexer::value(int line, int col) {
    LexerState &s = *s_;
    if (s.body)
        s.refuse(line, col, "inside a heredoc body (the shell expands or copies it in ways a value cannot be escaped for)");
    if (s.reading_delimiter || s.heredoc_op) s.refuse(line, col, "in a heredoc delimiter");
    if (s.poisoned) s.refuse(line, col, "after " + *s.poisoned);
    if (s.bt_backslash) s.refuse(line, col, "right after a backslash (it would escape the value's first character)");
    if (s.backslash) s.refuse(line, col, "right after a backslash (it would escape the value's first character)");
    if (s.dollar) s.refuse(line, col, "right after `$` (the value would name a variable or start an expansion)");
    if (s.dollar_paren) s.dollar_paren_next(' ');
    if (s.paren_paren) s.paren_paren = false;
    s.lt_run = 0;

    Placement p;
    bool backtick = false, dquote_below_backtick = false, seen_dquote = false;
    for (const Frame &f : s.stack) {
        if (f.kind == Kind::dquote) seen_dquote = true;
        if (f.kind == Kind::backtick) {
            if (backtick) s.refuse(line, col, "inside nested backticks");
            backtick = true;
            if (seen_dquote) dquote_below_backtick = true;
        }
        if (f.kind == Kind::param) s.refuse(line, col, "inside ${…} (the shell expands patterns and nested words there)");
        if (f.kind == Kind::ansi) s.refuse(line, col, "inside $'…' (backslash escapes in the value would be interpreted)");
    }
    if (dquote_below_backtick)
        s.refuse(line, col, "inside backticks within double quotes (shells disagree on quoting there); use $(…)");
    p.in_backticks = backtick;

    // Every enclosing command: a value in the arguments of a code-running command is code.
    for (Frame &f : s.stack) {
        if (!is_command(f.kind)) continue;
        if (auto why = code_reader_in(f.words)) s.refuse(line, col, *why);
        if (&f != &s.top() || !f.comment) {
            if (!f.pipeline_value) f.pipeline_value = std::make_pair(line, col);
        }
    }

    if (const Frame *cf = s.command_frame(); cf && cf->in_word) {
        // Variables whose value the shell or the loader later runs or loads as code.
        auto eq = cf->cur.find('=');
        std::string var = eq == std::string::npos ? std::string() : cf->cur.substr(0, eq);
        if (!var.empty() && var.back() == '+') var.pop_back();
        if (member(var, {"PS1", "PS2", "PS3", "PS4", "PROMPT_COMMAND", "BASH_ENV", "ENV", "SHELLOPTS", "BASHOPTS", "LD_PRELOAD",
                         "LD_AUDIT", "LD_LIBRARY_PATH", "PATH", "IFS", "PYTHONSTARTUP", "PERL5OPT", "NODE_OPTIONS",
                         "GIT_SSH_COMMAND"}))
            s.refuse(line, col, "in the value of " + var + ", which the shell or the loader uses to run or find code");
    }

    Frame &t = s.top();
    switch (t.kind) {
    case Kind::squote:
        p.quoting = Quoting::single;
        break;
    case Kind::dquote:
        p.quoting = Quoting::dquote;
        break;
    case Kind::arith:
    case Kind::arith_bracket:
        p.quoting = Quoting::integer;
        break;
    default:
        if (t.comment) {
            p.quoting = Quoting::comment;
            break;
        }
        if (t.expect_cmd && t.in_word && !t.cur_quoted && !t.cur_dynamic) {
            // NAME[{{ v }}]=…: bash evaluates the subscript arithmetically.
            auto bracket = t.cur.find('[');
            if (bracket != std::string::npos && is_assignment(t.cur) && t.cur.find('=') == std::string::npos)
                s.refuse(line, col, "inside an array subscript (bash evaluates it arithmetically)");
        }
        p.quoting = Quoting::word;
        // ~{{ v }} (also after = or : in assignments): a safe value would still be a user name.
        p.after_tilde =
            t.in_word && t.cur.find('~') != std::string::npos && t.cur.find('/', t.cur.rfind('~')) == std::string::npos;
        t.in_word = true;
        t.cur_dynamic = true;
        break;
    }
    if (p.quoting != Quoting::comment) {
        if (Frame *cf = s.command_frame()) {
            cf->in_word = true;
            cf->cur_dynamic = true;
        }
    }
    return p;
}

namespace {

bool safe_unquoted(const std::string &v) {
    if (v.empty()) return false;
    return std::all_of(v.begin(), v.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '/' || c == '-' || c == ':' ||
               c == '@' || c == '+';
    });
}

std::string single_quoted_body(const std::string &v) {
    std::string out;
    for (char c : v)
        out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return out;
}

} // namespace

std::string escape(const std::string &value, const Placement &where, const std::string &name, int line, int col) {
    auto refuse = [&](const std::string &why) {
        throw ShellContextError(name + ":" + std::to_string(line) + ":" + std::to_string(col) +
                                ": a value cannot be substituted here: " + why + kUseEnvironment);
    };
    if (value.find('\0') != std::string::npos) refuse("the value contains a NUL byte, which no shell word can hold");
    std::string out;
    switch (where.quoting) {
    case Quoting::word:
        // A leading '-' stays a separate concern (options): quoting cannot change it.
        out = safe_unquoted(value) && !where.after_tilde ? value : "'" + single_quoted_body(value) + "'";
        break;
    case Quoting::single:
        out = single_quoted_body(value);
        break;
    case Quoting::dquote:
        for (char c : value) {
            if (c == '"' || c == '\\' || c == '$' || c == '`') out += '\\';
            out += c;
        }
        break;
    case Quoting::comment:
        // Dead text: only a line break could end the comment (and a backtick end a substitution).
        for (char c : value)
            out += (c == '\n' || c == '\r' || c == '`' || c == '\\' || c == ')' || c == '$') ? '_' : c;
        break;
    case Quoting::integer: {
        size_t start = !value.empty() && value[0] == '-' ? 1 : 0;
        bool digits =
            value.size() > start && value.size() - start <= 18 &&
            std::all_of(value.begin() + static_cast<long>(start), value.end(), [](char c) { return c >= '0' && c <= '9'; });
        if (!digits)
            refuse("inside arithmetic, and the value is not a decimal integer (bash evaluates names and subscripts there)");
        out = value;
        break;
    }
    }
    if (where.in_backticks) {
        std::string layered;
        for (char c : out) {
            if (c == '\\' || c == '`' || c == '$') layered += '\\';
            layered += c;
        }
        out = std::move(layered);
    }
    return out;
}

} // namespace vik::tmpl::shell
