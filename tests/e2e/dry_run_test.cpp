// `vik-host run --dry-run` through the real binary: the order, the waits and the holds the
// scheduler would apply, prompts and hooks rendered with exec() not run, and nothing changed.
#include "e2e/e2e_support.hpp"

#include <catch2/catch.hpp>

using namespace vik::test;
namespace fs = std::filesystem;

TEST_CASE("dry run: what would launch, wait or stay blocked, rendered, and nothing changes", "[e2e][dry-run]") {
    Project p;
    std::string ran = shell_quote((p.dir / "ran.log").string());
    p.agent("agent.sh", "#!/bin/sh\ncat >/dev/null\necho \"$VIK_ISSUE_ID\" >> " + ran + "\nexit 1\n");
    p.issues(R"([{"id":"B-1","title":"blocked one","state":"todo","priority":1}])");
    std::string wf = "agents:\n  bot: {runtime: scripted, model: none, settings: {command: " + (p.dir / "agent.sh").string() +
                     "}}\nissues:\n  tracker: {kind: file, path: issues.json}\n  pull: {idle_sec: 1}\nissue:\n"
                     "  hooks:\n    after_create: echo created {{ issue.id }}\n"
                     "  stages:\n    work:\n      when: {state: todo}\n      agent: bot\n"
                     "      prompt: 'Do {{ issue.title }}, attempt {{ attempt }}: `exec(touch " +
                     (p.dir / "exec-ran").string() +
                     ")`'\n"
                     "      gate: {command: make test, agent: bot, prompt: review, human: true}\n"
                     "scheduling: {max_attempts: 1, terminal_states: [done]}\nloop: {max_issue_concurrency: 2";
    // A first run blocks B-1 (its agent fails once; max_attempts 1).
    write_file(p.workflow(), wf + ", max_iterations: 1}\n");
    auto first = p.run();
    REQUIRE(first.exit_code == 0);
    REQUIRE(read_file(p.dir / "ran.log") == "B-1\n");
    fs::remove(p.dir / "exec-ran");

    p.issues(R"([{"id":"B-1","title":"blocked one","state":"todo","priority":1},
                 {"id":"N-2","title":"$(touch pwned) second","state":"todo","priority":2},
                 {"id":"N-3","title":"third","state":"todo","priority":3},
                 {"id":"N-4","title":"fourth","state":"todo","priority":4},
                 {"id":"D-1","title":"closed","state":"done"}])");
    write_file(p.workflow(), wf + "}\n");
    auto r = run_host({"run", "--dry-run", p.workflow().string()}, p.dir.path);
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    CHECK_THAT(r.out, Catch::Contains("dry run: 5 issue(s) pulled; nothing is changed"));
    CHECK_THAT(r.out, Catch::Contains("B-1 [todo] blocked one\n  stage work: blocked since "));
    CHECK_THAT(r.out, Catch::Contains("(cleared by a state change or `vik-host issue retry B-1`)"));
    // B-1 holds no slot: N-2 and N-3 take the two, N-4 waits.
    CHECK_THAT(r.out, Catch::Contains("N-2 [todo] $(touch pwned) second\n  would launch (#1)"));
    CHECK_THAT(r.out, Catch::Contains("N-3 [todo] third\n  would launch (#2)"));
    CHECK_THAT(r.out, Catch::Contains("N-4 [todo] fourth\n  waits: no free slot (loop.max_issue_concurrency = 2)"));
    CHECK_THAT(r.out, Catch::Contains("D-1 [done] closed\n  terminal: nothing to do"));
    CHECK_THAT(r.out, Catch::Contains("      | echo created N-2"));
    CHECK_THAT(r.out, Catch::Contains("| Do $(touch pwned) second, attempt 1: <exec not run in a dry run: touch "));
    CHECK_THAT(r.out, Catch::Contains("      then: gate command, then review by agent bot (verdict_file .vik/verdict.json), then "
                                      "a human's approval\n"));
    CHECK_THAT(r.out, Catch::Contains("2 issue(s) would launch now."));
    // Nothing happened: no agent, no exec(), no workspace, no hook, no injected command.
    CHECK(read_file(p.dir / "ran.log") == "B-1\n");
    CHECK_FALSE(fs::exists(p.dir / "exec-ran"));
    CHECK_FALSE(fs::exists(p.workspace("N-2")));
    CHECK_FALSE(fs::exists(p.dir / "pwned"));
    auto h = run_host({"history", "--json", p.workflow().string()}, p.dir.path);
    CHECK(count(h.out, "\"run_id\"") == 1);
}

TEST_CASE("dry run: a run awaiting a human gate holds its issue wherever the agent moved it", "[e2e][dry-run][gates]") {
    Project p;
    p.agent("agent.sh", "#!/bin/sh\ncat >/dev/null\n\"$VIK_HOST_BIN\" issue set-state \"$VIK_ISSUE_ID\" review > /dev/null\n"
                        "echo '{\"kind\":\"completed\"}'\n");
    p.issues(R"([{"id":"G-1","title":"gated","state":"build"}])");
    std::string wf = "agents:\n  bot: {runtime: scripted, model: none, settings: {command: " + (p.dir / "agent.sh").string() +
                     "}}\nissues:\n  tracker: {kind: file, path: issues.json}\n  pull: {idle_sec: 1}\nissue:\n  stages:\n"
                     "    build: {when: {state: build}, agent: bot, prompt: build, gate: {human: true}}\n"
                     "    review: {when: {state: review}, agent: bot, prompt: review}\n";
    write_file(p.workflow(), wf + "loop: {max_iterations: 1}\n");
    auto first = p.run();
    INFO(first.out << first.err);
    REQUIRE(first.exit_code == 0);
    CHECK_THAT(first.out, Catch::Contains("stage awaits approval issue_id=G-1 stage=build"));
    write_file(p.workflow(), wf);
    auto r = run_host({"run", "--dry-run", p.workflow().string()}, p.dir.path);
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    CHECK_THAT(r.out, Catch::Contains("G-1 [review] gated\n  stage build: awaits approval since "));
    CHECK_THAT(r.out, Catch::Contains("(`vik-host gate approve G-1` or `vik-host gate reject G-1`)"));
    CHECK_THAT(r.out, Catch::Contains("0 issue(s) would launch now."));
}
