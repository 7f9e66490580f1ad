// Untrusted issue text stays data: in shell snippets (every quoting context, run by a real sh)
// and in prompts (no `exec(...)` expansion of text that arrived through variables).
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

const std::vector<std::string> kHostile = {
    "`exec(touch pwned)`",
    "!`exec(touch pwned)`",
    "{{ 7*7 }}",
    "\"; touch pwned; \"",
    "$(touch pwned)",
    "'; touch pwned; '",
    "`touch pwned`",
    "a\\\"; touch pwned; \\\"",
    "\\'; touch pwned; '",
    "x\ntouch pwned",
    "--help; touch pwned",
    "$HOME ~ * ?",
    "it's \"quoted\" $x `y` \\z",
};

// Runs `script` with sh in dir and returns its stdout.
std::string run_sh(const fs::path &dir, const std::string &script) {
    vik::test::write_file(dir / "script.sh", script);
    std::string cmd = "cd " + vik::test::shell_quote(dir.string()) + " && sh ./script.sh 2>&1";
    FILE *p = popen(cmd.c_str(), "r");
    std::string out;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0)
        out.append(buf, n);
    pclose(p);
    return out;
}

} // namespace

TEST_CASE("injection: a hostile title prints literally from shell snippets in every quoting context", "[template][security]") {
    vik::test::TempDir dir;
    for (const auto &title : kHostile) {
        json::object ctx{{"issue", json::object{{"title", title}, {"id", "1"}}}};
        for (const char *tmpl :
             {"printf '%s\\n' {{ issue.title }}", "printf '%s\\n' \"{{ issue.title }}\"", "printf '%s\\n' '{{ issue.title }}'",
              "printf '%s\\n' \"Title: {{ issue.title }} (#{{ issue.id }})\"", "printf '%s\\n' 'Title: {{ issue.title }}'",
              "X={{ issue.title }}; printf '%s\\n' \"$X\""}) {
            INFO("title: " << title << "\ntemplate: " << tmpl);
            std::string script = render_shell(tmpl, "hook", ctx);
            std::string out = run_sh(dir.path, script);
            CHECK_FALSE(fs::exists(dir / "pwned"));
            std::string expected =
                std::string(tmpl).find("Title: ") != std::string::npos
                    ? (std::string(tmpl).find("(#") != std::string::npos ? "Title: " + title + " (#1)" : "Title: " + title)
                    : title;
            CHECK(out == expected + "\n");
        }
    }
}

TEST_CASE("injection: sane vik snippets render exactly as before", "[template][security]") {
    json::object ctx{{"issue", json::object{{"id", "ENG-42"}, {"title", "Fix login"}, {"stage", "plan"}}},
                     {"workflow_dir", "/srv/my-proj"}};
    CHECK(render_shell("gh issue edit {{ issue.id }} --add-label vik:build", "h", ctx) ==
          "gh issue edit ENG-42 --add-label vik:build");
    CHECK(render_shell("cd {{ workflow_dir }} && ./pull.sh", "h", ctx) == "cd /srv/my-proj && ./pull.sh");
    CHECK(render_shell("echo \"{{ issue.title }}\"", "h", ctx) == "echo \"Fix login\"");
    CHECK(render_shell("echo '{{ issue.title }}'", "h", ctx) == "echo 'Fix login'");
    CHECK(render_shell("echo {{ issue.title }}", "h", ctx) == "echo 'Fix login'"); // one word, as intended
}

TEST_CASE("injection: exec markers arriving through variables are never run", "[template][security]") {
    vik::test::TempDir dir;
    int runs = 0;
    CommandRunner runner = [&](const std::string &cmd) {
        ++runs;
        return run_sh(dir.path, cmd);
    };
    for (const auto &title : kHostile) {
        json::object ctx{{"issue", json::object{{"title", title}, {"description", title}}}};
        auto segs = Template("Title: {{ issue.title }}\nBody: {{ issue.description }}", "prompt").render(ctx);
        std::string prompt = expand_prompt_commands(segs, runner);
        CHECK(prompt == "Title: " + title + "\nBody: " + title);
    }
    CHECK(runs == 0);
    CHECK_FALSE(fs::exists(dir / "pwned"));
}

TEST_CASE("injection: exec written in the template runs, with substituted values escaped", "[template][security]") {
    vik::test::TempDir dir;
    std::vector<std::string> commands;
    CommandRunner runner = [&](const std::string &cmd) {
        commands.push_back(cmd);
        return run_sh(dir.path, cmd);
    };
    json::object ctx{{"issue", json::object{{"title", "$(touch pwned); echo hi"}, {"id", "7"}}}};
    auto segs = Template("A: `exec(echo one)`\nB: !`exec(printf '%s' {{ issue.title }})`\nC: `exec(echo {{ issue.id }})`", "p")
                    .render(ctx);
    std::string prompt = expand_prompt_commands(segs, runner);
    CHECK(prompt == "A: one\nB: $(touch pwned); echo hi\nC: 7");
    REQUIRE(commands.size() == 3);
    CHECK(commands[1] == "printf '%s' '$(touch pwned); echo hi'");
    CHECK_FALSE(fs::exists(dir / "pwned"));
}
