// Hostile workflow files: the loader and `doctor` answer promptly with an error naming the file
// and line, and never exhaust memory or the stack (docs/security.md quotes these cases).
#include "support/test_support.hpp"
#include "workflow/loader.hpp"
#include "workflow/yaml_guard.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <sys/resource.h>

using namespace vik::test;
namespace fs = std::filesystem;

namespace {

const char *kTail = R"(agents:
  coder: {runtime: codex, model: gpt-5, settings: {lol: *a8}}
issues: {pull: {command: x}}
issue:
  stages:
    plan: {when: {state: todo}, agent: coder, prompt: hi}
)";

// "Billion laughs": nine levels of ten aliases each, 10^9 nodes once expanded, ~700 bytes.
std::string alias_bomb() {
    std::string text = "x-anchors:\n  a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n";
    for (int i = 1; i <= 8; ++i) {
        text += "  a" + std::to_string(i) + ": &a" + std::to_string(i) + " [";
        for (int k = 0; k < 10; ++k)
            text += (k ? ", *a" : "*a") + std::to_string(i - 1);
        text += "]\n";
    }
    return text + kTail;
}

long children_max_rss_kb() {
    rusage u{};
    getrusage(RUSAGE_CHILDREN, &u);
    return u.ru_maxrss;
}

} // namespace

TEST_CASE("hostile yaml: an alias bomb through doctor is refused at once naming file and line", "[security][doctor]") {
    TempDir dir;
    std::string text = alias_bomb();
    REQUIRE(text.size() < 1000);
    write_file(dir / "workflow.yml", text);
    auto start = std::chrono::steady_clock::now();
    auto r = run_host({"doctor", (dir / "workflow.yml").string()}, {}, {}, 30);
    auto took = std::chrono::steady_clock::now() - start;
    INFO(r.err);
    CHECK(r.exit_code == 1);
    CHECK(r.out.empty());
    // The fourth level is where the expansion first passes 100,000 nodes.
    CHECK_THAT(r.err, Catch::StartsWith((dir / "workflow.yml").string() + ":6:"));
    CHECK_THAT(r.err, Catch::Contains("invalid YAML: aliases expand to more than 100000 nodes"));
    CHECK_THAT(r.err, Catch::Contains("write the repeated values out, or nest fewer aliases"));
    CHECK(took < std::chrono::seconds(10));
    // Before the guard: 2 GB and counting. The bound leaves room for a sanitizer build (about 200 MiB
    // for a doctor run there, its shadow memory included).
    CHECK(children_max_rss_kb() < 400 * 1024);
}

TEST_CASE("hostile yaml: aliases within the limit still load and expand", "[security][workflow]") {
    std::string text = "x-anchors: {env: &env {A: '1', B: '2'}}\n"
                       "agents:\n  one: {runtime: codex, model: m, env: *env}\n  two: {runtime: codex, model: m, env: *env}\n"
                       "issues: {pull: {command: x}}\n"
                       "issue:\n  stages:\n    plan: {when: {state: todo}, agent: one, prompt: hi}\n";
    auto r = vik::workflow::load_workflow_text(text, "/w/workflow.yml");
    REQUIRE(r);
    REQUIRE(r->config.agents.size() == 2);
    CHECK(r->config.agents[1].env.size() == 2);
    // The limit counts nodes added through aliases, not nodes written out.
    CHECK_FALSE(vik::workflow::check_yaml_limits(text, "/w/workflow.yml", {10, 1024}));
    CHECK(vik::workflow::check_yaml_limits(text, "/w/workflow.yml", {9, 1024}));
}

