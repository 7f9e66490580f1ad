// Scheduling end to end through the real binary: the races and stale observations that need a
// slow tracker (the probe plugin), workspaces, and operator control through the CLI. The rules
// themselves (retries, backoff, blocks, stall, timeouts, limits, priority, reconciliation) are
// tested in-process on a manual clock: tests/orchestrator/scheduling_rules_test.cpp.
#include "e2e/e2e_support.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <csignal>
#include <regex>
#include <thread>

using namespace vik::test;
namespace fs = std::filesystem;
namespace json = boost::json;
using namespace std::chrono_literals;

namespace {

// A pull script that prints pulls/<n>.json for its n-th call (the last one repeats).
void scripted_pulls(Project &p, const std::vector<std::string> &answers) {
    for (size_t i = 0; i < answers.size(); ++i)
        write_file(p.dir / "pulls" / (std::to_string(i + 1) + ".json"), answers[i]);
    p.agent("pull.sh", "#!/bin/sh\nn=$(cat count 2>/dev/null || echo 0); n=$((n+1)); echo $n > count\n"
                       "if [ -f pulls/$n.json ]; then f=pulls/$n.json; else f=pulls/" +
                           std::to_string(answers.size()) +
                           ".json; fi\n"
                           "if grep -q FAIL $f; then echo 'tracker unavailable' >&2; exit 1; fi\ncat $f\n");
}

std::string pulling_workflow(const Project &p, const std::string &agent_extra, const std::string &stages,
                             const std::string &rest) {
    return "agents:\n  bot:\n    runtime: scripted\n    model: none\n" + agent_extra +
           "    settings: {command: " + (p.dir / "agent.sh").string() +
           "}\nissues:\n  pull:\n    command: ./pull.sh\n    idle_sec: 1\nissue:\n" + stages + rest;
}

// The probe tracker (tests/plugins/probe-tracker): issues.json read at the start of each pull,
// every pull logged to pulls.log, optional delays.
CommandResult run_probe(const Project &p, int timeout_sec = 90) {
    return run_host(
        {"--plugins", plugin_dir().string(), "--plugins", (test_plugin_root() / "probe").string(), "run", p.workflow().string()},
        p.dir.path, {}, timeout_sec);
}

std::string probe_workflow(const Project &p, const std::string &tracker_extra, const std::string &issue,
                           const std::string &rest) {
    return "agents:\n  bot:\n    runtime: scripted\n    model: none\n    settings: {command: " + (p.dir / "agent.sh").string() +
           "}\nissues:\n  tracker: {kind: probe, path: issues.json, log: pulls.log" + tracker_extra +
           "}\n  pull: {idle_sec: 1}\nissue:\n" + issue + rest;
}

// Shell helpers for agents and hooks: `pulls` counts the pulls started so far; `wait_pulls N`
// waits (30 s at most) until N have started; `wait_file F` waits until F exists, `wait_gone D`
// until D is gone. A pull that starts after another has been answered shows that the host has
// handled the earlier answer (the next pull is scheduled at the end of that handling).
std::string probe_shell(const Project &p) {
    std::string log = shell_quote((p.dir / "pulls.log").string());
    return "pulls() { cat " + log +
           " 2>/dev/null | grep -c pull-start; }\n"
           "wait_pulls() { i=0; while [ \"$(pulls)\" -lt \"$1\" ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done; }\n"
           "wait_file() { i=0; while [ ! -e \"$1\" ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done; }\n"
           "wait_gone() { i=0; while [ -e \"$1\" ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done; }\n";
}

// The agent of the bystander issue O-1 waits until T-1 went terminal and its workspace is gone,
// then moves O-1 on and completes: it finishes only if the host survived the race.
std::string bystander_branch(const Project &p) {
    return "  O-1) wait_file " + shell_quote((p.dir / "closed").string()) +
           "; wait_gone ../T-1\n"
           "       \"$VIK_HOST_BIN\" issue set-state O-1 review >/dev/null\n"
           "       echo '{\"kind\":\"completed\"}' ;;\n";
}

void check_survived(const Project &p, const CommandResult &r) {
    CHECK(r.exit_code == 0);
    CHECK_THAT(r.out + r.err, !Catch::Contains("run failed"));
    CHECK_THAT(r.out, !Catch::Contains("invariant violated"));
    CHECK(std::regex_search(r.out, std::regex("session finished issue_id=O-1 stage=work session_id=[^ ]+ state=completed")));
    CHECK_THAT(r.out, Catch::Contains("workspace removed issue_id=T-1"));
    CHECK_FALSE(fs::exists(p.workspace("T-1")));
    CHECK(fs::exists(p.workspace("O-1")));
}

// A workflow on the file tracker (issues.json) whose agent `bot` runs agent.sh, with `more_agents`
// (profile lines under `agents:`), the given stages and extra top-level text.
std::string file_tracker_workflow(const Project &p, const std::string &stages, const std::string &rest,
                                  const std::string &more_agents = "") {
    return "agents:\n  bot: {runtime: scripted, model: none, settings: {command: " + (p.dir / "agent.sh").string() + "}}\n" +
           more_agents + "issues:\n  tracker: {kind: file, path: issues.json}\n  pull: {idle_sec: 1}\nissue:\n  stages:\n" +
           stages + rest;
}

const char *kTwoIssues = R"([{"id":"T-1","title":"t","state":"todo"},{"id":"O-1","title":"o","state":"todo"}])";

} // namespace

