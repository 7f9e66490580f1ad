// The hook escaper against real shells: many templates (idiomatic and adversarial, including the
// six that executed issue text before the shell lexer existed) rendered with hostile values and
// run under dash and bash. The oracle: no canary file, ever; where the template prints the value,
// it arrives byte-for-byte; where the context cannot be escaped with certainty, rendering refuses.
#include "support/test_support.hpp"
#include "template/template.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <cstdio>
#include <filesystem>

using namespace vik::tmpl;
namespace json = boost::json;
namespace fs = std::filesystem;

namespace {

// Values an attacker would put in an issue title. Each tries to run `touch CANARY`.
const std::vector<std::string> kHostileValues = {
    "x; touch CANARY",
    "$(touch CANARY)",
    "`touch CANARY`",
    "'; touch CANARY; '",
    "\"; touch CANARY; \"",
    "\\\"; touch CANARY; \\\"",
    "\\'; touch CANARY #",
    "x\ntouch CANARY",
    "x\r\ntouch CANARY",
    "EOF\ntouch CANARY\nEOF",
    "x)\ntouch CANARY\n(",
    "x`\ntouch CANARY\n`",
    "a\\",
    "\\",
    "'",
    "\"",
    "$",
    "$((1+1))",
    "${IFS}touch${IFS}CANARY",
    "a[$(touch CANARY)]",
    "x && touch CANARY",
    "x | touch CANARY",
    "x & touch CANARY",
    ">CANARY",
    "<(touch CANARY)",
    "-n",
    "-e \\x41",
    "%s%n%d",
    "* ? [a-z] ~ ~root",
    "#!/bin/sh touch CANARY",
    "it's \"quoted\" $x `y` \\z",
    "'\\''; touch CANARY; '\\''",
    "$'\\x27'; touch CANARY",
    "}; touch CANARY; {",
    "))); touch CANARY; (((",
    "\ttabs\tand  spaces ",
    "trailing newline\n",
    "ünïcødé ✓ 日本",
    "",
    "!!; touch CANARY",
    "x\\\ntouch CANARY",
};

struct ShellRun {
    std::string out;
    int status = -1;
};

// Runs `script` with `shell` in `dir` (at most 10 s) and returns what it printed on stdout.
ShellRun run(const std::string &shell, const fs::path &dir, const std::string &script) {
    vik::test::write_file(dir / "script.sh", script);
    std::string cmd = "cd " + vik::test::shell_quote(dir.string()) + " && timeout 10 " + shell + " ./script.sh 2>/dev/null";
    FILE *p = popen(cmd.c_str(), "r");
    ShellRun r;
    if (!p) return r;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0)
        r.out.append(buf, n);
    r.status = pclose(p);
    return r;
}

std::string strip_trailing_newlines(std::string s) {
    while (!s.empty() && s.back() == '\n')
        s.pop_back();
    return s;
}

std::string render(const std::string &tmpl, const std::string &value) {
    json::object ctx{{"issue", json::object{{"title", value}, {"id", "T1"}}}, {"workflow_dir", "/srv/wf"}};
    return render_shell(tmpl, "issue.hooks.after_create", ctx);
}

// A template that must render for every value, and what it prints for a value V.
struct Printing {
    std::string tmpl;
    std::function<std::string(const std::string &)> expected;
};

std::string same(const std::string &v) { return v + "\n"; }
std::string substituted(const std::string &v) { return strip_trailing_newlines(v) + "\n"; } // $(…) drops trailing newlines

