// Agent gates (issue.stages.S.gate.agent; docs/scheduling.md, "Agent gates") in-process on a
// manual clock with the file tracker: after a completed run, a reviewer (another agent profile)
// runs in the workspace and writes a verdict file. An approval lets the run stand (or passes it
// on to a human); a rejection moves the issue back from where the author put it and runs the
// stage again with the feedback in its prompt; a missing or stale verdict, or a review that
// fails, is a failed gate; the retry policy bounds the loop.
#include "orchestrator/scheduler_harness.hpp"

#include <catch2/catch.hpp>

using namespace vik::test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

// The author (bot): logs its prompt, moves the issue from build to shipped and completes.
std::string author_script(const Project &p) {
    std::string dir = shell_quote(p.dir.path.string());
    return "#!/bin/sh\n{ cat; echo; } >> " + dir + "/prompts.log\nsed -i 's/\"build\"/\"shipped\"/' " + dir +
           "/issues.json\necho '{\"kind\":\"completed\"}'\n";
}

// The reviewer (critic): logs its prompt and the stage it reviews; takes the next line of
// verdicts.txt (one per review): a JSON text written to the verdict file, "-" for no file, or
// "EXIT" to fail without a verdict.
std::string reviewer_script(const Project &p) {
    std::string dir = shell_quote(p.dir.path.string());
    return "#!/bin/sh\n{ cat; echo \" stage=$VIK_ISSUE_STAGE\"; } >> " + dir + "/reviews.log\nn=$(($(cat " + dir +
           "/reviews 2>/dev/null || echo 0) + 1)); echo $n > " + dir + "/reviews\nline=$(sed -n \"${n}p\" " + dir +
           "/verdicts.txt)\n[ \"$line\" = EXIT ] && exit 3\n"
           "[ \"$line\" = - ] || { mkdir -p .vik && printf '%s' \"$line\" > .vik/verdict.json; }\n"
           "echo '{\"kind\":\"completed\"}'\n";
}

std::string workflow(const Project &p, const std::string &gate_extra, const std::string &rest) {
    return file_tracker_workflow(
        p,
        "    build:\n      when: {state: build}\n      agent: bot\n"
        "      prompt: 'build kind={{ retry_kind }} feedback={{ gate_feedback }}'\n"
        "      gate:\n        agent: critic\n"
        "        prompt: 'review {{ issue.id }} attempt={{ attempt }}'\n" +
            gate_extra,
        rest,
        "  critic:\n    runtime: scripted\n    model: none\n    settings: {command: " + (p.dir / "critic.sh").string() + "}\n");
}

void set_up(Project &p, const std::string &issue_id, const std::string &verdicts) {
    p.agent("agent.sh", author_script(p));
    p.agent("critic.sh", reviewer_script(p));
    p.issues(R"([{"id":")" + issue_id + R"(","title":"t","state":"build"}])");
    write_file(p.dir / "verdicts.txt", verdicts);
}

} // namespace

TEST_CASE("agent gates: a reviewer's rejection moves the issue back and runs the stage again with its feedback, an "
          "approval lets the run stand",
          "[scheduling][rules][gates]") {
    SchedulerHarness h;
    Project &p = h.project;
    set_up(p, "R-1", "{\"approved\": false, \"feedback\": \"add a test for the flag\"}\n{\"approved\": true}\n");
    h.start(workflow(p, "", ""));
    // The author moved the issue on; the reviewer rejected: back to build, a retry queued.
    REQUIRE(h.run_until([&] { return h.view().retrying.size() == 1; }));
    CHECK(first_issue_state(p) == "build");
    const std::string rejection = "gate rejected by reviewer critic: add a test for the flag";
    CHECK(h.view().retrying[0].last_error == rejection);
    CHECK_THAT(h.log(), Catch::Contains("review started issue_id=R-1 stage=build agent=critic"));
    CHECK_THAT(h.log(), Catch::Contains("review=true"));
    CHECK_THAT(h.log(), Catch::Contains("issue moved back issue_id=R-1 state=build: its gate failed"));
    h.advance(10s);
    REQUIRE(
        h.run_until([&] { return h.log().find("review approved issue_id=R-1 stage=build agent=critic") != std::string::npos; }));
    // The author moved the issue through the tracker; the host sees it at the continuation's check.
    REQUIRE(h.run_until([&] { return h.view().retrying.size() == 1; }));
    h.advance(1s);
    REQUIRE(h.run_until([&] { return h.view().running.empty() && h.view().retrying.empty(); }));
    CHECK(first_issue_state(p) == "shipped"); // the approved run's move stands
    CHECK(h.view().blocked.empty());
    // The author's second prompt carries the reviewer's feedback; the reviewer saw each attempt
    // of the stage it reviews.
    CHECK(read_file(p.dir / "prompts.log") ==
          "build kind=first feedback=\nbuild kind=failure feedback=add a test for the flag\n");
    CHECK(read_file(p.dir / "reviews.log") == "review R-1 attempt=1 stage=build\nreview R-1 attempt=2 stage=build\n");
}

