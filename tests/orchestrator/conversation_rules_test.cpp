// Conversations, parking and rate limits in-process on a manual clock (scheduler_harness.hpp),
// with the scripted agent standing in for a CLI that can resume: a continuation continues the
// agent's conversation with the stage's resume prompt (agents.X.resume, max_turns), a
// conversation that cannot be continued falls back to a fresh one, an agent that asks a human
// parks its issue until an operator answers, and a failure while rate limited waits for the
// reported reset. docs/runtimes.md and docs/scheduling.md state the rules.
#include "orchestrator/scheduler_harness.hpp"
#include "store/sqlite_store.hpp"
#include "util/ids_and_time.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

using namespace vik::test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

const std::string kStage = "  stages:\n    work: {when: {state: todo}, agent: bot, prompt: 'work on {{ issue.id }}'}\n";
const std::string kResume = "    resume: true\n";
const char *kContinue = "Continue your work on issue C-1: it is still in state 'todo'. Finish the stage's work, or say what "
                        "you need.";

// A stand-in for a CLI that keeps conversations: it reports the conversation it continues
// ($VIK_RESUME_CONVERSATION) or a new one (conv-<run number>) as its session id, and logs
// "<conversation it was asked to continue, or fresh>|<prompt>" to runs.log; then runs `then`.
void conversational_agent(Project &p, const std::string &then) {
    std::string dir = shell_quote(p.dir.path.string());
    p.agent("agent.sh", "#!/bin/sh\nprompt=$(cat)\ncd " + dir +
                            "\nn=$(( $(cat runs.count 2>/dev/null || echo 0) + 1 )); echo $n > runs.count\n"
                            "conv=${VIK_RESUME_CONVERSATION:-conv-$n}\n"
                            "printf '%s|%s\\n' \"${VIK_RESUME_CONVERSATION:-fresh}\" \"$prompt\" >> runs.log\n"
                            "echo \"{\\\"kind\\\":\\\"session_started\\\",\\\"session_id\\\":\\\"$conv\\\"}\"\n" +
                            then);
}

std::vector<std::string> run_lines(const Project &p) {
    std::vector<std::string> out;
    std::string text = read_file(p.dir / "runs.log");
    for (size_t at = 0, nl; (nl = text.find('\n', at)) != std::string::npos; at = nl + 1)
        out.push_back(text.substr(at, nl - at));
    return out;
}

} // namespace

TEST_CASE("conversations: continuations continue the agent's conversation with the resume prompt, max_turns starts afresh",
          "[scheduling][rules][conversation]") {
    SchedulerHarness h;
    Project &p = h.project;
    conversational_agent(p, "echo '{\"kind\":\"completed\"}'\n");
    pull_from_file(p, R"([{"id":"C-1","title":"t","state":"todo"}])");
    h.start(harness_workflow(p, kStage, "scheduling: {max_continuations: 3}\n", kResume + "    max_turns: 2\n"));
    REQUIRE(h.run_until([&] { return lines(p.dir / "runs.log") == 1 && h.view().retrying.size() == 1; }));
    for (size_t run = 2; run <= 4; ++run) {
        h.advance(1s); // continuation_delay_sec
        REQUIRE(h.run_until([&] { return lines(p.dir / "runs.log") == run && h.view().running.empty(); }));
    }
    REQUIRE(h.run_until([&] { return h.view().blocked.size() == 1; }));
    // The second run continues conv-1; the third would be its third turn (max_turns 2): a fresh
    // conversation with the full prompt, which the fourth continues.
    CHECK(run_lines(p) == std::vector<std::string>{"fresh|work on C-1", std::string("conv-1|") + kContinue, "fresh|work on C-1",
                                                   std::string("conv-3|") + kContinue});
    CHECK_THAT(h.log(), Catch::Contains("resumes_conversation=conv-1"));
    CHECK_THAT(h.log(), Catch::Contains("conversation ended issue_id=C-1 stage=work conversation=conv-1: it served 2 run(s) "
                                        "(agents.bot.max_turns); a fresh one starts"));
}