const std::vector<Printing> kPrinting = {
    {"printf '%s\\n' {{ issue.title }}", same},
    {"printf '%s\\n' \"{{ issue.title }}\"", same},
    {"printf '%s\\n' '{{ issue.title }}'", same},
    {"printf '%s\\n' \"pre {{ issue.title }} post\"", [](const std::string &v) { return "pre " + v + " post\n"; }},
    {"printf '%s\\n' 'pre {{ issue.title }} post'", [](const std::string &v) { return "pre " + v + " post\n"; }},
    {"X={{ issue.title }}; printf '%s\\n' \"$X\"", same},
    {"X=\"{{ issue.title }}\"\nprintf '%s\\n' \"$X\"", same},
    {"printf '%s\\n' \"$(printf '%s' {{ issue.title }})\"", substituted},
    {"printf '%s\\n' \"$(printf '%s' \"{{ issue.title }}\")\"", substituted},
    {"printf '%s\\n' \"$(printf '%s' '{{ issue.title }}')\"", substituted},
    {"X=`printf '%s' {{ issue.title }}`; printf '%s\\n' \"$X\"", substituted},
    {"X=`printf '%s' '{{ issue.title }}'`; printf '%s\\n' \"$X\"", substituted},
    {"X=`printf '%s' \"{{ issue.title }}\"`; printf '%s\\n' \"$X\"", substituted},
    // Finding 1: an apostrophe in a comment earlier in the hook.
    {"# Don't remove this workspace by hand\nprintf '%s\\n' {{ issue.title }}", same},
    {"printf '%s\\n' {{ issue.title }} # it's the title", same},
    // Finding 6: an apostrophe inside a heredoc body, then a plain value.
    {"cat <<EOF\nit's here\nEOF\nprintf '%s\\n' {{ issue.title }}",
     [](const std::string &v) { return "it's here\n" + v + "\n"; }},
    {"cat <<'EOF'\n$(x) \" it's\nEOF\nprintf '%s\\n' \"{{ issue.title }}\"",
     [](const std::string &v) { return "$(x) \" it's\n" + v + "\n"; }},
    {"cat <<-EOF\n\tit's\n\tEOF\nprintf '%s\\n' {{ issue.title }}", [](const std::string &v) { return "it's\n" + v + "\n"; }},
    {"if true; then printf '%s\\n' \"{{ issue.title }}\"; fi", same},
    {"f() { printf '%s\\n' \"$1\"; }; f {{ issue.title }}", same},
    {"printf '%s\\n' \"$( (printf '%s' {{ issue.title }}) )\"", substituted},
    {"case x in x) printf '%s\\n' {{ issue.title }};; esac", same},
    {"printf '%s\\n' ~{{ issue.title }}", [](const std::string &v) { return "~" + v + "\n"; }},
    {"printf '%s\\n' \\\n  {{ issue.title }}", same},
    {"printf '%s\\n' \"${HOME:+x}{{ issue.title }}\"", [](const std::string &v) { return "x" + v + "\n"; }},
    {"x=$(( 1 + 2 )); printf '%s\\n' {{ issue.title }}", same},
    {"printf '%s\\n' {{ issue.title }}{{ issue.title }}", [](const std::string &v) { return v + v + "\n"; }},
    {"printf '%s\\n' {{ issue.title }} 2>&1 | cat", same},
    {"printf '%s\\n' \"a\\\"b{{ issue.title }}\"", [](const std::string &v) { return "a\"b" + v + "\n"; }},
    {"printf '%s\\n' \"a\\\\{{ issue.title }}\"", [](const std::string &v) { return "a\\" + v + "\n"; }},
    {"printf '%s\\n' 'a\\{{ issue.title }}'", [](const std::string &v) { return "a\\" + v + "\n"; }},
    {"X=$(cat <<EOF\nit's\nEOF\n); printf '%s\\n' \"$X\" {{ issue.title }}",
     [](const std::string &v) { return "it's\n" + v + "\n"; }},
    {"printf '%s\\n' \"$(printf '%s' \"$(printf '%s' {{ issue.title }})\")\"", substituted},
    {"echo skip >/dev/null && printf '%s\\n' {{ issue.title }} || exit 1", same},
    {"env X={{ issue.title }} sh -c 'printf \"%s\\n\" \"$X\"'", same}, // data in the environment, code a literal
    {"X=\"$(printf '%s' {{ issue.title }} # a ) comment\n)\"; printf '%s\\n' \"$X\"", substituted},
    {"X=~{{ issue.title }}; printf '%s\\n' \"$X\"", [](const std::string &v) { return "~" + v + "\n"; }},
};