TEST_CASE("scheduling: an agent that sets a terminal state and lingers does not bring the host down", "[scheduling][e2e][race]") {
    Project p;
    std::string closed = shell_quote((p.dir / "closed").string());
    // T-1 reports completion, moves itself to done, and lingers until the host has seen `done`
    // (it is stopped by reconciliation meanwhile): its stage ends after terminal cleanup began.
    p.agent("agent.sh", "#!/bin/sh\ncat >/dev/null\n" + probe_shell(p) +
                            "case \"$VIK_ISSUE_ID\" in\n"
                            // Completion is reported before the state moves: a pull that sees `done` first
                            // would stop the run before its `completed` line was read.
                            "  T-1) echo '{\"kind\":\"completed\"}'\n"
                            "       \"$VIK_HOST_BIN\" issue set-state T-1 done >/dev/null; touch " +
                            closed + "\n       n=$(pulls); wait_pulls $((n+2)) ;;\n" + bystander_branch(p) + "esac\n");
    write_file(p.dir / "issues.json", kTwoIssues);
    write_file(p.workflow(), probe_workflow(p, "", "  stages:\n    work: {when: {state: todo}, agent: bot, prompt: p}\n",
                                            "loop: {max_iterations: 6}\nscheduling: {terminal_states: [done]}\n"));
    auto r = run_probe(p);
    INFO(r.out << r.err);
    check_survived(p, r);
    CHECK(std::regex_search(r.out, std::regex("session finished issue_id=T-1 stage=work session_id=[^ ]+ state=completed")));
}

TEST_CASE("scheduling: a slow after_run while the issue goes terminal does not bring the host down", "[scheduling][e2e][race]") {
    Project p;
    std::string closed = shell_quote((p.dir / "closed").string());
    p.agent("agent.sh", "#!/bin/sh\ncat >/dev/null\n" + probe_shell(p) +
                            "case \"$VIK_ISSUE_ID\" in\n"
                            // As above: `completed` first, so the run ends completed and its after_run runs.
                            "  T-1) echo '{\"kind\":\"completed\"}'\n"
                            "       \"$VIK_HOST_BIN\" issue set-state T-1 done >/dev/null; touch " +
                            closed + " ;;\n" + bystander_branch(p) + "esac\n");
    write_file(p.dir / "after_run.sh", probe_shell(p) +
                                           "[ \"$VIK_ISSUE_ID\" = T-1 ] || exit 0\nn=$(pulls); wait_pulls $((n+2))\n"
                                           "touch " +
                                           shell_quote((p.dir / "after-run-done").string()) + "\n");
    write_file(p.dir / "issues.json", kTwoIssues);
    write_file(p.workflow(), probe_workflow(p, "",
                                            "  stages:\n    work:\n      when: {state: todo}\n      agent: bot\n      prompt: p\n"
                                            "      hooks: {after_run: sh " +
                                                shell_quote((p.dir / "after_run.sh").string()) + "}\n",
                                            "loop: {max_iterations: 6}\nscheduling: {terminal_states: [done]}\n"));
    auto r = run_probe(p);
    INFO(r.out << r.err);
    check_survived(p, r);
    CHECK(fs::exists(p.dir / "after-run-done"));
    CHECK_THAT(r.out, Catch::Contains("terminal cleanup deferred issue_id=T-1"));
}

TEST_CASE("scheduling: an issue closed during a slow after_create does not bring the host down", "[scheduling][e2e][race]") {
    Project p;
    std::string closed = shell_quote((p.dir / "closed").string());
    p.agent("agent.sh", "#!/bin/sh\ncat >/dev/null\n" + probe_shell(p) +
                            "case \"$VIK_ISSUE_ID\" in\n"
                            "  T-1) echo '{\"kind\":\"completed\"}' ;;\n" +
                            bystander_branch(p) + "esac\n");
    // A person closes T-1 (edits the tracker's file) while its after_create still runs; the hook
    // ends once the host has seen it closed.
    write_file(
        p.dir / "after_create.sh",
        probe_shell(p) +
            "[ \"$VIK_ISSUE_ID\" = T-1 ] || exit 0\n"
            "sed -i 's/\"id\":\"T-1\",\"title\":\"t\",\"state\":\"todo\"/\"id\":\"T-1\",\"title\":\"t\",\"state\":\"done\"/' " +
            shell_quote((p.dir / "issues.json").string()) + "\ntouch " + closed + "\nn=$(pulls); wait_pulls $((n+2))\n");
    write_file(p.dir / "issues.json", kTwoIssues);
    write_file(p.workflow(), probe_workflow(p, "",
                                            "  hooks: {after_create: sh " + shell_quote((p.dir / "after_create.sh").string()) +
                                                "}\n"
                                                "  stages:\n    work: {when: {state: todo}, agent: bot, prompt: p}\n",
                                            "loop: {max_iterations: 6}\nscheduling: {terminal_states: [done]}\n"));
    auto r = run_probe(p);
    INFO(r.out << r.err);
    check_survived(p, r);
    CHECK_THAT(r.out,
               Catch::Contains("stage not launched issue_id=T-1 stage=work: the issue reached a terminal state during setup"));
    CHECK(p.session_files("T-1").empty());
}

TEST_CASE("scheduling: a pull that started before the host moved an issue cannot dispatch it again", "[scheduling][e2e][stale]") {
    Project p;
    // The agent waits until a pull is in flight (it read `design`), moves the issue on through the
    // host and ends at once: the pull answers `design` 1.5 s later, after the claim was released.
    p.agent("agent.sh", "#!/bin/sh\ncat >/dev/null\n" + probe_shell(p) +
                            "n=$(pulls); wait_pulls $((n+1))\n\"$VIK_HOST_BIN\" issue set-state D-1 review >/dev/null\n"
                            "echo '{\"kind\":\"completed\"}'\n");
    write_file(p.dir / "issues.json", R"([{"id":"D-1","title":"t","state":"design"}])");
    write_file(p.workflow(), probe_workflow(p, ", pull_delay_ms: 1500",
                                            "  stages:\n    design: {when: {state: design}, agent: bot, prompt: p}\n",
                                            "loop: {max_iterations: 3}\n"));
    auto r = run_probe(p);
    INFO(r.out << r.err << read_file(p.dir / "pulls.log"));
    REQUIRE(r.exit_code == 0);
    CHECK_THAT(r.out, Catch::Contains("stale observation ignored issue_id=D-1 state=design: state 'review' was learned"));
    CHECK(count(r.out, "launching stages issue_id=D-1") == 1);
    CHECK(p.session_files("D-1").size() == 1);
}

