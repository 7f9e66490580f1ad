// Restart recovery through the durable store (docs/store.md, "Recovery rules"): a host dies with
// one run going and one retry pending; the next host on the same workflow resumes both with their
// attempt counts, waits only the rest of the pending delay, and keeps blocks blocked. In-process
// on a manual clock with the real SQLite store; the SIGKILL of the real binary is in
// tests/e2e/durable_state_test.cpp.
#include "orchestrator/scheduler_harness.hpp"
#include "store/sqlite_store.hpp"

#include <catch2/catch.hpp>

using namespace vik::test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

const std::string kStages = "  stages:\n    work:\n      when: {state: todo}\n      agent: bot\n"
                            "      prompt: '{{ issue.id }} attempt={{ attempt }} kind={{ retry_kind }}'\n";

// R-1 fails at once (a retry queued); K-1 and B-1 run until stopped (B-1 by an operator, which
// blocks it; K-1 by the host's death).
std::string agent_script(const Project &p) {
    return "#!/bin/sh\n{ cat; echo; } >> " + shell_quote((p.dir / "prompts.log").string()) +
           "\ncase \"$VIK_ISSUE_ID\" in\n  R-1) exit 1 ;;\n  *) exec sleep 1000 ;;\nesac\n";
}

} // namespace

TEST_CASE("recovery: a restarted host resumes interrupted runs, pending retries and blocks with their attempts",
          "[scheduling][rules][store]") {
    auto project = std::make_shared<Project>();
    Project &p = *project;
    p.agent("agent.sh", agent_script(p));
    pull_from_file(p, R"([{"id":"R-1","title":"t","state":"todo"},{"id":"K-1","title":"t","state":"todo"},
                          {"id":"B-1","title":"t","state":"todo"}])");
    std::string workflow = harness_workflow(p, kStages, "");
    std::chrono::system_clock::time_point died_at;
    {
        auto db = open_store(p);
        SchedulerHarness first(project);
        first.start(workflow, db.get());
        REQUIRE(first.run_until([&] {
            auto v = first.view();
            return v.retrying.size() == 1 && v.running.size() == 2 && lines(p.dir / "prompts.log") == 3;
        }));
        REQUIRE(first.surface().cancel("B-1").value() == 1);
        REQUIRE(first.run_until([&] { return first.view().blocked.size() == 1; }));
        first.advance(4s); // 6 s of R-1's 10 s backoff left
        REQUIRE(db->flush(5s).has_value());
        died_at = first.clock->wall_now();
        first.crash();
    }
    CHECK(lines(p.dir / "prompts.log") == 3);

    auto db = open_store(p);
    SchedulerHarness second(project);
    second.clock = std::make_shared<vik::orchestrator::ManualClock>(died_at); // it starts the moment the first died
    second.start(workflow, db.get());
    CHECK_THAT(second.log(), Catch::Contains("store resumed: 1 interrupted run(s), 1 interrupted claim(s) to retry, 1 "
                                             "pending retry, 1 blocked pair(s)"));
    auto v = second.view();
    REQUIRE(v.retrying.size() == 2);
    REQUIRE(v.blocked.size() == 1);
    CHECK(v.blocked[0].issue_id == "B-1");
    CHECK(v.blocked[0].reason == "cancelled by an operator");
    for (const auto &r : v.retrying) {
        CHECK(r.attempt == 2);
        CHECK(r.kind == "failure");
        if (r.issue_id == "K-1") CHECK(r.last_error == "interrupted: vik-host stopped while this run was running");
    }
    // The first intake sees every issue claimed: nothing runs at once.
    REQUIRE(second.wait_intakes(1));
    second.settle();
    CHECK(lines(p.dir / "prompts.log") == 3);
    CHECK(second.view().running.empty());

    // R-1 waits only the rest of its delay: 6 s.
    second.advance(5900ms);
    second.settle();
    CHECK(count(read_file(p.dir / "prompts.log"), "R-1 attempt=2") == 0);
    second.advance(100ms);
    REQUIRE(second.run_until([&] { return count(read_file(p.dir / "prompts.log"), "R-1 attempt=2 kind=failure") == 1; }));
    // K-1's interrupted run is its first failure: 10 s of backoff from the restart.
    CHECK(count(read_file(p.dir / "prompts.log"), "K-1 attempt=2") == 0);
    second.advance(4s);
    REQUIRE(second.run_until([&] { return count(read_file(p.dir / "prompts.log"), "K-1 attempt=2 kind=failure") == 1; }));
    CHECK(count(read_file(p.dir / "prompts.log"), "B-1") == 1); // blocked stays blocked

    // The store has every run: the interrupted one marked so.
    REQUIRE(db->flush(5s).has_value());
    auto h = db->history({std::string("K-1"), 10});
    REQUIRE(h.has_value());
    REQUIRE(h->size() == 2);
    CHECK(h->at(1).outcome == vik::store::RunOutcome::interrupted);
    CHECK(h->at(1).attempt == 1);
    CHECK(h->at(0).attempt == 2);
}