// Templates that render (the value is data) but print something else: only "no canary".
const std::vector<std::string> kQuiet = {
    // Finding 4: a value inside $(…) inside double quotes.
    "X=\"$(echo {{ issue.title }} | tr A-Z a-z)\"",
    "echo \"workspace for {{ issue.id }}: {{ issue.title }}\" > README.md",
    "git log -1 >/dev/null 2>&1 || echo {{ issue.title }} >/dev/null",
    ": {{ issue.title }}",
    "test -n {{ issue.title }} && true",
    "[ \"{{ issue.title }}\" = x ] || true",
    "for w in {{ issue.title }}; do :; done",
    "X=({{ issue.title }}) 2>/dev/null; true",
};

// Templates whose value context cannot be escaped with certainty: rendering must refuse.
const std::vector<std::string> kRefused = {
    // Finding 2: an unquoted heredoc whose body gets $(…).
    "cat <<EOF\n$(echo {{ issue.title }})\nEOF",
    // Finding 3: a quoted heredoc whose body may contain a line EOF.
    "cat <<'EOF'\n{{ issue.title }}\nEOF",
    "cat <<-EOF\n\t{{ issue.title }}\n\tEOF",
    "cat <<{{ issue.title }}\nx\n",
    // A fuzzer finding: a backtick in a heredoc delimiter (dash reads it across lines, so the
    // body starts where a lexer does not expect) and any expansion there.
    "cat <<EO`x;touch C'NARY\n{ eval h CANARYEOF {{ issue.title }}",
    "cat <<E$X\nbody\nE$X\necho {{ issue.title }}",
    // A fuzzer finding: an operator inside a bash array assignment is a syntax error bash does
    // not treat as fatal; it resumes at the next line, which may lie inside a quoted value.
    "a=(x|)\necho {{ issue.title }}",
    "declare -a a=(x; y) 2>/dev/null; echo {{ issue.title }}",
    "a=(x y) ; b=(z >f) ; printf '%s' {{ issue.title }}",
    // A fuzzer finding: $$( is the PID and a parenthesis, not a substitution (here inside an array).
    "a=(x$$(y) z)\necho {{ issue.title }}",
    // Finding 5: a backslash right before a value.
    "echo \\{{ issue.title }}",
    "echo \"\\{{ issue.title }}\"",
    "X=`echo \\{{ issue.title }}`",
    "echo ${{ issue.title }}",
    "echo \"${{ issue.title }}\"",
    "echo \"${X:-{{ issue.title }}}\"",
    "echo ${X:-{{ issue.title }}}",
    "eval \"echo {{ issue.title }}\"",
    "eval echo {{ issue.title }}",
    "sh -c \"echo {{ issue.title }}\"",
    "bash -c 'echo {{ issue.title }}'",
    "timeout 5 bash -lc \"echo {{ issue.title }}\"",
    "sudo -u nobody sh -c \"echo {{ issue.title }}\"",
    "find . -exec sh -c 'echo {{ issue.title }}' \\;",
    "ssh host \"echo {{ issue.title }}\"",
    "su -c \"echo {{ issue.title }}\" root",
    "echo {{ issue.title }} | sh",
    "printf '%s' \"{{ issue.title }}\" | tee /dev/null | bash",
    "echo \"$(printf '%s' {{ issue.title }})\" | python3",
    "python3 -c 'print(\"{{ issue.title }}\")'",
    "awk 'BEGIN { print \"{{ issue.title }}\" }'",
    "sed -i 's/x/{{ issue.title }}/' file",
    "trap 'echo {{ issue.title }}' EXIT",
    "echo \"`echo {{ issue.title }}`\"",
    "echo `echo \\`echo {{ issue.title }}\\``",
    "declare x={{ issue.title }}",
    "read -r {{ issue.title }} </dev/null",
    "printf -v {{ issue.title }} x",
    "[[ {{ issue.title }} -eq 1 ]]",
    "a[{{ issue.title }}]=1",
    "echo $'{{ issue.title }}'",
    "X=$(case x in x) echo a;; esac); echo {{ issue.title }}",
    "echo {{ issue.title }} |& bash",
    "echo {{ issue.title }} | (sh)",
    "echo {{ issue.title }} | { bash; }",
    "PS4={{ issue.title }}",
    "export PROMPT_COMMAND=\"{{ issue.title }}\"",
    "BASH_ENV={{ issue.title }} bash x.sh",
    "git -c alias.x={{ issue.title }} x",
    "scp host:{{ issue.title }} .",
};

} // namespace

