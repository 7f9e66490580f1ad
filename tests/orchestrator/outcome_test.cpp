// Structured outcomes (issue.stages.S.outcome; docs/scheduling.md, "Structured outcomes")
// in-process on a manual clock with the file tracker and the SQLite store: a completed run stands
// only with a valid outcome file whose succeed_if holds; the outcome reaches later prompts and
// gate commands as `outcomes.<stage>` and survives a restart; a missing, invalid or unsuccessful
// outcome is the run's failure (retried, or routed by on_fail with the reason in the target's
// prompt), and a stale file from an earlier run never counts.
#include "orchestrator/scheduler_harness.hpp"

#include <catch2/catch.hpp>

using namespace vik::test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

// build: logs its prompt; writes result.json from the next line of results.txt (one line per
// run: a JSON text, or "-" for no file), then moves the issue to `next` (from next.txt) and
// completes. review and fix: log their prompts; fix moves the issue back to build.
std::string agent_script(const Project &p) {
    std::string dir = shell_quote(p.dir.path.string());
    return "#!/bin/sh\n{ cat; echo; } >> " + dir + "/prompts.log\n" + "case \"$VIK_ISSUE_STAGE\" in\n" + "  build) n=$(($(cat " +
           dir + "/runs 2>/dev/null || echo 0) + 1)); echo $n > " + dir + "/runs\n" + "         line=$(sed -n \"${n}p\" " + dir +
           "/results.txt)\n" + "         [ \"$line\" = - ] || printf '%s' \"$line\" > result.json\n" +
           "         sed -i \"s/\\\"build\\\"/\\\"$(cat " + dir + "/next.txt)\\\"/\" " + dir + "/issues.json ;;\n" +
           "  fix) sed -i 's/\"fixing\"/\"build\"/' " + dir + "/issues.json ;;\nesac\n" + "echo '{\"kind\":\"completed\"}'\n";
}

std::string workflow(const Project &p, const std::string &outcome_extra, const std::string &stage_extra) {
    return file_tracker_workflow(
        p,
        "    build:\n      when: {state: build}\n      agent: bot\n"
        "      prompt: 'build {{ retry_kind }} {{ last_error }}'\n"
        "      outcome:\n        file: result.json\n        fields: {tests_passed: boolean, summary: string}\n" +
            outcome_extra + stage_extra +
            "    review:\n      when: {state: review}\n      agent: bot\n"
            "      prompt: 'review {{ outcomes.build.summary }} passed={{ outcomes.build.tests_passed }}'\n"
            "    fix:\n      when: {state: fixing}\n      agent: bot\n      prompt: 'fix {{ failure.reason }}'\n",
        "scheduling: {retry_base_sec: 1}\n");
}

} // namespace

TEST_CASE("outcomes: a valid outcome reaches the gate command and later prompts, across a restart",
          "[scheduling][rules][outcomes][store]") {
    auto project = std::make_shared<Project>();
    Project &p = *project;
    p.agent("agent.sh", agent_script(p));
    p.issues(R"([{"id":"O-1","title":"t","state":"build"}])");
    write_file(p.dir / "results.txt", R"({"tests_passed": true, "summary": "added a flag", "extra": [1]})"
                                      "\n");
    write_file(p.dir / "next.txt", "parked"); // a state no stage takes: the host dies before review
    fs::path gate_out = p.dir / "gate.out";
    std::string gate = "      gate: {command: 'printf \"%s\" {{ outcomes.build.summary }} > " + gate_out.string() + "'}\n";
    std::chrono::system_clock::time_point died_at;
    {
        auto db = open_store(p);
        SchedulerHarness h(project);
        h.start(workflow(p, "", gate), db.get());
        REQUIRE(h.run_until([&] { return h.log().find("gate passed issue_id=O-1") != std::string::npos; }));
        CHECK(read_file(gate_out) == "added a flag"); // the gate saw this run's outcome
        CHECK_THAT(h.log(), Catch::Contains("outcome recorded issue_id=O-1 stage=build"));
        h.settle();
        died_at = h.clock->wall_now();
        h.crash();
    }
    // The issue moves on while the host is down; the restarted host still knows the outcome.
    write_file(p.dir / "issues.json", R"([{"id":"O-1","title":"t","state":"review"}])");
    auto db = open_store(p);
    SchedulerHarness second(project);
    second.clock = std::make_shared<vik::orchestrator::ManualClock>(died_at);
    second.start(workflow(p, "", gate), db.get());
    REQUIRE(second.run_until([&] { return count(read_file(p.dir / "prompts.log"), "\n") == 2; }));
    CHECK(read_file(p.dir / "prompts.log") == "build first \nreview added a flag passed=true\n");
}

