// Hot reload of workflow.yml (docs/configuration.md, "Reloading the workflow") in-process on a
// manual clock: an edit is applied at the next intake to new runs (prompts, scheduling rules),
// an invalid edit or one that changes a restart-only key keeps the last good config, and the
// queued work of a removed stage is released. SIGHUP through the real binary is in
// tests/e2e/scheduling_test.cpp.
#include "orchestrator/scheduler_harness.hpp"

#include <catch2/catch.hpp>

using namespace vik::test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

std::string stage(const std::string &name, const std::string &prompt) {
    return "  stages:\n    " + name + ":\n      when: {state: todo}\n      agent: bot\n      prompt: '" + prompt + "'\n";
}

} // namespace

TEST_CASE("reload: an edited workflow applies to new runs, a bad edit keeps the last good config",
          "[scheduling][rules][reload]") {
    SchedulerHarness h;
    Project &p = h.project;
    fs::path prompts = p.dir / "prompts.log";
    // Logs its prompt and completes; the issue stays in todo, so a continuation follows.
    p.agent("agent.sh", "#!/bin/sh\n{ cat; echo; } >> " + shell_quote(prompts.string()) + "\necho '{\"kind\":\"completed\"}'\n");
    pull_from_file(p, R"([{"id":"A-1","title":"t","state":"todo"}])");
    const std::string rules = "scheduling: {continuation_delay_sec: 1000, max_continuations: 5}\n";
    h.start(harness_workflow(p, stage("work", "v1 {{ issue.id }}"), rules));
    REQUIRE(h.run_until([&] { return lines(prompts) == 1 && h.view().retrying.size() == 1; }));

    // A valid edit: taken at the next intake; the queued continuation runs with the new prompt.
    write_file(p.workflow(), harness_workflow(p, stage("work", "v2 {{ issue.id }} attempt={{ attempt }}"),
                                              "loop: {max_issue_concurrency: 4}\n" + rules));
    h.next_intake(60s);
    CHECK_THAT(h.log(), Catch::Contains("workflow reloaded (the file changed) generation=1 stages=1 agents=1 "
                                        "max_issue_concurrency=4; running sessions keep the config they started with"));
    CHECK(h.view().max_issue_concurrency == 4);
    h.advance(940s); // the continuation queued before the edit, due 1000 s after run 1
    REQUIRE(h.run_until([&] { return lines(prompts) == 2 && h.view().retrying.size() == 1; }));
    CHECK(read_file(prompts) == "v1 A-1\nv2 A-1 attempt=2\n");

    // An invalid edit is refused with its diagnostics, once; the last good config stays.
    write_file(p.workflow(), harness_workflow(p, "  stages:\n    work: {when: {state: todo}, agent: ghost, prompt: x}\n", rules));
    h.next_intake(60s);
    CHECK_THAT(h.log(), Catch::Contains("workflow reload refused (the file changed): invalid workflow config:\nagent profile "
                                        "'ghost' set for 'issue.stages.work.agent' is not defined in agents configuration "
                                        "section; the config loaded before stays in force"));
    h.next_intake(60s);
    CHECK(count(h.log(), "workflow reload refused") == 1);
    h.advance(880s);
    REQUIRE(h.run_until([&] { return lines(prompts) == 3 && h.view().retrying.size() == 1; }));
    CHECK_THAT(read_file(prompts), Catch::EndsWith("v2 A-1 attempt=3\n"));

    // A key only a restart can apply refuses the whole edit.
    std::string moved_pull = harness_workflow(p, stage("work", "v9"), rules);
    moved_pull.replace(moved_pull.find("pull.sh"), 7, "other.sh");
    write_file(p.workflow(), moved_pull);
    h.next_intake(60s);
    CHECK_THAT(h.log(), Catch::Contains("workflow reload refused (the file changed): changed keys that only a restart "
                                        "applies: issues.pull.command; the config loaded before stays in force"));

    // A removed stage: its queued continuation is released, the new stage takes the issue.
    write_file(p.workflow(), harness_workflow(p, stage("review", "v3 {{ issue.id }} attempt={{ attempt }}"), rules));
    h.next_intake(60s);
    CHECK_THAT(h.log(),
               Catch::Contains("workflow reloaded (the file changed) generation=2 stages=1 agents=1 "
                               "max_issue_concurrency=10; 1 queued, blocked or routed pair(s) released (their stage or route "
                               "target was removed)"));
    REQUIRE(h.run_until([&] { return lines(prompts) == 4; }));
    CHECK_THAT(read_file(prompts), Catch::EndsWith("v3 A-1 attempt=1\n"));
    // The removed stage's claim is gone; the new stage's continuation is queued.
    REQUIRE(h.run_until([&] { return h.view().retrying.size() == 1; }));
    CHECK(h.view().retrying[0].stage == "review");
    CHECK(h.view().blocked.empty());
}