TEST_CASE("shell differential: printed values arrive byte-for-byte under dash and bash, and nothing runs",
          "[template][security][shell]") {
    vik::test::TempDir dir;
    int runs = 0;
    for (const auto &t : kPrinting) {
        for (const auto &v : kHostileValues) {
            INFO("template:\n" << t.tmpl << "\nvalue: " << v);
            std::string script;
            REQUIRE_NOTHROW(script = render(t.tmpl, v));
            INFO("rendered:\n" << script);
            for (const char *shell : {"dash", "bash"}) {
                INFO("shell: " << shell);
                ShellRun r = run(shell, dir.path, script);
                ++runs;
                CHECK_FALSE(fs::exists(dir / "CANARY"));
                fs::remove(dir / "CANARY");
                CHECK(r.out == t.expected(v));
            }
        }
    }
    CHECK(runs == static_cast<int>(kPrinting.size() * kHostileValues.size() * 2));
}

TEST_CASE("shell differential: values that render but print otherwise never run under dash and bash",
          "[template][security][shell]") {
    vik::test::TempDir dir;
    for (const auto &t : kQuiet)
        for (const auto &v : kHostileValues) {
            INFO("template:\n" << t << "\nvalue: " << v);
            std::string script;
            REQUIRE_NOTHROW(script = render(t, v));
            for (const char *shell : {"dash", "bash"}) {
                run(shell, dir.path, script);
                CHECK_FALSE(fs::exists(dir / "CANARY"));
                fs::remove(dir / "CANARY");
            }
        }
}

TEST_CASE("shell differential: contexts that cannot be escaped with certainty are refused with the hook, line and column",
          "[template][security][shell]") {
    for (const auto &t : kRefused) {
        INFO("template:\n" << t);
        try {
            render(t, "harmless");
            FAIL("rendered although the value's context cannot be escaped with certainty");
        } catch (const ShellContextError &e) {
            std::string msg = e.what();
            CHECK(msg.rfind("issue.hooks.after_create:", 0) == 0);
            CHECK(msg.find("a value cannot be substituted here") != std::string::npos);
            CHECK(msg.find("$VIK_ISSUE_TITLE") != std::string::npos);
        }
    }
}

TEST_CASE("shell escaper: the refusal names the value's own line and column", "[template][security][shell]") {
    try {
        render("echo ok\ncat <<EOF\nhello {{ issue.title }}\nEOF", "x");
        FAIL("rendered a value inside a heredoc body");
    } catch (const ShellContextError &e) {
        CHECK(std::string(e.what()).rfind(
                  "issue.hooks.after_create:3:7: a value cannot be substituted here: inside a heredoc body", 0) == 0);
    }
}

TEST_CASE("shell escaper: values no shell word can hold are refused, integers pass in arithmetic",
          "[template][security][shell]") {
    CHECK_THROWS_AS(render("echo {{ issue.title }}", std::string("a\0b", 3)), ShellContextError);
    CHECK(render("echo $(( 1 + {{ issue.title }} ))", "42") == "echo $(( 1 + 42 ))");
    CHECK_THROWS_AS(render("echo $(( 1 + {{ issue.title }} ))", "a[$(touch CANARY)]"), ShellContextError);
    CHECK_THROWS_AS(render("echo $(( 1 + {{ issue.title }} ))", "x"), ShellContextError);
    // An empty value is still one word.
    CHECK(render("printf '%s\\n' {{ issue.title }} end", "") == "printf '%s\\n' '' end");
}

TEST_CASE("shell escaper: the static check finds a refused context without rendering", "[template][security][shell]") {
    auto refusal =
        shell_refusal(Template("echo ok\ncat <<EOF\n{{ issue.undefined_is_fine_here }}\nEOF", "issue.hooks.before_run"));
    REQUIRE(refusal);
    CHECK(refusal->rfind("issue.hooks.before_run:3:1: a value cannot be substituted here: inside a heredoc body", 0) == 0);
    CHECK_FALSE(shell_refusal(Template("printf '%s\\n' \"{{ issue.title }}\" # it's fine", "h")));
}