TEST_CASE("scheduling: a pull that started before the host moved an issue cannot cancel its run", "[scheduling][e2e][stale]") {
    Project p;
    std::string issues = shell_quote((p.dir / "issues.json").string());
    // A person puts K-1 on hold; a pull reads `hold`; while it is in flight the host (asked by the
    // agent) moves K-1 back to todo. That pull's answer is older than the host's write: it must not
    // stop the run. The agent completes once the host has handled it.
    p.agent("agent.sh", "#!/bin/sh\ncat >/dev/null\n" + probe_shell(p) + "sed -i 's/\"state\":\"todo\"/\"state\":\"hold\"/' " +
                            issues + "\ni=0; while ! grep -q 'pull-start.*K-1=hold' " +
                            shell_quote((p.dir / "pulls.log").string()) +
                            " && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done\n"
                            "\"$VIK_HOST_BIN\" issue set-state K-1 todo >/dev/null\n"
                            "n=$(pulls); wait_pulls $((n+1))\n"
                            "\"$VIK_HOST_BIN\" issue set-state K-1 review >/dev/null\necho '{\"kind\":\"completed\"}'\n");
    write_file(p.dir / "issues.json", R"([{"id":"K-1","title":"t","state":"todo"}])");
    write_file(p.workflow(),
               probe_workflow(p, ", pull_delay_ms: 2000", "  stages:\n    work: {when: {state: todo}, agent: bot, prompt: p}\n",
                              "loop: {max_iterations: 4}\n"));
    auto r = run_probe(p);
    INFO(r.out << r.err << read_file(p.dir / "pulls.log"));
    REQUIRE(r.exit_code == 0);
    CHECK_THAT(r.out, Catch::Contains("stale observation ignored issue_id=K-1 state=hold: state 'todo' was learned"));
    CHECK_THAT(r.out, !Catch::Contains("stopping session"));
    CHECK(std::regex_search(r.out, std::regex("session finished issue_id=K-1 stage=work session_id=[^ ]+ state=completed")));
    CHECK(p.session_files("K-1").size() == 1);
}

TEST_CASE("scheduling: a workspace whose after_create never finished is rebuilt on the next claim",
          "[scheduling][e2e][workspace]") {
    Project p;
    p.agent("agent.sh", kOkAgent);
    std::string script = (p.dir / "after_create.sh").string();
    // Logs how many entries the workspace held when after_create began, leaves a file behind,
    // and finishes only once `go` exists (30 s at most).
    write_file(script, "echo \"entries=$(ls -A | wc -l)\" >> " + shell_quote((p.dir / "created.log").string()) +
                           "\ntouch half-made\ni=0; while [ ! -e " + shell_quote((p.dir / "go").string()) +
                           " ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done\n[ -e " + shell_quote((p.dir / "go").string()) +
                           " ]\n");
    scripted_pulls(p, {R"([{"id":"W-1","title":"t","state":"todo"}])"});
    write_file(p.workflow(), pulling_workflow(p, "",
                                              "  hooks: {after_create: sh " + shell_quote(script) +
                                                  "}\n  stages:\n    work: {when: {state: todo}, agent: bot, prompt: p}\n",
                                              "loop: {max_iterations: 1}\n"));
    fs::path marker = p.scoped() / "issues" / ".creating" / "W-1";
    {
        auto host = start_host({"run", p.workflow().string()}, p.dir.path);
        REQUIRE(wait_until([&] { return fs::exists(p.workspace("W-1") / "half-made"); }, 20s));
        host->signal(SIGKILL);
        CHECK(host->wait(10s) == 128 + SIGKILL);
    }
    REQUIRE(wait_until([&] { return !process_with_marker_alive(script); }, 10s)); // the orphan guard killed the hook
    CHECK(fs::exists(marker));                                                    // the workspace is known half-made
    write_file(p.dir / "go", "");
    // Whether the killed host's claim reached the store before the kill is a matter of timing; a
    // resumed claim would wait out its retry delay past this run's one intake. What is tested
    // here is the workspace's marker, so the restart claims afresh.
    fs::remove_all(p.scoped() / "state");
    auto r = p.run();
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    CHECK_THAT(r.out, Catch::Contains("workspace was left half-made (its after_create never finished); rebuilt issue_id=W-1"));
    CHECK(read_file(p.dir / "created.log") == "entries=0\nentries=0\n"); // the second after_create began in an empty directory
    CHECK_FALSE(fs::exists(marker));
    CHECK((fs::status(p.workspace("W-1")).permissions() & fs::perms::all) == fs::perms::owner_all);
    CHECK(p.session_files("W-1").size() == 1);

    fs::remove_all(p.scoped() / "state"); // a fresh claim: the store would resume the queued continuation
    auto again = p.run();                 // ready now: after_create does not run again
    INFO(again.out << again.err);
    REQUIRE(again.exit_code == 0);
    CHECK(read_file(p.dir / "created.log") == "entries=0\nentries=0\n");
    CHECK(p.session_files("W-1").size() == 2);
}

