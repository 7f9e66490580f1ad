// Command gates (issue.stages.S.gate; docs/scheduling.md, "Gates") in-process on a manual clock
// with the file tracker: a completed run stands only if the gate's command passes in the
// workspace; a failed gate moves the issue back from where the agent put it, and the next attempt
// sees the command's output; with on_fail the failure is routed like any other.
#include "orchestrator/scheduler_harness.hpp"

#include <catch2/catch.hpp>

using namespace vik::test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

// build: logs its prompt, writes result.txt (FAIL on the first run, PASS after), moves the issue
// to review and completes; fix: logs, moves the issue back to build and completes.
std::string agent_script(const Project &p) {
    std::string dir = shell_quote(p.dir.path.string());
    return "#!/bin/sh\n{ cat; echo; } >> " + dir + "/prompts.log\n" + "case \"$VIK_ISSUE_STAGE\" in\n" + "  build) if [ -e " +
           dir + "/built ]; then echo PASS > result.txt; else echo FAIL > result.txt; touch " + dir + "/built; fi\n" +
           "         sed -i 's/\"build\"/\"review\"/' " + dir + "/issues.json ;;\n" + "  fix) sed -i 's/\"fixing\"/\"build\"/' " +
           dir + "/issues.json ;;\nesac\n" + "echo '{\"kind\":\"completed\"}'\n";
}

std::string workflow(const Project &p, const std::string &extra_stage_keys, const std::string &more_stages) {
    return file_tracker_workflow(p, "    build:\n      when: {state: build}\n      agent: bot\n"
                                    "      prompt: 'build attempt={{ attempt }} kind={{ retry_kind }} last={{ last_error }}'\n"
                                    "      gate:\n        command: 'echo checking {{ issue.id }}; grep -q PASS result.txt || "
                                    "{ echo \"3 tests failed\" >&2; exit 1; }'\n" +
                                        extra_stage_keys + more_stages);
}

} // namespace

TEST_CASE("gates: a failed gate moves the issue back and the next attempt sees its output, a passing gate lets it go",
          "[scheduling][rules][gates]") {
    SchedulerHarness h;
    Project &p = h.project;
    p.agent("agent.sh", agent_script(p));
    p.issues(R"([{"id":"G-1","title":"t","state":"build"}])");
    h.start(workflow(p, "", ""));
    fs::path prompts = p.dir / "prompts.log";
    // The first run moved the issue to review, but its gate failed: back to build, a retry queued.
    REQUIRE(h.run_until([&] { return h.view().retrying.size() == 1; }));
    CHECK(first_issue_state(p) == "build");
    const std::string failure = "gate failed: exited with code 1: checking G-1\n3 tests failed";
    CHECK(h.view().retrying[0].last_error == failure);
    CHECK_THAT(h.log(), Catch::Contains("issue moved back issue_id=G-1 state=build: its gate failed"));
    h.advance(10s);
    REQUIRE(h.run_until([&] { return h.log().find("gate passed issue_id=G-1 stage=build") != std::string::npos; }));
    // The agent moved the issue through the tracker; the host sees it at the continuation's check.
    REQUIRE(h.run_until([&] { return h.view().retrying.size() == 1; }));
    h.advance(1s);
    REQUIRE(h.run_until([&] { return h.view().retrying.empty(); }));
    CHECK(read_file(prompts) == "build attempt=1 kind=first last=\nbuild attempt=2 kind=failure last=" + failure + "\n");
    CHECK(first_issue_state(p) == "review"); // the passing run's move stands
    CHECK(h.view().blocked.empty());
}

