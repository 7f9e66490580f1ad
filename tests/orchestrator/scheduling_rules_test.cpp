// The scheduling rules in-process on a manual clock (scheduler_harness.hpp): retries and their
// backoff, continuations, blocks and what clears them, the stall watchdog and the overall
// timeout, limits and priority, reconciliation, operator retry, cancel and refresh. Delays are
// the production defaults (10 s backoff, minutes of stall): time moves by hand, nothing sleeps.
// docs/scheduling.md states the rules.
#include "orchestrator/scheduler_harness.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <algorithm>
#include <set>

using namespace vik::test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

constexpr auto kIdle = 60s; // harness_workflow's idle_sec

std::string one_issue(const std::string &id, const std::string &state, const std::string &extra = "") {
    return R"([{"id":")" + id + R"(","title":"t","state":")" + state + "\"" + extra + "}]";
}

// An agent that appends its prompt (one line) to prompts.log, then runs `then`.
void logging_agent(Project &p, const std::string &then) {
    p.agent("agent.sh", "#!/bin/sh\n{ cat; echo; } >> " + shell_quote((p.dir / "prompts.log").string()) + "\n" + then);
}

const std::string kWork = "  stages:\n    work:\n      when: {state: todo}\n      agent: bot\n"
                          "      prompt: 'attempt={{ attempt }} kind={{ retry_kind }} last={{ last_error }}'\n";

} // namespace

TEST_CASE("rules: a failure retries after 10 s then 20 s of scheduling time, with the attempt in the prompt, then blocks",
          "[scheduling][rules]") {
    SchedulerHarness h;
    Project &p = h.project;
    logging_agent(p, "exit 1\n");
    pull_from_file(p, one_issue("R-1", "todo"));
    h.start(harness_workflow(p, kWork, ""));
    fs::path prompts = p.dir / "prompts.log";

    REQUIRE(h.run_until([&] { return h.view().retrying.size() == 1; }));
    auto v = h.view();
    CHECK(v.retrying[0].issue_id == "R-1");
    CHECK(v.retrying[0].attempt == 2);
    CHECK(v.retrying[0].kind == "failure");
    CHECK(v.retrying[0].last_error == "agent exited with code 1 before a terminal event");
    CHECK(lines(prompts) == 1);

    // Not a moment before its backoff...
    h.advance(9900ms);
    h.settle();
    CHECK(lines(prompts) == 1);
    CHECK(h.view().retrying.size() == 1);
    // ...and at it.
    h.advance(100ms);
    REQUIRE(h.run_until([&] { return lines(prompts) == 2 && h.view().retrying.size() == 1; }));
    CHECK(h.view().retrying[0].attempt == 3);

    h.advance(19900ms); // the second backoff is 20 s
    h.settle();
    CHECK(lines(prompts) == 2);
    h.advance(100ms);
    REQUIRE(h.run_until([&] { return h.view().blocked.size() == 1; }));
    CHECK(read_file(prompts) == "attempt=1 kind=first last=\n"
                                "attempt=2 kind=failure last=agent exited with code 1 before a terminal event\n"
                                "attempt=3 kind=failure last=agent exited with code 1 before a terminal event\n");
    auto b = h.view().blocked.at(0);
    CHECK(b.issue_id == "R-1");
    CHECK(b.reason == "failed 3 time(s) (scheduling.max_attempts = 3); last error: agent exited with code 1 before a "
                      "terminal event");
    CHECK(b.issue_state == "todo");
    CHECK(h.view().retrying.empty());

    // Blocked stays blocked: intake after intake, nothing runs.
    h.next_intake(kIdle);
    h.next_intake(kIdle);
    CHECK(lines(prompts) == 3);
    CHECK(p.session_files("R-1").size() == 3);
    // Listeners saw each step.
    std::vector<std::string> kinds;
    for (const auto &c : h.changes)
        if (c.issue_id == "R-1") kinds.push_back(c.kind);
    CHECK(std::count(kinds.begin(), kinds.end(), "retry_queued") == 2);
    CHECK(std::count(kinds.begin(), kinds.end(), "blocked") == 1);
    CHECK(std::count(kinds.begin(), kinds.end(), "session_started") == 3);
}