TEST_CASE("agent gates: a stale, missing or failed review is a failed gate, and the retry policy bounds the loop",
          "[scheduling][rules][gates]") {
    SchedulerHarness h;
    Project &p = h.project;
    // First a rejection (its file must not count for the second review, which writes none), then
    // a reviewer that fails.
    set_up(p, "R-2", "{\"approved\": false, \"feedback\": \"no\"}\n-\nEXIT\n");
    h.start(workflow(p, "", "scheduling: {max_attempts: 3, retry_base_sec: 1}\n"));
    REQUIRE(h.run_until([&] { return h.view().retrying.size() == 1; }));
    CHECK(h.view().retrying[0].last_error == "gate rejected by reviewer critic: no");
    h.advance(1s);
    REQUIRE(h.run_until([&] { return lines(p.dir / "reviews.log") == 2 && h.view().retrying.size() == 1; }));
    CHECK_THAT(h.view().retrying[0].last_error, Catch::StartsWith("gate review by critic: no valid verdict_file: "));
    h.advance(2s);
    REQUIRE(h.run_until([&] { return h.view().blocked.size() == 1; }));
    auto view = h.view();
    const auto &blocked = view.blocked[0];
    INFO(blocked.reason);
    CHECK_THAT(blocked.reason, Catch::StartsWith("failed 3 time(s) (scheduling.max_attempts = 3); last error: gate review by "
                                                 "critic did not complete: "));
    CHECK(first_issue_state(p) == "build"); // the unreviewed move never stood
    CHECK(lines(p.dir / "prompts.log") == 3);
}

TEST_CASE("agent gates: an approved review goes on to a human gate", "[scheduling][rules][gates]") {
    SchedulerHarness h;
    Project &p = h.project;
    set_up(p, "R-3", "{\"approved\": true, \"feedback\": \"fine\"}\n");
    h.start(workflow(p, "        human: true\n", ""));
    REQUIRE(h.run_until([&] {
        auto v = h.view();
        return v.blocked.size() == 1 && v.blocked[0].awaiting_approval;
    }));
    CHECK_THAT(h.log(), Catch::Contains("review approved issue_id=R-3 stage=build agent=critic"));
    CHECK(lines(p.dir / "reviews.log") == 1);
    CHECK(first_issue_state(p) == "shipped"); // held by the wait, wherever the author moved it
}

TEST_CASE("agent gates: a review under way is stopped with its issue", "[scheduling][rules][gates]") {
    auto start_hanging_review = [](SchedulerHarness &h, const std::string &id) {
        Project &p = h.project;
        set_up(p, id, "");
        // The reviewer shows it runs (and that it is listed as a review), then hangs.
        p.agent("critic.sh",
                "#!/bin/sh\ncat > /dev/null\ntouch " + shell_quote((p.dir / "reviewing").string()) + "\nexec sleep 1000\n");
        h.start(workflow(p, "", "scheduling: {terminal_states: [done]}\n"));
        REQUIRE(h.run_until([&] { return fs::exists(p.dir / "reviewing"); }));
        auto running = h.view().running;
        REQUIRE(running.size() == 1);
        CHECK(running[0].review);
        CHECK(running[0].agent == "critic");
    };
    SECTION("an operator's cancel blocks the pair") {
        SchedulerHarness h;
        start_hanging_review(h, "R-4");
        REQUIRE(h.surface().cancel("R-4").value() == 1);
        REQUIRE(h.run_until([&] { return h.view().blocked.size() == 1; }));
        CHECK(h.view().blocked[0].reason == "cancelled by an operator");
        CHECK(h.view().running.empty());
    }
    SECTION("a terminal issue releases the pair and its workspace goes") {
        SchedulerHarness h;
        Project &p = h.project;
        start_hanging_review(h, "R-5");
        p.issues(R"([{"id":"R-5","title":"t","state":"done"}])");
        h.next_intake(60s);
        REQUIRE(h.run_until([&] { return !fs::exists(p.workspace("R-5")); }));
        CHECK(h.view().running.empty());
        CHECK(h.view().retrying.empty());
        CHECK(h.view().blocked.empty());
        CHECK(h.log().find("review failed") == std::string::npos);
    }
}

