// Human gates (issue.stages.S.gate.human; docs/scheduling.md, "Gates") in-process on a manual
// clock with the file tracker and the SQLite store: a completed run waits for a human's verdict,
// holding its issue (the stage the agent moved it to does not start), across a restart; a wait
// longer than notify_after_sec is announced once; approval lets the run stand, a rejection runs
// the stage again with the feedback in its prompt, the issue moved back from where the agent put it.
#include "orchestrator/scheduler_harness.hpp"

#include <catch2/catch.hpp>

#include <algorithm>

using namespace vik::test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

// build: logs its prompt, moves the issue to review and completes; review: logs its prompt,
// moves the issue to done and completes.
std::string agent_script(const Project &p) {
    std::string dir = shell_quote(p.dir.path.string());
    return "#!/bin/sh\n{ cat; echo; } >> " + dir + "/prompts.log\n" + "case \"$VIK_ISSUE_STAGE\" in\n" +
           "  build) sed -i 's/\"build\"/\"review\"/' " + dir + "/issues.json ;;\n" +
           "  review) sed -i 's/\"review\"/\"done\"/' " + dir + "/issues.json ;;\nesac\n" + "echo '{\"kind\":\"completed\"}'\n";
}

std::string workflow(const Project &p, const std::string &gate) {
    return file_tracker_workflow(p,
                                 "    build:\n      when: {state: build}\n      agent: bot\n"
                                 "      prompt: 'build kind={{ retry_kind }} feedback={{ gate_feedback }}'\n"
                                 "      gate: " +
                                     gate +
                                     "\n"
                                     "    review:\n      when: {state: review}\n      agent: bot\n      prompt: 'review'\n",
                                 "scheduling: {terminal_states: [done]}\n");
}

size_t count_kind(const std::vector<vik::orchestrator::Change> &changes, const std::string &kind) {
    return static_cast<size_t>(std::count_if(changes.begin(), changes.end(), [&](const auto &c) { return c.kind == kind; }));
}

bool awaiting(SchedulerHarness &h) {
    auto v = h.view();
    return v.blocked.size() == 1 && v.blocked[0].awaiting_approval;
}

} // namespace