TEST_CASE("conversations: without resume every run starts a fresh conversation with the full prompt",
          "[scheduling][rules][conversation]") {
    SchedulerHarness h;
    Project &p = h.project;
    conversational_agent(p, "echo '{\"kind\":\"completed\"}'\n");
    pull_from_file(p, R"([{"id":"C-1","title":"t","state":"todo"}])");
    h.start(harness_workflow(p, kStage, "scheduling: {max_continuations: 1}\n"));
    REQUIRE(h.run_until([&] { return lines(p.dir / "runs.log") == 1 && h.view().retrying.size() == 1; }));
    h.advance(1s);
    REQUIRE(h.run_until([&] { return h.view().blocked.size() == 1; }));
    CHECK(run_lines(p) == std::vector<std::string>{"fresh|work on C-1", "fresh|work on C-1"});
}

TEST_CASE("conversations: a conversation that cannot be continued falls back to a fresh one at once, with a notice",
          "[scheduling][rules][conversation]") {
    SchedulerHarness h;
    Project &p = h.project;
    // Any attempt to continue fails before the agent does anything, as a CLI that no longer has
    // the conversation does.
    conversational_agent(p, "if [ -n \"$VIK_RESUME_CONVERSATION\" ]; then echo 'no conversation found' >&2; exit 1; fi\n"
                            "echo '{\"kind\":\"completed\"}'\n");
    pull_from_file(p, R"([{"id":"C-1","title":"t","state":"todo"}])");
    auto db = open_store(p);
    h.start(harness_workflow(p, kStage, "scheduling: {max_continuations: 1}\n", kResume), db.get());
    REQUIRE(h.run_until([&] { return lines(p.dir / "runs.log") == 1 && h.view().retrying.size() == 1; }));
    h.advance(1s);
    // No time moves after the failed attempt: the fresh run follows at once, and no failure counts.
    REQUIRE(h.run_until([&] { return h.view().blocked.size() == 1; }));
    CHECK(run_lines(p) == std::vector<std::string>{"fresh|work on C-1", std::string("conv-1|") + kContinue, "fresh|work on C-1"});
    CHECK_THAT(h.log(), Catch::Contains("conversation not continued issue_id=C-1 stage=work: could not continue "
                                        "conversation conv-1 (agent exited with code 1 before a terminal event); "
                                        "starting a fresh one"));
    CHECK_THAT(h.view().blocked[0].reason, Catch::Contains("max_continuations"));
    auto files = p.session_files("C-1");
    REQUIRE(files.size() == 3);
    bool noticed = false;
    for (const auto &f : files)
        for (const auto &e : p.events(f))
            noticed = noticed || (e.at("kind") == "notice" && e.at("level") == "warning" &&
                                  std::string(e.at("text").as_string()).find("could not continue conversation conv-1") == 0);
    CHECK(noticed);
}

TEST_CASE("conversations: a resumed run that did work before it failed is an ordinary failure and keeps its conversation",
          "[scheduling][rules][conversation]") {
    SchedulerHarness h;
    Project &p = h.project;
    // The resumed run calls a tool, then fails: the conversation was continued, the model failed.
    conversational_agent(p, "if [ \"$n\" = 2 ]; then\n"
                            "  echo '{\"kind\":\"tool_call\",\"call_id\":\"c1\",\"name\":\"shell\",\"phase\":\"request\"}'\n"
                            "  exit 1\nfi\necho '{\"kind\":\"completed\"}'\n");
    pull_from_file(p, R"([{"id":"C-1","title":"t","state":"todo"}])");
    h.start(harness_workflow(p, kStage, "scheduling: {max_continuations: 1}\n", kResume));
    REQUIRE(h.run_until([&] { return lines(p.dir / "runs.log") == 1 && h.view().retrying.size() == 1; }));
    h.advance(1s);
    REQUIRE(h.run_until([&] { return lines(p.dir / "runs.log") == 2 && h.view().retrying.size() == 1; }));
    CHECK(h.view().retrying[0].kind == "failure");
    h.advance(11s); // the first failure's backoff
    REQUIRE(h.run_until([&] { return lines(p.dir / "runs.log") == 3; }));
    CHECK(run_lines(p).at(2).rfind("conv-1|", 0) == 0);
    CHECK_THAT(h.log(), !Catch::Contains("conversation not continued"));
}