TEST_CASE("agent gates: a stop during a review leaves the run undecided, and after the restart the issue goes back before "
          "the stage runs again",
          "[scheduling][rules][gates][store]") {
    auto project = std::make_shared<Project>();
    Project &p = *project;
    set_up(p, "R-6", "");
    fs::path reviewing = p.dir / "reviewing";
    {
        auto db = open_store(p);
        SchedulerHarness h(project);
        // The first reviewer hangs until the stop.
        p.agent("critic.sh", "#!/bin/sh\ncat > /dev/null\ntouch " + shell_quote(reviewing.string()) + "\nexec sleep 1000\n");
        h.start(workflow(p, "", ""), db.get());
        REQUIRE(h.run_until([&] { return fs::exists(reviewing); }));
        CHECK(first_issue_state(p) == "shipped"); // where the author put it, unreviewed
        h.stop();
        CHECK_THAT(h.log(), Catch::Contains("stage left undecided issue_id=R-6 stage=build"));
    }
    // After the restart the reviewer approves.
    p.agent("critic.sh", reviewer_script(p));
    write_file(p.dir / "verdicts.txt", "{\"approved\": true}\n");
    auto db = open_store(p);
    SchedulerHarness second(project);
    second.start(workflow(p, "", ""), db.get());
    // The interrupted run's retry moves the issue back to build first, then the stage runs again.
    REQUIRE(second.run_until([&] { return second.view().retrying.size() == 1; }));
    second.advance(10s);
    REQUIRE(second.run_until([&] { return second.log().find("review approved issue_id=R-6 stage=build") != std::string::npos; }));
    CHECK_THAT(second.log(), Catch::Contains("issue moved back issue_id=R-6 state=build"));
    CHECK(lines(p.dir / "prompts.log") == 2);
    CHECK(first_issue_state(p) == "shipped"); // the reviewed run's move stands
}

TEST_CASE("agent gates: after a rejection the author's conversation is continued, never the reviewer's",
          "[scheduling][rules][gates]") {
    SchedulerHarness h;
    Project &p = h.project;
    std::string dir = shell_quote(p.dir.path.string());
    p.agent("agent.sh", "#!/bin/sh\ncat > /dev/null\necho '{\"kind\":\"completed\"}'\n");
    // The author reports its conversation and logs the one it was asked to continue.
    p.agent("author.sh", "#!/bin/sh\ncat > /dev/null\necho \"resume=$VIK_RESUME_CONVERSATION\" >> " + dir +
                             "/author.log\nsed -i 's/\"build\"/\"shipped\"/' " + dir +
                             "/issues.json\necho '{\"kind\":\"session_started\",\"session_id\":\"author-1\"}'\n"
                             "echo '{\"kind\":\"completed\"}'\n");
    // The reviewer reports a conversation of its own; it rejects once, then approves.
    p.agent("critic.sh", "#!/bin/sh\ncat > /dev/null\nmkdir -p .vik\nif [ -e " + dir +
                             "/reviewed ]; then echo '{\"approved\": true}' > .vik/verdict.json; else touch " + dir +
                             "/reviewed; echo '{\"approved\": false, \"feedback\": \"again\"}' > .vik/verdict.json; fi\n"
                             "echo '{\"kind\":\"session_started\",\"session_id\":\"critic-1\"}'\n"
                             "echo '{\"kind\":\"completed\"}'\n");
    p.issues(R"([{"id":"R-7","title":"t","state":"build"}])");
    h.start(
        file_tracker_workflow(p,
                              "    build:\n      when: {state: build}\n      agent: author\n      prompt: build\n"
                              "      gate: {agent: critic, prompt: review}\n",
                              "",
                              "  author:\n    runtime: scripted\n    model: none\n    resume: true\n    settings: {command: " +
                                  (p.dir / "author.sh").string() +
                                  "}\n  critic:\n    runtime: scripted\n    model: none\n    resume: true\n"
                                  "    settings: {command: " +
                                  (p.dir / "critic.sh").string() + "}\n"));
    REQUIRE(h.run_until([&] { return h.view().retrying.size() == 1; }));
    h.advance(10s);
    REQUIRE(h.run_until([&] { return h.log().find("review approved issue_id=R-7") != std::string::npos; }));
    CHECK(read_file(p.dir / "author.log") == "resume=\nresume=author-1\n");
}