TEST_CASE("rules: the backoff is capped by retry_max_backoff_sec", "[scheduling][rules]") {
    SchedulerHarness h;
    Project &p = h.project;
    logging_agent(p, "exit 1\n");
    pull_from_file(p, one_issue("C-1", "todo"));
    h.start(harness_workflow(p, kWork, "scheduling: {retry_base_sec: 100, retry_max_backoff_sec: 150, max_attempts: 5}\n"));
    fs::path prompts = p.dir / "prompts.log";
    REQUIRE(h.run_until([&] { return h.view().retrying.size() == 1; }));
    h.advance(100s);
    REQUIRE(h.run_until([&] { return lines(prompts) == 2 && h.view().retrying.size() == 1; }));
    h.advance(149s); // 200 s capped to 150 s
    h.settle();
    CHECK(lines(prompts) == 2);
    h.advance(1s);
    REQUIRE(h.run_until([&] { return lines(prompts) == 3; }));
}

TEST_CASE("rules: a clean finish while the issue stays in its state continues, then blocks after max_continuations",
          "[scheduling][rules]") {
    SchedulerHarness h;
    Project &p = h.project;
    logging_agent(p, "echo '{\"kind\":\"completed\"}'\n");
    pull_from_file(p, one_issue("K-1", "todo"));
    h.start(harness_workflow(p, kWork, "scheduling: {continuation_delay_sec: 30, max_continuations: 2}\n"));
    fs::path prompts = p.dir / "prompts.log";

    REQUIRE(h.run_until([&] { return h.view().retrying.size() == 1; }));
    CHECK(h.view().retrying[0].kind == "continuation");
    h.advance(29s);
    h.settle();
    CHECK(lines(prompts) == 1);
    h.advance(1s);
    REQUIRE(h.run_until([&] { return lines(prompts) == 2 && h.view().retrying.size() == 1; }));
    h.advance(30s);
    REQUIRE(h.run_until([&] { return h.view().blocked.size() == 1; }));
    CHECK(read_file(prompts) == "attempt=1 kind=first last=\n"
                                "attempt=2 kind=continuation last=\n"
                                "attempt=3 kind=continuation last=\n");
    CHECK_THAT(h.view().blocked[0].reason, Catch::Contains("stayed in state 'todo' (scheduling.max_continuations = 2)"));
}

TEST_CASE("rules: a block is cleared when the issue's state changes, and the stage runs again when it comes back",
          "[scheduling][rules]") {
    SchedulerHarness h;
    Project &p = h.project;
    logging_agent(p, "exit 1\n");
    pull_from_file(p, one_issue("B-1", "todo"));
    h.start(harness_workflow(p, kWork, "scheduling: {max_attempts: 1}\n"));
    REQUIRE(h.run_until([&] { return h.view().blocked.size() == 1; }));

    p.issues(one_issue("B-1", "paused"));
    h.next_intake(kIdle);
    CHECK(h.view().blocked.empty());
    CHECK_THAT(h.log(), Catch::Contains("block cleared by a state change issue_id=B-1 state=paused"));
    CHECK(lines(p.dir / "prompts.log") == 1);

    p.issues(one_issue("B-1", "todo"));
    h.next_intake(kIdle);
    REQUIRE(h.run_until([&] { return h.view().blocked.size() == 1; }));
    CHECK(lines(p.dir / "prompts.log") == 2);
}