TEST_CASE("conversations: a conversation the CLI replaced with another one is not continued",
          "[scheduling][rules][conversation]") {
    SchedulerHarness h;
    Project &p = h.project;
    // Asked to continue, the agent reports a conversation of its own making.
    conversational_agent(p, "if [ -n \"$VIK_RESUME_CONVERSATION\" ]; then\n"
                            "  echo \"{\\\"kind\\\":\\\"session_started\\\",\\\"session_id\\\":\\\"other-$n\\\"}\"\nfi\n"
                            "echo '{\"kind\":\"completed\"}'\n");
    pull_from_file(p, R"([{"id":"C-1","title":"t","state":"todo"}])");
    h.start(harness_workflow(p, kStage, "scheduling: {max_continuations: 2}\n", kResume));
    REQUIRE(h.run_until([&] { return lines(p.dir / "runs.log") == 1 && h.view().retrying.size() == 1; }));
    for (size_t run = 2; run <= 3; ++run) {
        h.advance(1s);
        REQUIRE(h.run_until([&] { return lines(p.dir / "runs.log") == run && h.view().running.empty(); }));
    }
    CHECK(run_lines(p) == std::vector<std::string>{"fresh|work on C-1", std::string("conv-1|") + kContinue, "fresh|work on C-1"});
    CHECK_THAT(h.log(), Catch::Contains("conversation replaced issue_id=C-1 stage=work: asked to continue conv-1, the agent "
                                        "reported other-2; the next run starts a fresh one"));
}

TEST_CASE("input required: an agent's question parks its issue, an operator's answer continues the conversation",
          "[scheduling][rules][conversation][control]") {
    SchedulerHarness h;
    Project &p = h.project;
    // The first run asks; the answered run finishes and moves nothing (the test looks at prompts).
    conversational_agent(p, "if [ -z \"$VIK_RESUME_CONVERSATION\" ]; then\n"
                            "  echo '{\"kind\":\"message\",\"text\":\"I need to know which database to migrate.\"}'\n"
                            "  echo '{\"kind\":\"input_required\",\"question\":\"Which database: staging or prod?\"}'\n"
                            "fi\necho '{\"kind\":\"completed\"}'\n");
    pull_from_file(p, R"([{"id":"C-1","title":"t","state":"todo"}])");
    auto db = open_store(p);
    h.start(harness_workflow(p, kStage, "scheduling: {max_continuations: 0}\n", kResume), db.get());
    REQUIRE(h.run_until([&] { return h.view().blocked.size() == 1; }));
    auto parked = h.view().blocked[0];
    CHECK(parked.question == "Which database: staging or prod?");
    CHECK(parked.reason == "input required: Which database: staging or prod?");
    CHECK_THAT(h.log(), Catch::Contains("stage parked issue_id=C-1 stage=work: the agent needs a human: Which database: "
                                        "staging or prod? (answer with `vik-host issue retry C-1 --message TEXT`)"));
    // Parked means parked: time passing and intake cycles run nothing.
    h.next_intake(60s);
    h.next_intake(60s);
    CHECK(lines(p.dir / "runs.log") == 1);

    REQUIRE(h.surface().retry("C-1", "staging, never prod").value() == 1);
    REQUIRE(h.run_until([&] { return lines(p.dir / "runs.log") == 2 && h.view().running.empty(); }));
    CHECK(run_lines(p).at(1) == "conv-1|Continue your work on issue C-1: it is still in state 'todo'. A message from the "
                                "operator: staging, never prod Finish the stage's work, or say what you need.");
    REQUIRE(db->flush(5s).has_value());
    auto runs = db->history({std::string("C-1"), 10});
    REQUIRE(runs.has_value());
    REQUIRE(runs->size() == 2);
    CHECK(runs->at(1).outcome == vik::store::RunOutcome::input_required);
    CHECK(runs->at(1).error == "input required: Which database: staging or prod?");
    CHECK(runs->at(1).session_id == "conv-1");
    CHECK(runs->at(0).outcome == vik::store::RunOutcome::succeeded);
}