TEST_CASE("recovery: a workspace whose issue was closed while the host was down is cleaned with before_remove",
          "[scheduling][rules][store]") {
    SchedulerHarness h;
    Project &p = h.project;
    // The tracker's pull leaves closed issues out (as GitHub's query of open issues does); fetch
    // by id still answers them.
    p.issues(R"([{"id":"W-1","title":"t","state":"closed"},{"id":"O-1","title":"t","state":"review"}])");
    fs::create_directories(p.workspace("W-1"));
    fs::create_directories(p.workspace("O-1"));
    fs::create_directories(p.workspace("GONE-1")); // its issue no longer exists anywhere
    write_file(p.workspace("W-1") / "work.txt", "w");
    std::string seen = shell_quote((p.dir / "before_remove.log").string());
    h.start("agents:\n  bot:\n    runtime: scripted\n    model: none\n    settings: {command: /bin/true}\n"
            "issues:\n  tracker: {kind: file, path: issues.json, pull_skips_states: [closed]}\n  pull: {idle_sec: 60}\n"
            "issue:\n  hooks:\n    before_remove: echo \"$VIK_ISSUE_ID\" >> " +
            seen +
            "\n  stages:\n    work: {when: {state: todo}, agent: bot, prompt: p}\n"
            "scheduling: {terminal_states: [closed]}\n");
    REQUIRE(h.run_until([&] { return !fs::exists(p.workspace("W-1")); }));
    h.settle();
    CHECK(read_file(p.dir / "before_remove.log") == "W-1\n");
    CHECK(fs::exists(p.workspace("O-1")));    // open, merely not in a stage's state: kept
    CHECK(fs::exists(p.workspace("GONE-1"))); // not found by id: kept (docs/decisions.md)
    CHECK_THAT(h.log(), Catch::Contains("workspace inventory: issue is in terminal state issue_id=W-1 state=closed"));
}

TEST_CASE("recovery: keep_terminal_workspaces_days keeps a terminal issue's workspace until it has been untouched that long",
          "[scheduling][rules][store]") {
    SchedulerHarness h;
    Project &p = h.project;
    p.issues(R"([{"id":"K-1","title":"t","state":"done"}])");
    fs::create_directories(p.workspace("K-1"));
    std::string seen = shell_quote((p.dir / "before_remove.log").string());
    h.start("agents:\n  bot:\n    runtime: scripted\n    model: none\n    settings: {command: /bin/true}\n"
            "issues:\n  tracker: {kind: file, path: issues.json}\n  pull: {idle_sec: 60}\n"
            "issue:\n  hooks:\n    before_remove: echo \"$VIK_ISSUE_ID\" >> " +
            seen +
            "\n  stages:\n    work: {when: {state: todo}, agent: bot, prompt: p}\n"
            "scheduling: {terminal_states: [done], keep_terminal_workspaces_days: 2}\n");
    REQUIRE(h.wait_intakes(1));
    h.settle();
    CHECK(fs::exists(p.workspace("K-1")));
    CHECK_THAT(h.log(), Catch::Contains("terminal workspace kept issue_id=K-1 until "));
    h.next_intake(std::chrono::hours(47)); // not yet two days
    CHECK(fs::exists(p.workspace("K-1")));
    CHECK(count(h.log(), "terminal workspace kept issue_id=K-1") == 1); // said once
    h.next_intake(std::chrono::hours(1) + 1s);
    REQUIRE(h.run_until([&] { return !fs::exists(p.workspace("K-1")); }));
    h.settle();
    CHECK(read_file(p.dir / "before_remove.log") == "K-1\n");
}
