// Fuzz target: the shell escaper's byte-exact oracle. The first input byte picks one of kCases,
// idiomatic hook snippets that print the substituted value with printf '%s'; the rest is the
// value. Run with dash and with bash (shell_sandbox.hpp), each must exit 0 and print exactly the
// expected bytes. Cases marked may_refuse are contexts a lexer may decline (ShellContextError):
// a heredoc body, backticks, `${x:-...}`, a comment; the plain ones must be accepted for any value
// without NUL (no shell string holds one, so a value with NUL may always be refused).
#include "shell_sandbox.hpp"
#include "shell_segments.hpp"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

using namespace vik;

namespace {

struct Case {
    const char *templ;  // `{{v}}` marks the value
    const char *expect; // the expected stdout, `{{v}}` marking the value
    bool may_refuse;
};

const Case kCases[] = {
    {"printf '%s' {{v}}", "{{v}}", false},
    {"printf '%s' \"{{v}}\"", "{{v}}", false},
    {"printf '%s' '{{v}}'", "{{v}}", false},
    {"printf '%s' \"Title: {{v}} (#{{v}})\"", "Title: {{v}} (#{{v}})", false},
    {"printf '%s' 'a{{v}}b'{{v}}\"c{{v}}\"", "a{{v}}b{{v}}c{{v}}", false},
    {"X={{v}}; printf '%s' \"$X\"", "{{v}}", false},
    {"X=\"{{v}}\"; printf '%s' \"$X\"", "{{v}}", false},
    {"for x in {{v}}; do printf '%s' \"$x\"; done", "{{v}}", false},
    {"f() { printf '%s' \"$1\"; }; f {{v}}", "{{v}}", false},
    {"printf '%s' \"$(printf '%s.' {{v}})\"", "{{v}}.", true},
    {"X=$(printf '%s.' {{v}}); printf '%s' \"$X\"", "{{v}}.", true},
    {"printf '%s' \"`printf '%s.' {{v}}`\"", "{{v}}.", true},
    {"cat <<EOF\n{{v}}\nEOF", "{{v}}\n", true},
    {"cat <<'EOF'\n{{v}}\nEOF", "{{v}}\n", true},
    {"printf '%s' \"${UNSET_VARIABLE:-{{v}}}\"", "{{v}}", true},
    {"printf '%s' {{v}} # {{v}}", "{{v}}", true},
};
constexpr size_t kCaseCount = sizeof kCases / sizeof kCases[0];

std::string replace_markers(std::string_view text, const std::string &value) {
    std::string out;
    size_t start = 0, at;
    while ((at = text.find(vik::fuzz::kMarker, start)) != std::string_view::npos) {
        out.append(text.substr(start, at - start)).append(value);
        start = at + vik::fuzz::kMarker.size();
    }
    return out.append(text.substr(start));
}

vik::fuzz::ShellSandbox &sandbox() {
    static vik::fuzz::ShellSandbox s;
    return s;
}

[[noreturn]] void fail(const char *what, const Case &c, const std::string &value, const std::string &script, const char *shell,
                       const vik::fuzz::ShellResult *r) {
    std::fprintf(stderr, "\n%s\ntemplate: %s\nvalue (%zu bytes): %s\nto_shell: %s\n", what, c.templ, value.size(), value.c_str(),
                 script.c_str());
    if (r)
        std::fprintf(stderr, "%s: exit %d%s, stdout (%zu bytes): %s\n", shell, r->status, r->timed_out ? " (timed out)" : "",
                     r->out.size(), r->out.c_str());
    sandbox().remove();
    std::abort();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    const Case &c = kCases[data[0] % kCaseCount];
    std::string value(reinterpret_cast<const char *>(data) + 1, size - 1);
    std::string script;
    try {
        script = tmpl::to_shell(vik::fuzz::make_segments(c.templ, value));
    } catch (const tmpl::ShellContextError &) {
        if (!c.may_refuse && !vik::fuzz::has_nul(value)) fail("refused a plain context", c, value, "", "", nullptr);
        return 0;
    }
    if (vik::fuzz::has_nul(script)) return 0;
    std::string expect = replace_markers(c.expect, value);
    for (const char *shell : {"/bin/dash", "/bin/bash"}) {
        auto r = sandbox().run(shell, script);
        if (r.status != 0 || r.out != expect) fail("the value did not arrive byte for byte", c, value, script, shell, &r);
    }
    return 0;
}