TEST_CASE("gates: a failed gate is routed by on_fail, and a gate that hangs is killed at its time limit",
          "[scheduling][rules][gates][routing]") {
    SECTION("routed") {
        SchedulerHarness h;
        Project &p = h.project;
        p.agent("agent.sh", agent_script(p));
        p.issues(R"([{"id":"G-2","title":"t","state":"build"}])");
        h.start(workflow(p, "      on_fail: fix\n",
                         "    fix:\n      when: {state: fixing}\n      agent: bot\n"
                         "      prompt: 'fix after {{ failure.stage }}: {{ failure.reason }}'\n"));
        fs::path prompts = p.dir / "prompts.log";
        bool routed = h.run_until([&] { return h.log().find("session finished issue_id=G-2 stage=fix") != std::string::npos; });
        INFO(h.log());
        REQUIRE(routed);
        CHECK_THAT(read_file(prompts),
                   Catch::EndsWith("fix after build: gate failed: exited with code 1: checking G-2\n3 tests failed\n"));
        CHECK_THAT(h.log(), Catch::Contains("stage failed; routing issue_id=G-2 stage=build to stage=fix (state 'fixing')"));
    }
    SECTION("closed while checking") {
        SchedulerHarness h;
        Project &p = h.project;
        p.agent("agent.sh", "#!/bin/sh\ncat > /dev/null\necho '{\"kind\":\"completed\"}'\n");
        p.issues(R"([{"id":"G-4","title":"t","state":"build"}])");
        fs::path ran = p.dir / "gate-ran";
        std::string wf = workflow(p, "", "scheduling: {terminal_states: [done]}\n");
        wf.replace(wf.find("command: '"), 10, "command: 'touch " + ran.string() + "; exec sleep 1000; ");
        h.start(wf);
        REQUIRE(h.run_until([&] { return fs::exists(ran); }));
        p.issues(R"([{"id":"G-4","title":"t","state":"done"}])");
        h.next_intake(60s);
        // The gate is killed with the issue's cleanup; the pair is released, the workspace removed.
        REQUIRE(h.run_until([&] { return !fs::exists(p.workspace("G-4")); }));
        CHECK(h.view().retrying.empty());
        CHECK(h.view().blocked.empty());
        CHECK(h.log().find("gate failed") == std::string::npos);
    }
    SECTION("cancelled by an operator") {
        SchedulerHarness h;
        Project &p = h.project;
        p.agent("agent.sh", "#!/bin/sh\ncat > /dev/null\necho '{\"kind\":\"completed\"}'\n");
        p.issues(R"([{"id":"G-5","title":"t","state":"build"}])");
        fs::path ran = p.dir / "gate-ran";
        std::string wf = workflow(p, "", "");
        wf.replace(wf.find("command: '"), 10, "command: 'touch " + ran.string() + "; exec sleep 1000; ");
        h.start(wf);
        REQUIRE(h.run_until([&] { return fs::exists(ran); }));
        // `issue cancel` reaches the check command: killed, the pair blocked as a cancelled run.
        auto n = h.surface().cancel("G-5");
        REQUIRE(n.has_value());
        CHECK(*n == 1);
        REQUIRE(h.run_until([&] { return h.view().blocked.size() == 1; }));
        CHECK(h.view().blocked[0].reason == "cancelled by an operator");
        CHECK(h.log().find("gate failed") == std::string::npos);
    }
    SECTION("hung") {
        SchedulerHarness h;
        Project &p = h.project;
        p.agent("agent.sh", "#!/bin/sh\ncat > /dev/null\necho '{\"kind\":\"completed\"}'\n");
        p.issues(R"([{"id":"G-3","title":"t","state":"build"}])");
        std::string wf = workflow(p, "", "");
        fs::path ran = p.dir / "gate-ran";
        wf.replace(wf.find("command: '"), 10,
                   "timeout_sec: 30\n        command: 'echo started; touch " + ran.string() + "; exec sleep 1000; ");
        h.start(wf);
        // Time moves only once the check is under way (the manual clock could outrun its start).
        REQUIRE(h.run_until([&] { return fs::exists(ran); }));
        h.advance(29s);
        h.settle();
        CHECK(h.view().retrying.empty()); // still checking
        CHECK(h.log().find("gate failed") == std::string::npos);
        h.advance(1s);
        REQUIRE(h.run_until([&] { return h.view().retrying.size() == 1; }));
        CHECK(h.view().retrying[0].last_error == "gate failed: timed out after 30 s: started");
    }
}