TEST_CASE("input required: the operator's answer waits for a run that gets it when the conversation cannot be continued",
          "[scheduling][rules][conversation][control]") {
    SchedulerHarness h;
    Project &p = h.project;
    // The first run asks; continuing fails before any work (the CLI lost the conversation).
    conversational_agent(p, "if [ -n \"$VIK_RESUME_CONVERSATION\" ]; then echo 'no conversation found' >&2; exit 1; fi\n"
                            "[ \"$n\" = 1 ] && echo '{\"kind\":\"input_required\",\"question\":\"which database?\"}'\n"
                            "echo '{\"kind\":\"completed\"}'\n");
    pull_from_file(p, R"([{"id":"C-1","title":"t","state":"todo"}])");
    const std::string stage =
        "  stages:\n    work: {when: {state: todo}, agent: bot, prompt: 'work on {{ issue.id }} [{{ operator_message }}]'}\n";
    auto db = open_store(p);
    h.start(harness_workflow(p, stage, "scheduling: {max_continuations: 0}\n", kResume), db.get());
    REQUIRE(h.run_until([&] { return h.view().blocked.size() == 1; }));
    REQUIRE(h.surface().retry("C-1", "staging").value() == 1);
    REQUIRE(h.run_until([&] { return lines(p.dir / "runs.log") == 3 && h.view().running.empty(); }));
    auto runs_seen = run_lines(p);
    CHECK(runs_seen.at(0) == "fresh|work on C-1 []");
    CHECK(runs_seen.at(1).rfind("conv-1|", 0) == 0);
    CHECK(runs_seen.at(2) == "fresh|work on C-1 [staging]"); // the fresh run gets the answer
    // The sessions: completed (asked), failed (not continued), completed.
    REQUIRE(h.run_until([&] { return h.view().blocked.size() == 1; }));
    CHECK(h.view().totals.sessions_completed == 2);
    CHECK(h.view().totals.sessions_failed == 1);
    CHECK(h.view().totals.sessions_cancelled == 0);
    REQUIRE(db->flush(5s).has_value());
    auto runs = db->history({std::string("C-1"), 10});
    REQUIRE(runs.has_value());
    REQUIRE(runs->size() == 3);
    CHECK(runs->at(1).outcome == vik::store::RunOutcome::failed);
    CHECK(runs->at(2).outcome == vik::store::RunOutcome::input_required);
}

TEST_CASE("input required: an agent that asked but moved its issue on is unparked by the next intake",
          "[scheduling][rules][conversation]") {
    SchedulerHarness h;
    Project &p = h.project;
    conversational_agent(p, "echo '{\"kind\":\"input_required\",\"question\":\"was a denial fatal?\"}'\n"
                            "printf '%s' '[{\"id\":\"C-1\",\"title\":\"t\",\"state\":\"review\"}]' > issues.json\n"
                            "echo '{\"kind\":\"completed\"}'\n");
    pull_from_file(p, R"([{"id":"C-1","title":"t","state":"todo"}])");
    h.start(harness_workflow(p, kStage, "", kResume));
    REQUIRE(h.run_until([&] { return h.view().blocked.size() == 1; }));
    CHECK(h.view().blocked[0].question == "was a denial fatal?");
    h.next_intake(60s);
    REQUIRE(h.run_until([&] { return h.view().blocked.empty(); }));
    CHECK(lines(p.dir / "runs.log") == 1);
}

TEST_CASE("input required: a parked pair and its conversation survive a restart", "[scheduling][rules][conversation][store]") {
    auto project = std::make_shared<Project>();
    Project &p = *project;
    conversational_agent(p, "[ -n \"$VIK_RESUME_CONVERSATION\" ] || echo '{\"kind\":\"input_required\",\"question\":\"ok to "
                            "drop table t?\"}'\necho '{\"kind\":\"completed\"}'\n");
    pull_from_file(p, R"([{"id":"C-1","title":"t","state":"todo"}])");
    std::string workflow = harness_workflow(p, kStage, "scheduling: {max_continuations: 0}\n", kResume);
    std::chrono::system_clock::time_point died_at;
    {
        auto db = open_store(p);
        SchedulerHarness first(project);
        first.start(workflow, db.get());
        REQUIRE(first.run_until([&] { return first.view().blocked.size() == 1; }));
        REQUIRE(db->flush(5s).has_value());
        died_at = first.clock->wall_now();
        first.crash();
    }
    auto db = open_store(p);
    SchedulerHarness second(project);
    second.clock = std::make_shared<vik::orchestrator::ManualClock>(died_at);
    second.start(workflow, db.get());
    REQUIRE(second.wait_intakes(1));
    second.settle();
    REQUIRE(second.view().blocked.size() == 1);
    CHECK(second.view().blocked[0].question == "ok to drop table t?");
    CHECK(lines(p.dir / "runs.log") == 1);
    REQUIRE(second.surface().retry("C-1", "yes").value() == 1);
    REQUIRE(second.run_until([&] { return lines(p.dir / "runs.log") == 2; }));
    CHECK(run_lines(p).at(1).rfind("conv-1|", 0) == 0);
    CHECK_THAT(run_lines(p).at(1), Catch::Contains("A message from the operator: yes"));
}