TEST_CASE("scheduling: without an after_create and with only scripted-only hooks plugins, a new workspace is ready as made",
          "[scheduling][e2e][workspace]") {
    Project p;
    p.agent("agent.sh", kOkAgent);
    scripted_pulls(p, {R"([{"id":"R-1","title":"t","state":"todo"}])"});
    // shell-hooks (scripted_only) is loaded; the workflow gives it no script at all.
    write_file(p.workflow(), pulling_workflow(p, "", "  stages:\n    work: {when: {state: todo}, agent: bot, prompt: p}\n",
                                              "loop: {max_iterations: 1}\n"));
    auto r = p.run();
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(fs::is_directory(p.workspace("R-1")));
    CHECK((fs::status(p.workspace("R-1")).permissions() & fs::perms::all) == fs::perms::owner_all);
    // Nothing had to finish before the workspace counted as ready: no marker was ever written.
    CHECK_FALSE(fs::exists(p.scoped() / "issues" / ".creating"));
    // The id is the directory name: no id record is needed either.
    CHECK_FALSE(fs::exists(p.scoped() / "issues" / ".ids" / "R-1"));
    CHECK(p.session_files("R-1").size() == 1);
}

TEST_CASE("scheduling: workspaces of issues already terminal are cleaned at start", "[scheduling][e2e]") {
    Project p;
    p.agent("agent.sh", kOkAgent);
    fs::create_directories(p.workspace("OLD-1"));
    write_file(p.workspace("OLD-1") / "leftover.txt", "x");
    scripted_pulls(p, {R"([{"id":"OLD-1","title":"t","state":"closed"}])"});
    write_file(p.workflow(), pulling_workflow(p, "", "  stages:\n    work: {when: {state: todo}, agent: bot, prompt: p}\n",
                                              "loop: {max_iterations: 1}\nscheduling: {terminal_states: [closed]}\n"));
    auto r = p.run();
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    CHECK_FALSE(fs::exists(p.workspace("OLD-1")));
}

TEST_CASE("scheduling: a workspace symlinked outside the root is refused", "[scheduling][e2e][security]") {
    Project p;
    p.agent("agent.sh", kOkAgent);
    fs::create_directories(p.dir / "outside");
    fs::create_directories(p.scoped() / "issues");
    fs::create_directory_symlink(p.dir / "outside", p.workspace("EVIL-1"));
    scripted_pulls(p, {R"([{"id":"EVIL-1","title":"t","state":"todo"}])"});
    write_file(p.workflow(),
               pulling_workflow(
                   p, "",
                   "  hooks: {after_create: touch owned}\n  stages:\n    work: {when: {state: todo}, agent: bot, prompt: p}\n",
                   "loop: {max_iterations: 1}\n"));
    auto r = p.run();
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    CHECK_THAT(r.out, Catch::Contains("issue setup failed issue_id=EVIL-1: workspace"));
    CHECK_THAT(r.out, Catch::Contains("is a symlink that escapes the root"));
    CHECK(fs::is_empty(p.dir / "outside"));
}

TEST_CASE("scheduling: an issue moves through three states while agents work on it", "[scheduling][e2e]") {
    Project p;
    p.agent("agent.sh", R"(#!/bin/sh
cat > "prompt-$VIK_ISSUE_STAGE.txt"
case "$VIK_ISSUE_STAGE" in design) next=build ;; build) next=review ;; review) next=done ;; esac
"$VIK_HOST_BIN" issue set-state "$VIK_ISSUE_ID" "$next" > /dev/null
echo '{"kind":"completed"}'
)");
    write_file(p.dir / "issues.json", R"([{"id":"FLOW-1","title":"three states","state":"design"}])");
    write_file(p.workflow(), "loop: {max_iterations: 5}\n"
                             "agents:\n  bot: {runtime: scripted, model: none, settings: {command: " +
                                 (p.dir / "agent.sh").string() +
                                 "}}\n"
                                 "issues:\n  tracker: {kind: file, path: issues.json}\n  pull: {idle_sec: 1}\n"
                                 "issue:\n  hooks:\n    before_remove: cp prompt-*.txt " +
                                 p.dir.path.string() +
                                 "/\n"
                                 "  stages:\n"
                                 "    design: {when: {state: design}, agent: bot, prompt: 'design {{ issue.id }}'}\n"
                                 "    build: {when: {state: build}, agent: bot, prompt: 'build {{ issue.id }}'}\n"
                                 "    review: {when: {state: review}, agent: bot, prompt: 'review {{ issue.id }}'}\n"
                                 "scheduling: {terminal_states: [done]}\n");
    auto r = p.run();
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(json::parse(read_file(p.dir / "issues.json")).at(0).at("state") == "done");
    auto files = p.session_files("FLOW-1");
    REQUIRE(files.size() == 3);
    for (const char *stage : {"design", "build", "review"})
        CHECK(read_file(p.dir / ("prompt-" + std::string(stage) + ".txt")) == stage + std::string(" FLOW-1"));
    CHECK_FALSE(fs::exists(p.workspace("FLOW-1"))); // done is terminal: cleaned after before_remove
}

TEST_CASE("scheduling: a failing test stage is routed to a fix stage and back until max_routes blocks it",
          "[scheduling][e2e][routing]") {
    Project p;
    // test fails; fix reads the failure from its prompt and moves the issue back through the host.
    p.agent("agent.sh", "#!/bin/sh\n{ cat; echo; } >> " + shell_quote(p.dir.path.string()) + "/\"$VIK_ISSUE_STAGE.prompts\"\n" +
                            R"(case "$VIK_ISSUE_STAGE" in
  test) echo '{"kind":"error","detail":"3 tests failed"}' ;;
  fix) "$VIK_HOST_BIN" issue set-state "$VIK_ISSUE_ID" testing > /dev/null
       echo '{"kind":"completed"}' ;;