TEST_CASE("hostile yaml: an alias cycle, deep nesting and endless input are load errors", "[security][workflow]") {
    using vik::workflow::load_workflow_text;
    auto cycle = load_workflow_text("agents: &a {x: *a}\n", "/w/workflow.yml");
    REQUIRE_FALSE(cycle);
    CHECK(cycle.error().message == "/w/workflow.yml:1:16: invalid YAML: alias '*a' refers to a node that contains it (a cycle); "
                                   "aliases may only repeat a node defined before them");

    auto deep = load_workflow_text("agents: " + std::string(100000, '[') + std::string(100000, ']') + "\n", "/w/workflow.yml");
    REQUIRE_FALSE(deep);
    CHECK_THAT(deep.error().message, Catch::Contains("invalid YAML: nesting deeper than 500 levels"));

    auto undefined = load_workflow_text("agents: *nope\n", "/w/workflow.yml");
    REQUIRE_FALSE(undefined);
    CHECK(undefined.error().message == "/w/workflow.yml:1:9: invalid YAML: the referenced anchor is not defined");

    auto endless = vik::workflow::load_workflow("/dev/zero");
    REQUIRE_FALSE(endless);
    CHECK(endless.error().message ==
          "/dev/zero: the workflow file is larger than 4 MiB; a workflow is a few kilobytes (check that this is the right file)");
}

TEST_CASE("hostile templates: a prompt nested thousands of levels deep is a diagnostic, not a crash", "[security][doctor]") {
    TempDir dir;
    write_file(dir / "deep.md", "{{ " + std::string(50000, '(') + "1" + std::string(50000, ')') + " }}");
    std::string blocks;
    for (int i = 0; i < 50000; ++i)
        blocks += "{% if x %}";
    write_file(dir / "blocks.md", blocks);
    write_file(dir / "workflow.yml",
               "agents:\n  coder: {runtime: codex, model: gpt-5}\nissues: {pull: {command: x}}\nissue:\n  stages:\n"
               "    a: {when: {state: todo}, agent: coder, prompt_file: deep.md}\n"
               "    b: {when: {state: todo}, agent: coder, prompt_file: blocks.md}\n");
    auto r = run_host({"doctor", (dir / "workflow.yml").string()}, {}, {}, 30);
    INFO(r.err);
    CHECK(r.exit_code == 1);
    CHECK_THAT(r.out, Catch::Contains("[error] 'issue.stages.a.prompt_file' is not a valid template: " +
                                      (dir / "deep.md").string() + ":1:1: tag too long (more than 2000 tokens)"));
    CHECK_THAT(r.out, Catch::Contains("[error] 'issue.stages.b.prompt_file' is not a valid template: " +
                                      (dir / "blocks.md").string() + ":1:637: nested too deeply (more than 64 levels)"));
}

TEST_CASE("hostile templates: doctor reports a hook that would substitute issue text into a heredoc body", "[security][doctor]") {
    TempDir dir;
    write_file(
        dir / "workflow.yml",
        "agents:\n  coder: {runtime: codex, model: gpt-5}\nissues: {pull: {command: x}}\nissue:\n"
        "  hooks:\n    after_create: |\n      # Don't remove\n      cat > NOTES.md <<EOF\n      {{ issue.title }}\n      EOF\n"
        "  stages:\n    a: {when: {state: todo}, agent: coder, prompt: hi}\n");
    auto r = run_host({"doctor", (dir / "workflow.yml").string()}, {}, {}, 30);
    CHECK(r.exit_code == 1);
    CHECK_THAT(r.out,
               Catch::Contains(
                   "[error] 'issue.hooks.after_create' substitutes a value where the shell cannot be kept from running it: " +
                   (dir / "workflow.yml").string() + ":6:"));
    CHECK_THAT(r.out,
               Catch::Contains("(line 3, column 1 of the template): a value cannot be substituted here: inside a heredoc body"));
    CHECK_THAT(r.out, Catch::Contains("\"$VIK_ISSUE_TITLE\""));
    auto j = run_host({"doctor", "--json", (dir / "workflow.yml").string()}, {}, {}, 30);
    CHECK_THAT(j.out, Catch::Contains("unsafe_shell_template"));
}