TEST_CASE("human gates: a completed run waits for approval across a restart, is announced once after notify_after_sec, and "
          "approval lets the issue go on",
          "[scheduling][rules][gates][store]") {
    auto project = std::make_shared<Project>();
    Project &p = *project;
    p.agent("agent.sh", agent_script(p));
    p.issues(R"([{"id":"H-1","title":"t","state":"build"}])");
    fs::path prompts = p.dir / "prompts.log";
    std::chrono::system_clock::time_point died_at;
    {
        auto db = open_store(p);
        SchedulerHarness h(project);
        h.start(workflow(p, "{human: true, notify_after_sec: 3600}"), db.get());
        REQUIRE(h.run_until([&] { return awaiting(h); }));
        CHECK(first_issue_state(p) == "review"); // where the agent put it
        CHECK_THAT(h.view().blocked[0].reason, Catch::Contains("vik-host gate approve H-1"));
        // Held: the next intake sees the issue in review, but review does not start.
        h.next_intake(60s);
        h.settle();
        CHECK(read_file(prompts) == "build kind=first feedback=\n");
        auto v = h.view();
        REQUIRE(v.waiting.size() == 1);
        CHECK_THAT(v.waiting[0].reason, Catch::Contains("waits for approval of stage build"));
        CHECK(count_kind(h.changes, "awaiting_approval") == 1);
        CHECK(count_kind(h.changes, "blocked") == 0); // not a block: webhooks hear of it only after the wait
        // `issue retry` does not answer a gate.
        auto retried = h.surface().retry("H-1", "");
        REQUIRE(retried.has_value());
        CHECK(*retried == 0);
        h.advance(1800s);
        h.settle();
        CHECK(count_kind(h.changes, "gate_waiting") == 0);
        died_at = h.clock->wall_now();
        h.crash();
    }
    // A restarted host still holds the issue; the reminder keeps its time: about 1860 s had
    // passed when the host died, 1000 more while it was down, so it is due in about 740 s.
    auto db = open_store(p);
    SchedulerHarness second(project);
    second.clock = std::make_shared<vik::orchestrator::ManualClock>(died_at + 1000s);
    second.start(workflow(p, "{human: true, notify_after_sec: 3600}"), db.get());
    REQUIRE(second.run_until([&] { return awaiting(second) && second.view().totals.intake_cycles >= 1; }));
    second.settle();
    CHECK(read_file(prompts) == "build kind=first feedback=\n");
    second.advance(700s);
    second.settle();
    CHECK(count_kind(second.changes, "gate_waiting") == 0);
    second.advance(60s);
    REQUIRE(second.run_until([&] { return count_kind(second.changes, "gate_waiting") == 1; }));
    CHECK_THAT(second.log(), Catch::Contains("gate waiting issue_id=H-1 stage=build: waits for approval since"));
    // Approval: the run stands, the issue goes on to review at once.
    auto answered = second.surface().gate("H-1", true, "");
    REQUIRE(answered.has_value());
    CHECK(*answered == 1);
    REQUIRE(second.run_until([&] { return first_issue_state(p) == "done"; }));
    REQUIRE(second.run_until([&] { return second.view().running.empty() && second.view().blocked.empty(); }));
    CHECK(read_file(prompts) == "build kind=first feedback=\nreview\n");
    CHECK(count_kind(second.changes, "gate_waiting") == 1); // once
    CHECK_THAT(second.log(), Catch::Contains("gate approved issue_id=H-1 stage=build"));
    // Nothing waits any more: a second verdict is an error naming the issue.
    auto again = second.surface().gate("H-1", false, "");
    REQUIRE_FALSE(again.has_value());
    CHECK(again.error() == "issue H-1 has no stage awaiting approval");
}

TEST_CASE(
    "human gates: a rejection runs the stage again with the feedback, the issue moved back, and the command part runs first",
    "[scheduling][rules][gates]") {
    SchedulerHarness h;
    Project &p = h.project;
    p.agent("agent.sh", agent_script(p));
    p.issues(R"([{"id":"H-2","title":"t","state":"build"}])");
    fs::path checked = p.dir / "checked";
    h.start(workflow(p, "{command: 'echo x >> " + checked.string() + "', human: true}"));
    REQUIRE(h.run_until([&] { return awaiting(h); }));
    CHECK(read_file(checked) == "x\n"); // the command passed before the human was asked
    auto answered = h.surface().gate("H-2", false, "add a test for the empty case");
    REQUIRE(answered.has_value());
    CHECK(*answered == 1);
    // Back in build (the agent had moved it to review), the stage runs again with the feedback
    // (its retry is due at once).
    REQUIRE(h.run_until([&] { return first_issue_state(p) == "build"; }));
    h.advance(0ms);
    INFO(h.log());
    REQUIRE(h.run_until([&] { return count(read_file(p.dir / "prompts.log"), "\n") == 2 && awaiting(h); }));
    CHECK(read_file(p.dir / "prompts.log") ==
          "build kind=first feedback=\nbuild kind=rejected feedback=add a test for the empty case\n");
    CHECK_THAT(h.log(), Catch::Contains("issue moved back issue_id=H-2 state=build: its gate rejected the run"));
    CHECK(read_file(checked) == "x\nx\n");
    // The feedback was delivered: an approval now lets the second run stand.
    REQUIRE(h.surface().gate("H-2", true, "").has_value());
    REQUIRE(h.run_until([&] { return first_issue_state(p) == "done"; }));
    CHECK_THAT(read_file(p.dir / "prompts.log"), Catch::EndsWith("review\n"));
    CHECK(count_kind(h.changes, "gate_waiting") == 0); // no notify_after_sec: never announced
}