TEST_CASE("rate limits: a failure while rate limited waits for the reported reset, the latest limit is kept per profile",
          "[scheduling][rules][rate-limit]") {
    SchedulerHarness h;
    Project &p = h.project;
    conversational_agent(p, "echo '{\"kind\":\"rate_limit\",\"limited\":true,\"reset_in_sec\":90,\"window\":\"5h\"}'\n"
                            "echo '{\"kind\":\"error\",\"detail\":\"429 Too Many Requests\"}'\nexit 1\n");
    pull_from_file(p, R"([{"id":"C-1","title":"t","state":"todo"}])");
    h.start(harness_workflow(p, kStage, ""));
    REQUIRE(h.run_until([&] { return h.view().retrying.size() == 1; }));
    auto v = h.view();
    REQUIRE(v.rate_limits.contains("bot"));
    const auto &limit = v.rate_limits.at("bot").as_object();
    CHECK(limit.at("limited") == true);
    CHECK(limit.at("window") == "5h");
    CHECK(limit.at("agent") == "bot");
    REQUIRE(limit.contains("reset_at"));
    double reset = vik::util::rfc3339_seconds(std::string(limit.at("reset_at").as_string()));
    double now = std::chrono::duration<double>(h.clock->wall_now().time_since_epoch()).count();
    CHECK(reset == Approx(now + 90).margin(1.0));
    CHECK_THAT(h.log(), Catch::Contains("rate limited issue_id=C-1 stage=work agent=bot until "));
    // Not after the usual 10 s backoff...
    h.advance(60s);
    h.settle();
    CHECK(lines(p.dir / "runs.log") == 1);
    // ...but once the limit has reset.
    h.advance(31s);
    REQUIRE(h.run_until([&] { return lines(p.dir / "runs.log") == 2; }));
}

TEST_CASE("rate limits: a resumed run that fails rate limited keeps its conversation and waits for the reset",
          "[scheduling][rules][rate-limit][conversation]") {
    SchedulerHarness h;
    Project &p = h.project;
    // The resumed run is refused by the provider before doing anything, as a rate limit does.
    conversational_agent(p, "if [ \"$n\" = 2 ]; then\n"
                            "  echo '{\"kind\":\"rate_limit\",\"limited\":true,\"reset_in_sec\":90}'\n"
                            "  echo '{\"kind\":\"error\",\"detail\":\"429 Too Many Requests\"}'\n  exit 1\nfi\n"
                            "echo '{\"kind\":\"completed\"}'\n");
    pull_from_file(p, R"([{"id":"C-1","title":"t","state":"todo"}])");
    h.start(harness_workflow(p, kStage, "scheduling: {max_continuations: 1}\n", kResume));
    REQUIRE(h.run_until([&] { return lines(p.dir / "runs.log") == 1 && h.view().retrying.size() == 1; }));
    h.advance(1s);
    REQUIRE(h.run_until([&] { return lines(p.dir / "runs.log") == 2 && h.view().retrying.size() == 1; }));
    h.advance(60s);
    h.settle();
    CHECK(lines(p.dir / "runs.log") == 2); // not a fresh conversation at once: the limit holds
    h.advance(31s);
    REQUIRE(h.run_until([&] { return lines(p.dir / "runs.log") == 3; }));
    CHECK(run_lines(p).at(2).rfind("conv-1|", 0) == 0);
    CHECK_THAT(h.log(), !Catch::Contains("conversation not continued"));
}