TEST_CASE("rules: a silent agent is stalled after stall_timeout_sec of quiet, counted from its last event",
          "[scheduling][rules]") {
    SchedulerHarness h;
    Project &p = h.project;
    // Speaks once on start, then once more when told to (a file appears), then stays silent.
    std::string poke = shell_quote((p.dir / "poke").string());
    p.agent("agent.sh", "#!/bin/sh\ncat >/dev/null\necho '{\"kind\":\"message\",\"text\":\"one\"}'\n"
                        "while [ ! -e " +
                            poke +
                            " ]; do sleep 0.02; done\n"
                            "echo '{\"kind\":\"message\",\"text\":\"two\"}'\nexec sleep 1000\n");
    pull_from_file(p, one_issue("S-1", "todo"));
    h.start(harness_workflow(p, "  stages:\n    work: {when: {state: todo}, agent: bot, prompt: p}\n", "",
                             "    stall_timeout_sec: 300\n    timeout_sec: 3600\n"));
    auto last_message = [&] {
        auto v = h.view();
        if (v.running.empty()) return std::string();
        const auto *m = v.running[0].session.if_contains("last_message");
        return m && m->is_string() ? std::string(m->as_string()) : std::string();
    };
    REQUIRE(h.run_until([&] { return last_message() == "one"; }));
    h.advance(200s);
    write_file(p.dir / "poke", "");
    REQUIRE(h.run_until([&] { return last_message() == "two"; })); // activity at t=200 s
    h.advance(299s);                                               // t=499 s: 299 s quiet
    h.settle();
    REQUIRE(h.view().running.size() == 1);
    CHECK(h.view().retrying.empty());
    h.advance(1s); // 300 s quiet
    REQUIRE(h.run_until([&] { return h.view().retrying.size() == 1; }));
    CHECK(h.view().retrying[0].last_error == "stalled for 300000ms without agent activity");
    CHECK(h.view().running.empty());
}

TEST_CASE("rules: the overall timeout fails a session that keeps talking", "[scheduling][rules]") {
    SchedulerHarness h;
    Project &p = h.project;
    p.agent("agent.sh", "#!/bin/sh\ncat >/dev/null\n"
                        "while :; do echo '{\"kind\":\"message\",\"text\":\"busy\"}'; sleep 0.02; done\n");
    pull_from_file(p, one_issue("O-1", "todo"));
    h.start(harness_workflow(p, "  stages:\n    work: {when: {state: todo}, agent: bot, prompt: p}\n", "",
                             "    stall_timeout_sec: 60\n    timeout_sec: 1800\n"));
    REQUIRE(h.run_until([&] { return h.view().running.size() == 1; }));
    // 29.5 minutes in steps of 30 s, with agent activity seen at each step: never a quiet minute.
    for (int i = 0; i < 59; ++i) {
        size_t seen = h.session_events;
        REQUIRE(h.run_until([&] { return h.session_events > seen; }));
        h.advance(30s);
        REQUIRE(h.view().running.size() == 1);
        REQUIRE(h.view().retrying.empty());
    }
    size_t seen = h.session_events;
    REQUIRE(h.run_until([&] { return h.session_events > seen; }));
    h.advance(30s); // 1800 s
    REQUIRE(h.run_until([&] { return h.view().retrying.size() == 1; }));
    CHECK(h.view().retrying[0].last_error == "timed out after 1800000ms");
}