TEST_CASE("human gates: a failing command part fails the run before anyone is asked", "[scheduling][rules][gates]") {
    SchedulerHarness h;
    Project &p = h.project;
    p.agent("agent.sh", agent_script(p));
    p.issues(R"([{"id":"H-3","title":"t","state":"build"}])");
    h.start(workflow(p, "{command: 'echo nope; exit 3', human: true}"));
    REQUIRE(h.run_until([&] { return h.view().retrying.size() == 1; }));
    CHECK(h.view().blocked.empty());
    CHECK(h.view().retrying[0].last_error == "gate failed: exited with code 3: nope");
    CHECK(count_kind(h.changes, "awaiting_approval") == 0);
}

TEST_CASE("human gates: a rejection whose issue cannot be looked up waits for a verdict again, holding the issue",
          "[scheduling][rules][gates]") {
    SchedulerHarness h;
    Project &p = h.project;
    p.agent("agent.sh", agent_script(p));
    p.issues(R"([{"id":"H-4","title":"t","state":"build"}])");
    h.start(workflow(p, "{human: true}"));
    REQUIRE(h.run_until([&] { return awaiting(h); }));
    std::string moved_on = read_file(p.dir / "issues.json"); // in review, where the agent put it
    write_file(p.dir / "issues.json", "not json");           // the tracker cannot answer
    REQUIRE(h.surface().gate("H-4", false, "again").has_value());
    REQUIRE(h.run_until([&] { return awaiting(h); }));
    CHECK_THAT(h.view().blocked[0].reason, Catch::StartsWith("rejected at its gate, but the issue could not be looked up: "));
    CHECK_THAT(h.log(), Catch::Contains("stage awaits approval again issue_id=H-4 stage=build"));
    // The tracker answers again; the review stage has not run on the rejected work meanwhile.
    write_file(p.dir / "issues.json", moved_on);
    h.next_intake(60s);
    CHECK(read_file(p.dir / "prompts.log") == "build kind=first feedback=\n");
    REQUIRE(h.surface().gate("H-4", false, "again").has_value());
    REQUIRE(h.run_until([&] { return first_issue_state(p) == "build"; }));
    h.advance(0ms);
    REQUIRE(h.run_until([&] { return count(read_file(p.dir / "prompts.log"), "\n") == 2 && awaiting(h); }));
    CHECK(read_file(p.dir / "prompts.log") == "build kind=first feedback=\nbuild kind=rejected feedback=again\n");
}

TEST_CASE("human gates: an agent that moves its issue on mid-run is not cancelled, and the next stage waits for the verdict",
          "[scheduling][rules][gates]") {
    SchedulerHarness h;
    Project &p = h.project;
    std::string dir = shell_quote(p.dir.path.string());
    // build: moves the issue to review at once, then finishes only when the test says so.
    p.agent("agent.sh", "#!/bin/sh\n{ cat; echo; } >> " + dir + "/prompts.log\n" +
                            "if [ \"$VIK_ISSUE_STAGE\" = build ]; then sed -i 's/\"build\"/\"review\"/' " + dir +
                            "/issues.json; while [ ! -e " + dir + "/finish ]; do sleep 0.05; done; fi\n" +
                            "echo '{\"kind\":\"completed\"}'\n");
    p.issues(R"([{"id":"H-5","title":"t","state":"build"}])");
    h.start(workflow(p, "{human: true}"));
    REQUIRE(h.run_until([&] { return first_issue_state(p) == "review"; }));
    h.next_intake(60s); // sees the issue in review while build still runs
    CHECK(h.view().running.size() == 1);
    CHECK(h.log().find("stopping session issue_id=H-5") == std::string::npos);
    write_file(p.dir / "finish", "");
    REQUIRE(h.run_until([&] { return awaiting(h); }));
    h.next_intake(60s);
    CHECK(read_file(p.dir / "prompts.log") == "build kind=first feedback=\n"); // review has not started
}