esac
)");
    write_file(p.dir / "issues.json", R"([{"id":"RT-1","title":"flaky","state":"testing"}])");
    write_file(p.workflow(),
               "agents:\n  bot: {runtime: scripted, model: none, settings: {command: " + (p.dir / "agent.sh").string() +
                   "}}\n"
                   "issues:\n  tracker: {kind: file, path: issues.json}\n  pull: {idle_sec: 1}\n"
                   "issue:\n  stages:\n"
                   "    test: {when: {state: testing}, agent: bot, on_fail: fix, prompt: 'test {{ issue.id }}'}\n"
                   "    fix: {when: {state: fixing}, agent: bot, prompt: 'fix {{ issue.id }} after {{ failure.stage }}: "
                   "{{ failure.reason }} (route {{ failure.routes }})'}\n"
                   "scheduling: {max_routes: 1}\n");
    auto doctor = run_host({"doctor", p.workflow().string()});
    CHECK(doctor.out == "Vik doctor shows 0 error(s), 0 warning(s)\n");
    // Runs until the cycle ends in its block, however slow the machine.
    auto host = start_host({"run", p.workflow().string()}, p.dir.path);
    const std::string blocked = "stage blocked issue_id=RT-1 stage=test: failed 1 time(s) after 1 route(s) to stage 'fix' "
                                "(scheduling.max_routes = 1)";
    bool ended = wait_until([&] { return host->stdout_text().find(blocked) != std::string::npos; }, 60s);
    host->signal(SIGTERM);
    CHECK(host->wait(20s) == 0);
    std::string out = host->stdout_text();
    INFO(out);
    REQUIRE(ended);
    CHECK_THAT(out, Catch::Contains("stage failed; routing issue_id=RT-1 stage=test to stage=fix (state 'fixing')"));
    CHECK(read_file(p.dir / "test.prompts") == "test RT-1\ntest RT-1\n");
    std::string fix = read_file(p.dir / "fix.prompts");
    CHECK_THAT(fix, Catch::StartsWith("fix RT-1 after test: ") && Catch::Contains("3 tests failed") &&
                        Catch::EndsWith(" (route 1)\n"));
    CHECK(count(fix, "fix RT-1") == 1);
    CHECK(json::parse(read_file(p.dir / "issues.json")).at(0).at("state") == "testing");
    CHECK(p.session_files("RT-1").size() == 3);
}

TEST_CASE("gates: a failing check sends the issue back with its output, a passing one lets the move stand",
          "[scheduling][e2e][gates]") {
    Project p;
    std::string dir = shell_quote(p.dir.path.string());
    // The first run leaves a failing result, the second a passing one; each moves the issue on.
    p.agent("agent.sh", "#!/bin/sh\n{ cat; echo; } >> " + dir + "/prompts.log\nif [ -e " + dir +
                            "/built ]; then echo PASS > result.txt; else echo FAIL > result.txt; touch " + dir +
                            "/built; fi\n\"$VIK_HOST_BIN\" issue set-state \"$VIK_ISSUE_ID\" review > /dev/null\n"
                            "echo '{\"kind\":\"completed\"}'\n");
    write_file(p.dir / "issues.json", R"([{"id":"E-1","title":"t","state":"build"}])");
    write_file(p.workflow(),
               file_tracker_workflow(p,
                                     "    build:\n      when: {state: build}\n      agent: bot\n"
                                     "      prompt: 'build {{ attempt }} {{ last_error }}'\n"
                                     "      gate: {command: 'grep -q PASS result.txt || { echo \"3 tests failed\"; exit 1; }'}\n",
                                     "scheduling: {retry_base_sec: 1}\n"));
    auto host = start_host({"run", p.workflow().string()}, p.dir.path);
    bool passed = wait_until([&] { return host->stdout_text().find("gate passed issue_id=E-1") != std::string::npos; }, 60s);
    host->signal(SIGTERM);
    CHECK(host->wait(20s) == 0);
    INFO(host->stdout_text());
    REQUIRE(passed);
    CHECK_THAT(host->stdout_text(), Catch::Contains("gate failed issue_id=E-1 stage=build: exited with code 1: 3 tests failed"));
    CHECK_THAT(host->stdout_text(), Catch::Contains("issue moved back issue_id=E-1 state=build: its gate failed"));
    CHECK(read_file(p.dir / "prompts.log") == "build 1 \nbuild 2 gate failed: exited with code 1: 3 tests failed\n");
    CHECK(json::parse(read_file(p.dir / "issues.json")).at(0).at("state") == "review");
}