TEST_CASE("rules: limits hold and waiting issues start in priority order as slots free", "[scheduling][rules]") {
    SchedulerHarness h;
    Project &p = h.project;
    p.agent("agent.sh", "#!/bin/sh\ncat >/dev/null\nexec sleep 1000\n");
    pull_from_file(p, R"([{"id":"L-3","title":"t","state":"todo","priority":3},
                          {"id":"L-1","title":"t","state":"todo","priority":1},
                          {"id":"L-2","title":"t","state":"todo","priority":2},
                          {"id":"M-1","title":"t","state":"review","priority":9}])");
    h.start(harness_workflow(p,
                             "  stages:\n    work: {when: {state: todo}, agent: bot, prompt: p}\n"
                             "    check: {when: {state: review}, agent: bot, prompt: p}\n",
                             "loop: {max_issue_concurrency: 2}\nscheduling: {max_concurrent_by_state: {todo: 1}}\n"));
    auto running_ids = [&] {
        std::set<std::string> ids;
        for (const auto &r : h.view().running)
            ids.insert(r.issue_id);
        return ids;
    };
    REQUIRE(h.run_until([&] { return running_ids().size() == 2; }));
    CHECK(running_ids() == std::set<std::string>{"L-1", "M-1"}); // one todo (the most urgent), one review
    auto waiting = h.view().waiting;                             // in dispatch order, with why
    REQUIRE(waiting.size() == 2);
    CHECK(waiting[0].issue_id == "L-2");
    CHECK(waiting[1].issue_id == "L-3");
    CHECK(waiting[0].reason == "the state's limit is reached (scheduling.max_concurrent_by_state.todo)");

    // Cancelling L-1 frees the todo slot; the next intake starts L-2, not L-3.
    REQUIRE(h.surface().cancel("L-1").value() == 1);
    REQUIRE(h.run_until([&] { return running_ids().count("L-1") == 0; }));
    h.next_intake(kIdle);
    REQUIRE(h.run_until([&] { return running_ids().size() == 2; }));
    CHECK(running_ids() == std::set<std::string>{"L-2", "M-1"});
    // The cancelled stage stays blocked until an operator retries it.
    REQUIRE(h.view().blocked.size() == 1);
    CHECK(h.view().blocked[0].issue_id == "L-1");
    CHECK(h.view().blocked[0].reason == "cancelled by an operator");
}

TEST_CASE("rules: an operator retry runs a blocked stage again at once, without waiting idle_sec",
          "[scheduling][rules][control]") {
    SchedulerHarness h;
    Project &p = h.project;
    logging_agent(p, "exit 1\n");
    pull_from_file(p, one_issue("P-1", "todo"));
    h.start(harness_workflow(p, kWork, "scheduling: {max_attempts: 1}\n"));
    REQUIRE(h.run_until([&] { return h.view().blocked.size() == 1; }));
    CHECK(h.surface().retry("nobody-knows-me", "").error() == "issue 'nobody-knows-me' is not known to this host");

    auto cycles = h.view().totals.intake_cycles;
    REQUIRE(h.surface().retry("P-1", "").value() == 1);
    // No time moves: the retry is due now (it checks the issue, then launches; no pull needed).
    REQUIRE(h.run_until([&] { return lines(p.dir / "prompts.log") == 2; }));
    CHECK(h.view().totals.intake_cycles == cycles);
    CHECK(read_file(p.dir / "prompts.log").find("attempt=2 kind=operator") != std::string::npos);
    REQUIRE(h.run_until([&] { return h.view().blocked.size() == 1; }));

    // refresh(): intake now, and a second request while a pull runs does not double it.
    cycles = h.view().totals.intake_cycles;
    CHECK(h.surface().refresh());
    CHECK(h.surface().refresh());
    h.settle();
    REQUIRE(h.wait_intakes(cycles + 1));
    h.settle();
    CHECK(h.view().totals.intake_cycles == cycles + 1);
}

TEST_CASE("rules: an issue that leaves the stage's state stops its run and keeps its workspace", "[scheduling][rules]") {
    SchedulerHarness h;
    Project &p = h.project;
    p.agent("agent.sh", "#!/bin/sh\ncat >/dev/null\nexec sleep 1000\n");
    pull_from_file(p, one_issue("E-1", "todo"));
    h.start(harness_workflow(p, "  stages:\n    work: {when: {state: todo}, agent: bot, prompt: p}\n", ""));
    REQUIRE(h.run_until([&] { return h.view().running.size() == 1; }));
    p.issues(one_issue("E-1", "review"));
    h.next_intake(kIdle);
    REQUIRE(h.run_until([&] { return h.view().running.empty(); }));
    auto v = h.view();
    CHECK(v.retrying.empty());
    CHECK(v.blocked.empty());
    CHECK(fs::exists(p.workspace("E-1")));
    CHECK(v.totals.sessions_cancelled == 1);
}