TEST_CASE("outcomes: a missing, invalid or stale outcome fails the run, and a false succeed_if is routed by on_fail",
          "[scheduling][rules][outcomes][routing]") {
    SECTION("missing, then of the wrong type, then valid") {
        SchedulerHarness h;
        Project &p = h.project;
        p.agent("agent.sh", agent_script(p));
        p.issues(R"([{"id":"O-2","title":"t","state":"build"}])");
        write_file(p.dir / "next.txt", "review");
        // Run 1 writes no file, run 2 one of the wrong type, run 3 a valid one.
        write_file(p.dir / "results.txt", "-\n{\"tests_passed\": \"yes\", \"summary\": \"s\"}\n"
                                          "{\"tests_passed\": false, \"summary\": \"ok\"}\n");
        h.start(workflow(p, "", ""));
        const std::string missing = "outcome: the agent wrote no outcome file 'result.json' (the stage's outcome.file)";
        REQUIRE(h.run_until([&] { return h.view().retrying.size() == 1; }));
        CHECK(h.view().retrying[0].last_error == missing);
        CHECK(first_issue_state(p) == "build"); // moved back from review
        h.advance(1s);
        const std::string wrong = "outcome: 'result.json' field 'tests_passed' is a string, expected boolean";
        REQUIRE(h.run_until([&] { return h.view().retrying.size() == 1 && h.view().retrying[0].last_error == wrong; }));
        h.advance(2s);
        REQUIRE(h.run_until([&] { return first_issue_state(p) == "review" && h.view().running.empty(); }));
        h.next_intake(60s);
        REQUIRE(h.run_until([&] { return count(read_file(p.dir / "prompts.log"), "\n") == 4; }));
        CHECK(read_file(p.dir / "prompts.log") ==
              "build first \nbuild failure " + missing + "\nbuild failure " + wrong + "\nreview ok passed=false\n");
    }
    SECTION("succeed_if false routes to fix with the outcome in the reason") {
        SchedulerHarness h;
        Project &p = h.project;
        p.agent("agent.sh", agent_script(p));
        p.issues(R"([{"id":"O-3","title":"t","state":"build"}])");
        write_file(p.dir / "next.txt", "review");
        write_file(p.dir / "results.txt", "{\"tests_passed\": false, \"summary\": \"2 failing\"}\n-\n");
        h.start(workflow(p, "        succeed_if: outcome.tests_passed\n", "      on_fail: fix\n"));
        REQUIRE(h.run_until([&] { return h.log().find("session finished issue_id=O-3 stage=fix") != std::string::npos; }));
        CHECK_THAT(read_file(p.dir / "prompts.log"),
                   Catch::EndsWith("fix outcome: succeed_if `outcome.tests_passed` is false for "
                                   "{\"tests_passed\":false,\"summary\":\"2 failing\"}\n"));
        // Back in build: its second run writes no file; the first run's result.json was removed
        // before it started, so it fails as missing (and is routed again) instead of standing on a
        // stale outcome.
        h.next_intake(60s);
        REQUIRE(h.run_until([&] {
            return read_file(p.dir / "prompts.log").find("fix outcome: the agent wrote no outcome file 'result.json'") !=
                   std::string::npos;
        }));
        CHECK(count(read_file(p.dir / "prompts.log"), "build first") == 2);
        CHECK_FALSE(fs::exists(p.workspace("O-3") / "result.json"));
    }
}