TEST_CASE("gates: a human rejects a run with feedback through the CLI, then approves, and an agent may not answer its own gate",
          "[scheduling][e2e][gates]") {
    Project p;
    std::string dir = shell_quote(p.dir.path.string());
    // build: logs its prompt, tries to approve itself (refused), moves the issue to review;
    // review: logs its prompt, moves the issue to done.
    p.agent("agent.sh", "#!/bin/sh\n{ cat; echo; } >> " + dir +
                            "/prompts.log\n"
                            "case \"$VIK_ISSUE_STAGE\" in\n"
                            "  build) \"$VIK_HOST_BIN\" gate approve \"$VIK_ISSUE_ID\" 2>> " +
                            dir +
                            "/self-approval.err\n"
                            "         \"$VIK_HOST_BIN\" issue set-state \"$VIK_ISSUE_ID\" review > /dev/null ;;\n"
                            "  review) \"$VIK_HOST_BIN\" issue set-state \"$VIK_ISSUE_ID\" done > /dev/null ;;\n"
                            "esac\necho '{\"kind\":\"completed\"}'\n");
    write_file(p.dir / "issues.json", R"([{"id":"E-2","title":"t","state":"build"}])");
    write_file(p.workflow(), file_tracker_workflow(p,
                                                   "    build:\n      when: {state: build}\n      agent: bot\n"
                                                   "      prompt: 'build {{ retry_kind }} {{ gate_feedback }}'\n"
                                                   "      gate: {human: true, notify_after_sec: 3600}\n"
                                                   "    review: {when: {state: review}, agent: bot, prompt: 'review'}\n",
                                                   "scheduling: {terminal_states: [done]}\n"));
    CHECK(run_host({"doctor", p.workflow().string()}).out == "Vik doctor shows 0 error(s), 0 warning(s)\n");
    auto host = start_host({"run", p.workflow().string()}, p.dir.path);
    const std::string awaits = "stage awaits approval issue_id=E-2 stage=build";
    auto awaited = [&](size_t n) {
        if (wait_until([&] { return count(host->stdout_text(), awaits) >= n; }, 90s)) return true;
        FAIL_CHECK("the run did not reach its gate " << n << " time(s); the host said:\n" << host->stdout_text());
        return false;
    };
    REQUIRE(awaited(1));
    // Nothing awaits for another issue; a wrong verb is a usage error.
    auto none = run_host({"gate", "approve", "E-9", p.workflow().string()});
    CHECK(none.exit_code == 1);
    CHECK(none.err == "gate approve failed: issue E-9 has no stage awaiting approval\n");
    CHECK(run_host({"gate", "open", "E-2", p.workflow().string()}).exit_code == 2);
    auto rejected = run_host({"gate", "reject", "E-2", "--feedback", "cover the empty list", p.workflow().string()});
    CHECK(rejected.exit_code == 0);
    CHECK(rejected.out == "rejected 1 stage(s) of issue E-2; the stage runs again with your feedback\n");
    REQUIRE(awaited(2));
    auto approved = run_host({"gate", "approve", "E-2", p.workflow().string()});
    CHECK(approved.exit_code == 0);
    CHECK(approved.out == "approved 1 stage(s) of issue E-2; the issue goes on\n");
    bool done = wait_until([&] { return json::parse(read_file(p.dir / "issues.json")).at(0).at("state") == "done"; }, 60s);
    host->signal(SIGTERM);
    CHECK(host->wait(20s) == 0);
    INFO(host->stdout_text());
    REQUIRE(done);
    CHECK(read_file(p.dir / "prompts.log") == "build first \nbuild rejected cover the empty list\nreview\n");
    CHECK(read_file(p.dir / "self-approval.err") ==
          std::string("gate approve failed: agents may not approve a gate: a human decides (issue E-2)\n") +
              "gate approve failed: agents may not approve a gate: a human decides (issue E-2)\n");
}

TEST_CASE("gates: a reviewer agent rejects a run, the author addresses its feedback, and the reviewer approves",
          "[scheduling][e2e][gates]") {
    Project p;
    std::string dir = shell_quote(p.dir.path.string());
    // The author writes the change (with tests only when the feedback asks for them) and moves the
    // issue on; the reviewer approves a change with tests and asks for them otherwise.
    p.agent("agent.sh",
            "#!/bin/sh\nprompt=$(cat)\necho \"$prompt\" >> " + dir +
                "/prompts.log\n"
                "case \"$prompt\" in *'add tests'*) echo 'code and tests' > change.txt ;; *) echo code > change.txt ;; "
                "esac\n\"$VIK_HOST_BIN\" issue set-state \"$VIK_ISSUE_ID\" merged > /dev/null\n"
                "echo '{\"kind\":\"completed\"}'\n");
    p.agent("critic.sh", "#!/bin/sh\ncat >> " + dir + "/reviews.log\necho >> " + dir +
                             "/reviews.log\nmkdir -p .vik\n"
                             "if grep -q tests change.txt; then echo '{\"approved\": true}' > .vik/verdict.json\n"
                             "else echo '{\"approved\": false, \"feedback\": \"add tests\"}' > .vik/verdict.json; fi\n"
                             "echo '{\"kind\":\"completed\"}'\n");
    write_file(p.dir / "issues.json", R"([{"id":"E-3","title":"t","state":"build"}])");
    write_file(p.workflow(),
               file_tracker_workflow(
                   p,
                   "    build:\n      when: {state: build}\n      agent: bot\n"
                   "      prompt: 'build {{ retry_kind }}{% if gate_feedback %}: {{ gate_feedback }}{% endif %}'\n"
                   "      gate:\n        agent: critic\n"
                   "        prompt: 'Review the change for {{ issue.id }} in change.txt'\n",
                   "scheduling: {retry_base_sec: 1}\n",
                   "  critic: {runtime: scripted, model: none, settings: {command: " + (p.dir / "critic.sh").string() + "}}\n"));
    CHECK(run_host({"doctor", p.workflow().string()}).out == "Vik doctor shows 0 error(s), 0 warning(s)\n");
    auto host = start_host({"run", p.workflow().string()}, p.dir.path);
    bool approved = wait_until(
        [&] { return host->stdout_text().find("review approved issue_id=E-3 stage=build") != std::string::npos; }, 60s);
    host->signal(SIGTERM);
    CHECK(host->wait(20s) == 0);
    INFO(host->stdout_text());
    REQUIRE(approved);
    CHECK_THAT(host->stdout_text(), Catch::Contains("review rejected issue_id=E-3 stage=build agent=critic: add tests"));
    CHECK_THAT(host->stdout_text(), Catch::Contains("issue moved back issue_id=E-3 state=build: its gate failed"));
    CHECK(read_file(p.dir / "prompts.log") == "build first\nbuild failure: add tests\n");
    CHECK(read_file(p.dir / "reviews.log") ==
          "Review the change for E-3 in change.txt\nReview the change for E-3 in change.txt\n");
    CHECK(json::parse(read_file(p.dir / "issues.json")).at(0).at("state") == "merged");
    CHECK(p.session_files("E-3").size() == 4); // two runs, two reviews
}