TEST_CASE("rules: a terminal issue's run stops and its workspace is removed after before_remove", "[scheduling][rules]") {
    SchedulerHarness h;
    Project &p = h.project;
    p.agent("agent.sh", "#!/bin/sh\ncat >/dev/null\nexec sleep 1000\n");
    pull_from_file(p, one_issue("T-1", "todo"));
    std::string seen = shell_quote((p.dir / "before_remove.log").string());
    h.start(harness_workflow(p,
                             "  hooks:\n    before_remove: echo \"$VIK_ISSUE_ID\" >> " + seen +
                                 "\n  stages:\n    work: {when: {state: todo}, agent: bot, prompt: p}\n",
                             "scheduling: {terminal_states: [done]}\n"));
    REQUIRE(h.run_until([&] { return h.view().running.size() == 1; }));
    REQUIRE(fs::exists(p.workspace("T-1")));
    p.issues(one_issue("T-1", "done"));
    h.next_intake(kIdle);
    REQUIRE(h.run_until([&] { return !fs::exists(p.workspace("T-1")); }));
    CHECK(h.view().running.empty());
    CHECK(read_file(p.dir / "before_remove.log") == "T-1\n");
}

TEST_CASE("rules: a running issue missing from two refreshes in a row is stopped, one miss stops nothing",
          "[scheduling][rules]") {
    SchedulerHarness h;
    Project &p = h.project;
    p.agent("agent.sh", "#!/bin/sh\ncat >/dev/null\nexec sleep 1000\n");
    pull_from_file(p, one_issue("G-1", "todo"));
    h.start(harness_workflow(p, "  stages:\n    work: {when: {state: todo}, agent: bot, prompt: p}\n", ""));
    REQUIRE(h.run_until([&] { return h.view().running.size() == 1; }));
    p.issues("[]");
    h.next_intake(kIdle);
    h.settle(); // the refresh by id
    CHECK(h.view().running.size() == 1);
    CHECK_THAT(h.log(), Catch::Contains("issue_id=G-1 (1 of 2)"));
    h.next_intake(kIdle);
    REQUIRE(h.run_until([&] { return h.view().running.empty(); }));
}

TEST_CASE("rules: a failed pull stops nothing, and the view says why", "[scheduling][rules]") {
    SchedulerHarness h;
    Project &p = h.project;
    p.agent("agent.sh", "#!/bin/sh\ncat >/dev/null\nexec sleep 1000\n");
    pull_from_file(p, one_issue("F-1", "todo"));
    h.start(harness_workflow(p, "  stages:\n    work: {when: {state: todo}, agent: bot, prompt: p}\n", ""));
    REQUIRE(h.run_until([&] { return h.view().running.size() == 1; }));
    p.agent("pull.sh", "#!/bin/sh\necho 'tracker unavailable' >&2\nexit 1\n");
    h.next_intake(kIdle);
    h.next_intake(kIdle);
    auto v = h.view();
    CHECK(v.running.size() == 1);
    CHECK(v.totals.intake_failures == 2);
    CHECK_THAT(v.last_intake_error, Catch::Contains("tracker unavailable"));
    CHECK_THAT(h.log(), Catch::Contains("intake cycle failed"));
    // The tracker is back: the error clears and the run goes on (after the backoff: two failures
    // in a row wait twice idle_sec).
    pull_from_file(p, one_issue("F-1", "todo"));
    h.next_intake(2 * kIdle);
    CHECK(h.view().last_intake_error.empty());
    CHECK(h.view().running.size() == 1);
}

