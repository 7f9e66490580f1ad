// Failure routing (issue.stages.S.on_fail; docs/scheduling.md, "Failure routing") in-process on a
// manual clock, with the file tracker (which can set states) and the real SQLite store: a failing
// stage retried until after_attempts, then routed to another stage whose prompt sees the failure;
// the route count survives a restart and max_routes ends the cycle with a block. The same cycle
// through the real binary is in tests/e2e/scheduling_test.cpp.
#include "orchestrator/scheduler_harness.hpp"
#include "store/sqlite_store.hpp"

#include <catch2/catch.hpp>

#include <algorithm>

using namespace vik::test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

// test always fails; fix logs its prompt, moves the issue back to testing and completes.
std::string agent_script(const Project &p) {
    std::string log = shell_quote((p.dir / "prompts.log").string());
    std::string issues = shell_quote((p.dir / "issues.json").string());
    return "#!/bin/sh\n{ cat; echo; } >> " + log + "\ncase \"$VIK_ISSUE_STAGE\" in\n  test) exit 1 ;;\n" +
           "  fix) sed -i 's/\"fixing\"/\"testing\"/' " + issues + "\n       echo '{\"kind\":\"completed\"}' ;;\nesac\n";
}

std::string workflow(const Project &p, const std::string &on_fail, const std::string &rest) {
    return "agents:\n  bot:\n    runtime: scripted\n    model: none\n    settings: {command: " + (p.dir / "agent.sh").string() +
           "}\nissues:\n  tracker: {kind: file, path: issues.json}\n  pull: {idle_sec: 60}\nissue:\n  stages:\n"
           "    test:\n      when: {state: testing}\n      agent: bot\n      on_fail: " +
           on_fail +
           "\n      prompt: 'test attempt={{ attempt }} kind={{ retry_kind }} failure={{ failure.stage }}'\n"
           "    fix:\n      when: {state: fixing}\n      agent: bot\n"
           "      prompt: 'fix after {{ failure.stage }}: {{ failure.reason }} (attempts={{ failure.attempts }} "
           "routes={{ failure.routes }})'\n" +
           rest;
}

constexpr const char *kExit1 = "agent exited with code 1 before a terminal event";

} // namespace

TEST_CASE("routing: a stage failing after_attempts times moves its issue to the on_fail stage, whose prompt sees the failure",
          "[scheduling][rules][routing][store]") {
    auto project = std::make_shared<Project>();
    Project &p = *project;
    p.agent("agent.sh", agent_script(p));
    p.issues(R"([{"id":"RT-1","title":"t","state":"testing"}])");
    std::string wf = workflow(p, "{to: fix, after_attempts: 2}", "scheduling: {max_routes: 1}\n");
    fs::path prompts = p.dir / "prompts.log";
    std::chrono::system_clock::time_point died_at;
    {
        auto db = open_store(p);
        SchedulerHarness h(project);
        h.start(wf, db.get());
        // The first failure is retried with the usual backoff...
        REQUIRE(h.run_until([&] { return h.view().retrying.size() == 1; }));
        CHECK(first_issue_state(p) == "testing");
        // ...the second routes: the tracker moves the issue, the fix stage starts at once (no idle_sec wait).
        h.advance(10s);
        REQUIRE(h.run_until([&] { return lines(prompts) == 3; }));
        CHECK_THAT(h.log(), Catch::Contains("stage failed; routing issue_id=RT-1 stage=test to stage=fix (state 'fixing')"));
        CHECK(read_file(prompts) == std::string("test attempt=1 kind=first failure=\n"
                                                "test attempt=2 kind=failure failure=\n"
                                                "fix after test: ") +
                                        kExit1 + " (attempts=2 routes=1)\n");
        // The routed pair shows as blocked with its route until the issue is back in testing;
        // listeners hear `routed`, not `blocked` (nobody has to act on it).
        auto blocked = h.view().blocked;
        REQUIRE(blocked.size() == 1);
        CHECK(blocked[0].stage == "test");
        CHECK(blocked[0].reason == std::string("failed 2 time(s); routed to stage 'fix' (route 1 of 1); last error: ") + kExit1);
        auto kinds = [&](const std::string &kind) {
            return std::count_if(h.changes.begin(), h.changes.end(),
                                 [&](const auto &c) { return c.issue_id == "RT-1" && c.stage == "test" && c.kind == kind; });
        };
        CHECK(kinds("routed") == 1);
        CHECK(kinds("blocked") == 0);
        // fix moved the issue back to testing (its continuation check sees that and releases).
        REQUIRE(h.run_until([&] { return first_issue_state(p) == "testing" && h.view().running.empty(); }));
        h.advance(1s);
        h.settle();
        REQUIRE(db->flush(5s).has_value());
        died_at = h.clock->wall_now();
        h.crash();
    }
    // A restarted host still knows the route: the test stage runs again as a first run, and its
    // next failures end in a block (scheduling.max_routes = 1) instead of another route.
    auto db = open_store(p);
    SchedulerHarness second(project);
    second.clock = std::make_shared<vik::orchestrator::ManualClock>(died_at);
    second.start(wf, db.get());
    REQUIRE(second.run_until([&] { return lines(prompts) == 4 && second.view().retrying.size() == 1; }));
    CHECK_THAT(read_file(prompts), Catch::EndsWith("test attempt=3 kind=first failure=\n"));
    second.advance(10s);
    INFO(second.log());
    REQUIRE(second.run_until([&] { return second.view().blocked.size() == 1 && second.view().running.empty(); }));
    CHECK(lines(prompts) == 5);
    CHECK(second.view().blocked[0].reason ==
          std::string("failed 2 time(s) after 1 route(s) to stage 'fix' (scheduling.max_routes = 1); last error: ") + kExit1);
    CHECK(first_issue_state(p) == "testing");
    // Blocked stays blocked: no route, no run.
    second.next_intake(60s);
    CHECK(lines(prompts) == 5);
    CHECK(first_issue_state(p) == "testing");
}

TEST_CASE("routing: on_fail block blocks at the first failure, and a tracker that cannot set states blocks the route",
          "[scheduling][rules][routing]") {
    SECTION("block") {
        SchedulerHarness h;
        Project &p = h.project;
        p.agent("agent.sh", agent_script(p));
        p.issues(R"([{"id":"BL-1","title":"t","state":"testing"}])");
        h.start(workflow(p, "block", ""));
        REQUIRE(h.run_until([&] { return h.view().blocked.size() == 1; }));
        CHECK(h.view().blocked[0].reason == std::string("failed 1 time(s) (on_fail: block); last error: ") + kExit1);
        CHECK(h.view().retrying.empty());
    }
    SECTION("a read-only tracker") {
        SchedulerHarness h;
        Project &p = h.project;
        p.agent("agent.sh", agent_script(p));
        // The file tracker reads YAML files but never rewrites them.
        write_file(p.dir / "issues.yml", "- {id: RO-1, title: t, state: testing}\n");
        std::string wf = workflow(p, "fix", "");
        wf.replace(wf.find("path: issues.json"), 17, "path: issues.yml");
        h.start(wf);
        REQUIRE(
            h.run_until([&] { return h.view().blocked.size() == 1 && h.log().find("could not route") != std::string::npos; }));
        CHECK_THAT(h.view().blocked[0].reason, Catch::StartsWith("failed; on_fail could not route to stage 'fix': setting state "
                                                                 "'fixing' failed: ") &&
                                                   Catch::EndsWith(std::string("; last error: ") + kExit1));
        h.next_intake(60s);
        CHECK(lines(p.dir / "prompts.log") == 1); // nothing ran again, and fix never ran
    }
}