TEST_CASE("reload: SIGHUP reloads the workflow, a refused edit keeps the running config", "[scheduling][e2e][reload]") {
    Project p;
    fs::path prompts = p.dir / "prompts.log";
    auto lines = [](const fs::path &f) { return fs::exists(f) ? count(read_file(f), "\n") : size_t{0}; };
    // The first run waits for the file `go`, so the host is reloaded while it runs; the issue
    // stays in todo, so a continuation follows with whatever config is in force then.
    p.agent("agent.sh", "#!/bin/sh\n{ cat; echo; } >> " + shell_quote(prompts.string()) + "\ni=0; while [ ! -e " +
                            shell_quote((p.dir / "go").string()) +
                            " ] && [ $i -lt 2400 ]; do sleep 0.05; i=$((i+1)); done\necho '{\"kind\":\"completed\"}'\n");
    write_file(p.dir / "issues.json", R"([{"id":"H-1","title":"t","state":"todo"}])");
    auto workflow = [&](const std::string &prompt, const std::string &agent) {
        return "agents:\n  bot: {runtime: scripted, model: none, settings: {command: " + (p.dir / "agent.sh").string() +
               "}}\nissues:\n  tracker: {kind: file, path: issues.json}\n  pull: {idle_sec: 300}\n"
               "issue:\n  stages:\n    work: {when: {state: todo}, agent: " +
               agent + ", prompt: '" + prompt +
               "'}\n"
               "scheduling: {continuation_delay_sec: 0.2, max_continuations: 1}\n";
    };
    write_file(p.workflow(), workflow("v1 {{ issue.id }}", "bot"));
    auto host = start_host({"run", p.workflow().string()}, p.dir.path);
    REQUIRE(wait_until([&] { return lines(prompts) == 1; }, 20s));

    write_file(p.workflow(), workflow("v2", "ghost"));
    host->signal(SIGHUP);
    REQUIRE(wait_until([&] { return host->stdout_text().find("workflow reload refused (SIGHUP)") != std::string::npos; }, 20s));
    CHECK_THAT(host->stdout_text(), Catch::Contains("agent profile 'ghost' set for 'issue.stages.work.agent' is not defined"));

    write_file(p.workflow(), workflow("v2 {{ issue.id }} attempt={{ attempt }}", "bot"));
    host->signal(SIGHUP);
    REQUIRE(wait_until([&] { return host->stdout_text().find("workflow reloaded (SIGHUP) generation=1") != std::string::npos; },
                       20s));
    write_file(p.dir / "go", "");
    REQUIRE(wait_until([&] { return lines(prompts) == 2; }, 20s));
    CHECK(read_file(prompts) == "v1 H-1\nv2 H-1 attempt=2\n");
    host->signal(SIGTERM);
    CHECK(host->wait(20s) == 0);
    INFO(host->stdout_text());
    CHECK_THAT(host->stdout_text(), !Catch::Contains("invariant violated"));
}

TEST_CASE("scheduling: operators retry a blocked issue and cancel a running one", "[scheduling][e2e][control]") {
    Project p;
    // Fails unless the file `ok` exists; then works for a long time.
    p.agent("agent.sh", "#!/bin/sh\ncat >/dev/null\n[ -f " + (p.dir / "ok").string() +
                            " ] || exit 1\necho '{\"kind\":\"message\",\"text\":\"working\"}'\nsleep 60\n");
    scripted_pulls(p, {R"([{"id":"OP-1","title":"t","state":"todo"}])"});
    write_file(p.workflow(), pulling_workflow(p, "", "  stages:\n    work: {when: {state: todo}, agent: bot, prompt: p}\n",
                                              "scheduling: {max_attempts: 1}\n"));
    auto none = run_host({"issue", "retry", "OP-1", p.workflow().string()});
    CHECK(none.exit_code == 1);
    CHECK_THAT(none.err, Catch::Contains("issue retry failed: no vik-host is running this workflow"));

    auto host = start_host({"run", p.workflow().string()}, p.dir.path);
    REQUIRE(wait_until([&] { return host->stdout_text().find("stage blocked issue_id=OP-1") != std::string::npos; }, 20s));
    write_file(p.dir / "ok", "");
    auto retry = run_host({"issue", "retry", "OP-1", p.workflow().string()});
    INFO(host->stdout_text());
    CHECK(retry.exit_code == 0);
    CHECK(retry.out == "queued 1 stage(s) of issue OP-1 to run again now\n");
    REQUIRE(wait_until([&] { return count(host->stdout_text(), "session started issue_id=OP-1") == 2; }, 20s));
    REQUIRE(wait_until(
        [&] { return host->stdout_text().find("\"working\"") != std::string::npos || p.session_files("OP-1").size() == 2; }, 5s));

    auto cancel = run_host({"issue", "cancel", "OP-1", p.workflow().string()});
    CHECK(cancel.exit_code == 0);
    CHECK_THAT(cancel.out, Catch::StartsWith("cancelled 1 run(s) of issue OP-1"));
    REQUIRE(wait_until(
        [&] {
            return host->stdout_text().find("stage blocked issue_id=OP-1 stage=work: cancelled by an operator") !=
                   std::string::npos;
        },
        20s));
    std::this_thread::sleep_for(1500ms); // an intake cycle passes: the blocked stage does not start again
    CHECK(count(host->stdout_text(), "session started issue_id=OP-1") == 2);
    host->signal(SIGTERM);
    CHECK(host->wait(20s) == 0);
}