TEST_CASE("rules: a failing tracker is pulled less and less often, up to 5 minutes, and at idle_sec again once it answers",
          "[scheduling][rules]") {
    SchedulerHarness h;
    Project &p = h.project;
    p.agent("agent.sh", "#!/bin/sh\ncat >/dev/null\nexec sleep 1000\n");
    p.agent("pull.sh", "#!/bin/sh\necho 'tracker unavailable' >&2\nexit 1\n");
    h.start(harness_workflow(p, "  stages:\n    work: {when: {state: todo}, agent: bot, prompt: p}\n", ""));
    REQUIRE(h.wait_intakes(1));
    // Waits after 1, 2, 3 ... failures in a row: 60 s, 120 s, 240 s, then the 300 s cap.
    for (auto [wait, n] :
         std::vector<std::pair<std::chrono::milliseconds, int64_t>>{{60s, 2}, {120s, 3}, {240s, 4}, {300s, 5}, {300s, 6}}) {
        h.advance(wait - 1s);
        h.settle();
        REQUIRE(h.view().totals.intake_cycles == n - 1); // not a moment early
        h.advance(1s);
        REQUIRE(h.wait_intakes(n));
    }
    CHECK(count(h.log(), "intake backing off") == 3); // one line per change: 120 s, 240 s, 300 s
    CHECK_THAT(h.log(), Catch::Contains("intake backing off: 4 failed pull(s) in a row; next pull in 300000 ms (the cap)"));
    pull_from_file(p, one_issue("U-1", "todo"));
    h.advance(300s);
    REQUIRE(h.wait_intakes(7));
    CHECK_THAT(h.log(), Catch::Contains("intake recovered after 6 failed pull(s) in a row; pulling every 60 s again"));
    REQUIRE(h.run_until([&] { return h.view().running.size() == 1; }));
    h.next_intake(kIdle); // back to idle_sec
}

TEST_CASE("rules: on_failed, on_blocked and on_completed hooks hear every stage end with its reason",
          "[scheduling][rules][hooks]") {
    SchedulerHarness h;
    Project &p = h.project;
    p.agent("agent.sh", "#!/bin/sh\ncat >/dev/null\ncase \"$VIK_ISSUE_ID\" in\n  OK-1) echo '{\"kind\":\"completed\"}' ;;\n"
                        "  *) echo 'boom' >&2; exit 3 ;;\nesac\n");
    pull_from_file(p, R"([{"id":"OK-1","title":"t","state":"todo"},{"id":"BAD-1","title":"t","state":"todo"}])");
    std::string log = shell_quote((p.dir / "outcomes.log").string());
    std::string hook = "echo \"$VIK_OUTCOME {{ issue.id }} {{ outcome.kind }}: $VIK_OUTCOME_REASON\" >> " + log;
    h.start(harness_workflow(p,
                             "  hooks:\n    on_completed: |\n      " + hook + "\n    on_failed: |\n      " + hook +
                                 "\n    on_blocked: |\n      " + hook +
                                 "\n  stages:\n    work: {when: {state: todo}, agent: bot, prompt: p}\n",
                             "scheduling: {max_attempts: 2, max_continuations: 0}\n"));
    REQUIRE(h.run_until([&] { return count(read_file(p.dir / "outcomes.log"), "\n") == 2; }));
    h.advance(10s); // BAD-1's retry
    REQUIRE(h.run_until([&] { return count(read_file(p.dir / "outcomes.log"), "\n") == 3; }));
    h.settle();
    std::string text = read_file(p.dir / "outcomes.log");
    INFO(text);
    CHECK_THAT(text, Catch::Contains("failed BAD-1 failed: agent exited with code 3 before a terminal event\n"));
    CHECK_THAT(text, Catch::Contains("blocked BAD-1 blocked: failed 2 time(s) (scheduling.max_attempts = 2); last error: agent "
                                     "exited with code 3 before a terminal event\n"));
    // OK-1 completed; with max_continuations 0 its claim is blocked at once: the hook says so.
    CHECK_THAT(text, Catch::Contains("blocked OK-1 blocked: stage finished 1 time(s) in a row but the issue stayed in state"));
}