TEST_CASE("operators: an agent's question parks its issue until issue retry --message answers it, in the same conversation",
          "[scheduling][e2e][control][conversation]") {
    Project p;
    std::string log = shell_quote((p.dir / "runs.log").string());
    // Asks on its first run; logs "<conversation it continues>|<prompt>" every run.
    p.agent("agent.sh", "#!/bin/sh\nprompt=$(cat)\nprintf '%s|%s\\n' \"${VIK_RESUME_CONVERSATION:-fresh}\" \"$prompt\" >> " +
                            log +
                            "\necho '{\"kind\":\"session_started\",\"session_id\":\"thread-7\"}'\n"
                            "[ -n \"$VIK_RESUME_CONVERSATION\" ] || "
                            "echo '{\"kind\":\"input_required\",\"question\":\"May I drop the legacy table?\"}'\n"
                            "echo '{\"kind\":\"completed\"}'\n");
    scripted_pulls(p, {R"([{"id":"Q-1","title":"t","state":"todo"}])"});
    write_file(p.workflow(), pulling_workflow(p, "    resume: true\n",
                                              "  stages:\n    work: {when: {state: todo}, agent: bot, prompt: 'migrate "
                                              "{{ issue.id }}', resume_prompt: 'answer: {{ operator_message }}'}\n",
                                              "scheduling: {max_continuations: 0}\n"));
    auto host = start_host({"run", p.workflow().string()}, p.dir.path);
    REQUIRE(wait_until([&] { return host->stdout_text().find("stage parked issue_id=Q-1") != std::string::npos; }, 20s));
    CHECK_THAT(host->stdout_text(), Catch::Contains("the agent needs a human: May I drop the legacy table?"));
    auto wrong = run_host({"issue", "cancel", "Q-1", "--message", "x", p.workflow().string()});
    CHECK(wrong.exit_code == 2);
    CHECK_THAT(wrong.err, Catch::Contains("--message is for `issue retry` only"));
    auto retry = run_host({"issue", "retry", "Q-1", "--message", "yes; keep a backup first", p.workflow().string()});
    INFO(host->stdout_text());
    CHECK(retry.exit_code == 0);
    CHECK(retry.out == "queued 1 stage(s) of issue Q-1 to run again now, with your message\n");
    REQUIRE(wait_until([&] { return count(read_file(p.dir / "runs.log"), "\n") == 2; }, 20s));
    CHECK(read_file(p.dir / "runs.log") == "fresh|migrate Q-1\nthread-7|answer: yes; keep a backup first\n");
    auto h = run_host({"history", "--json", "Q-1", p.workflow().string()}, p.dir.path);
    REQUIRE(wait_until(
        [&] {
            h = run_host({"history", "--json", "Q-1", p.workflow().string()}, p.dir.path);
            return h.out.find("\"succeeded\"") != std::string::npos;
        },
        10s));
    CHECK_THAT(h.out, Catch::Contains("\"input_required\""));
    host->signal(SIGTERM);
    CHECK(host->wait(20s) == 0);
}

TEST_CASE("control: an agent may change only its own issue and may not retry or cancel runs",
          "[scheduling][e2e][security][control]") {
    // In the host, and with the runtime kept out of it (plugins.isolate): the served runtime
    // reports its agent's pid, so the control channel knows the agent either way.
    bool isolated = GENERATE(false, true);
    INFO("runtime isolated: " << isolated);
    Project p;
    std::string out = shell_quote((p.dir / "agent-requests.txt").string());
    // The agent of A-1 tries to close B-1, to cancel and to retry its own runs, then moves its own issue.
    p.agent("agent.sh", "#!/bin/sh\ncat >/dev/null\n"
                        "case \"$VIK_ISSUE_ID\" in\n"
                        "  A-1) \"$VIK_HOST_BIN\" issue set-state B-1 done >>" +
                            out + " 2>&1; echo \"rc=$?\" >>" + out +
                            "\n"
                            // In a session of its own (setsid): still the agent's request.
                            "       echo setsid: >>" +
                            out + "; setsid -w \"$VIK_HOST_BIN\" issue set-state B-1 done >>" + out +
                            " 2>&1\n"
                            "       \"$VIK_HOST_BIN\" issue cancel A-1 >>" +
                            out +
                            " 2>&1\n"
                            "       \"$VIK_HOST_BIN\" issue retry A-1 >>" +
                            out +
                            " 2>&1\n"
                            "       \"$VIK_HOST_BIN\" issue set-state A-1 review >>" +
                            out +
                            " 2>&1 ;;\n"
                            "esac\necho '{\"kind\":\"completed\"}'\n");
    write_file(p.dir / "issues.json", R"([{"id":"A-1","title":"t","state":"todo"},{"id":"B-1","title":"t","state":"waiting"}])");
    write_file(p.workflow(), probe_workflow(p, "", "  stages:\n    work: {when: {state: todo}, agent: bot, prompt: p}\n",
                                            "loop: {max_iterations: 3}\n") +
                                 (isolated ? "plugins: {isolate: [scripted-agent]}\n" : ""));
    auto r = run_probe(p);
    std::string said = read_file(p.dir / "agent-requests.txt");
    INFO(r.out << r.err << said);
    REQUIRE(r.exit_code == 0);
    CHECK_THAT(said, Catch::Contains("an agent working on issue A-1 (stage work) may not change issue 'B-1'"));
    CHECK_THAT(said, Catch::Contains("rc=1"));
    auto detached = said.find("setsid:\n");
    REQUIRE(detached != std::string::npos);
    CHECK_THAT(said.substr(detached), Catch::Contains("an agent working on issue A-1 (stage work) may not change issue 'B-1'"));
    CHECK_THAT(said, Catch::Contains("agents may not cancel runs"));
    CHECK_THAT(said, Catch::Contains("agents may not retry runs"));
    // Its own issue it may move. (From the host's log: the move stops the session at the next
    // intake, which may kill the agent's client before it prints its answer.)
    CHECK_THAT(r.out, Catch::Contains("issue state changed issue_id=A-1 state=review"));
    std::string issues = read_file(p.dir / "issues.json");
    CHECK_THAT(issues, Catch::Contains(R"("id":"B-1","title":"t","state":"waiting")"));
    CHECK_THAT(r.out, Catch::Contains("control request from a child issue_id=A-1 stage=work"));
    if (isolated) CHECK_THAT(r.out, Catch::Contains("plugin scripted-agent runs in a child process (plugins.isolate)"));
}