TEST_CASE("rules: with a tracker that cannot fetch by id, retries still run on the last pull's states", "[scheduling][rules]") {
    SchedulerHarness h;
    Project &p = h.project;
    logging_agent(p, "exit 1\n");
    // The C example tracker (tests/plugins/good-c): pull answers C-1, fetch is VIK_UNSUPPORTED.
    h.start("agents:\n  bot:\n    runtime: scripted\n    model: none\n    settings: {command: " + (p.dir / "agent.sh").string() +
                "}\nissues:\n  tracker: {kind: c-fixed}\n  pull: {idle_sec: 60}\nissue:\n" + kWork,
            nullptr, {test_plugin_root() / "good"});
    REQUIRE(h.run_until([&] { return h.view().retrying.size() == 1; }));
    h.advance(10s);
    REQUIRE(h.run_until([&] { return lines(p.dir / "prompts.log") == 2; }));
    CHECK_THAT(h.log(), Catch::Contains("tracker good-c cannot fetch issues by id (unsupported); retries, continuations and "
                                        "refreshes use the states of the last pull"));
    CHECK_THAT(read_file(p.dir / "prompts.log"), Catch::Contains("attempt=2 kind=failure"));
}

TEST_CASE("rules: agent_by_label runs a stage with the profile an issue's label picks", "[scheduling][rules]") {
    SchedulerHarness h;
    Project &p = h.project;
    std::string ran = shell_quote((p.dir / "ran.log").string());
    p.issues(R"([{"id":"L-1","title":"t","state":"todo","labels":["agent:b"]},
                 {"id":"L-2","title":"t","state":"todo","labels":[{"name":"bug"}]},
                 {"id":"L-3","title":"t","state":"todo"}])");
    auto profile = [&](const std::string &name) {
        return "  " + name +
               ":\n    runtime: scripted\n    model: none\n    settings:\n      command: |\n        cat >/dev/null\n"
               "        echo \"" +
               name + " $VIK_ISSUE_ID\" >> " + ran + "\n        echo '{\"kind\":\"completed\"}'\n";
    };
    h.start("agents:\n" + profile("a") + profile("b") +
            "issues:\n  tracker: {kind: file, path: issues.json}\n  pull: {idle_sec: 60}\n"
            "issue:\n  stages:\n    work:\n      when: {state: todo}\n      agent: a\n"
            "      agent_by_label: {'agent:b': b, bug: b}\n      prompt: p\n");
    REQUIRE(h.run_until([&] { return count(read_file(p.dir / "ran.log"), "\n") == 3; }));
    std::string text = read_file(p.dir / "ran.log");
    CHECK_THAT(text, Catch::Contains("b L-1\n"));
    CHECK_THAT(text, Catch::Contains("b L-2\n")); // GitHub's label objects count by name
    CHECK_THAT(text, Catch::Contains("a L-3\n"));
}

TEST_CASE("rules: an agent_by_label profile that does not exist is a doctor error naming the label", "[scheduling][rules]") {
    Project p;
    write_file(p.workflow(), "agents:\n  a: {runtime: scripted, model: none, settings: {command: /bin/true}}\n"
                             "issues:\n  tracker: {kind: file, path: issues.json}\n"
                             "issue:\n  stages:\n    work:\n      when: {state: todo}\n      agent: a\n"
                             "      agent_by_label: {urgent: ghost}\n      prompt: p\n");
    p.issues("[]");
    auto r = run_host({"doctor", p.workflow().string()}, p.dir.path);
    CHECK(r.exit_code == 1);
    CHECK_THAT(r.out + r.err, Catch::Contains("agent profile 'ghost' set for 'issue.stages.work.agent_by_label.urgent' is not "
                                              "defined in agents configuration section"));
    CHECK_THAT(r.out + r.err, !Catch::Contains("unknown field"));
}
