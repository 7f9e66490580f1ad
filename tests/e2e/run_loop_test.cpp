// `vik-host run` end to end: the real binary, the real plugins (command tracker with a script as
// pull command, scripted agent, shell hooks), real processes. vik-compat §3, §4, §6, §7.
#include "e2e/e2e_support.hpp"
#include "support/test_support.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <csignal>
#include <filesystem>
#include <regex>
#include <thread>

using namespace vik::test;
namespace fs = std::filesystem;
namespace json = boost::json;
using namespace std::chrono_literals;

TEST_CASE("run: every matching stage launches, in workflow order, and sessions are recorded", "[run][e2e]") {
    Project p;
    p.agent("agent.sh", kOkAgent);
    p.issues(R"([{"id":"A-1","title":"t","state":"todo"},{"id":"A-2","title":"u","state":"other"}])");
    write_file(p.workflow(),
               workflow_text("  max_iterations: 1\n", "    settings: {command: " + (p.dir / "agent.sh").string() + "}\n",
                             "    second: {when: {state: todo}, agent: bot, prompt: p2}\n"
                             "    first: {when: {state: todo}, agent: bot, prompt: p1}\n"
                             "    never: {when: {state: Todo}, agent: bot, prompt: p3}\n"));
    auto r = p.run();
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    CHECK_THAT(r.out, Catch::Contains("issue ready; launching stages issue_id=A-1 state=todo stages=second,first"));
    CHECK(count(r.out, "issue ready") == 1); // A-2 matches nothing; 'Todo' is not 'todo'
    auto files = p.session_files("A-1");
    REQUIRE(files.size() == 2);
    CHECK(files[0].filename().string().rfind("first-", 0) == 0);
    CHECK(files[1].filename().string().rfind("second-", 0) == 0);
    CHECK(std::regex_match(files[0].filename().string(),
                           std::regex("first-[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\\.jsonl")));
    CHECK_FALSE(fs::exists(p.scoped() / "service" / "state.json")); // removed at exit
    CHECK(fs::exists(p.scoped() / "logs"));
}

TEST_CASE("run: the session file holds exactly the agent's events in order", "[run][e2e]") {
    Project p;
    write_file(p.dir / "script.jsonl", R"({"kind":"session_started","session_id":"thread-9"}
{"kind":"tool_call","call_id":"c1","name":"shell","phase":"request","input":{"cmd":"ls"}}
{"kind":"tool_call","call_id":"c1","name":"shell","phase":"result","output":"a.txt"}
{"kind":"message","text":"all done"}
{"kind":"token_usage","input":100,"output":20,"cache_read":5}
{"kind":"completed"}
)");
    p.issues(R"([{"id":"S-1","title":"t","state":"todo"}])");
    write_file(p.workflow(), workflow_text("  max_iterations: 1\n", "    settings: {script: script.jsonl}\n",
                                           "    work: {when: {state: todo}, agent: bot, prompt: p}\n"));
    auto r = p.run();
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    auto files = p.session_files("S-1");
    REQUIRE(files.size() == 1);
    auto ev = p.events(files[0]);
    REQUIRE(ev.size() == 6);
    std::vector<std::string> kinds;
    for (auto &e : ev)
        kinds.emplace_back(e.at("kind").as_string());
    CHECK(kinds == std::vector<std::string>{"session_started", "tool_call", "tool_call", "message", "token_usage", "completed"});
    CHECK(ev[0].at("session_id") == "thread-9");
    CHECK(ev[1].at("phase") == "request");
    CHECK(ev[2].at("output") == "a.txt");
    CHECK(ev[3].at("text") == "all done");
    CHECK(ev[4].at("input") == 100);
    CHECK(ev[0].contains("at"));
    CHECK_THAT(r.out, Catch::Contains("state=completed input_tokens=100 output_tokens=20"));
}

TEST_CASE("run: a repeated intake never launches a reserved stage twice", "[run][e2e]") {
    Project p;
    // Each session appends start/end to a shared log; overlapping sessions of the same stage would
    // show two starts in a row.
    p.agent("agent.sh", "#!/bin/sh\ncat >/dev/null\necho start >> " + (p.dir / "trace.log").string() +
                            "\nsleep 1.5\necho end >> " + (p.dir / "trace.log").string() + "\necho '{\"kind\":\"completed\"}'\n");
    p.issues(R"([{"id":"R-1","title":"t","state":"todo"}])");
    write_file(p.workflow(),
               workflow_text("  max_iterations: 4\n", "    settings: {command: " + (p.dir / "agent.sh").string() + "}\n",
                             "    work: {when: {state: todo}, agent: bot, prompt: p}\n"));
    auto r = p.run();
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    std::string trace = read_file(p.dir / "trace.log");
    CHECK(trace.find("start\nstart") == std::string::npos);
    CHECK(count(trace, "start") == count(trace, "end"));
    CHECK(count(trace, "start") >= 1);
    CHECK(count(trace, "start") < 4); // some cycles found the stage reserved
}

TEST_CASE("run: the issue concurrency cap holds", "[run][e2e]") {
    Project p;
    std::string trace = (p.dir / "trace.log").string();
    p.agent("agent.sh", "#!/bin/sh\ncat >/dev/null\necho \"+$VIK_ISSUE_ID\" >> " + trace +
                            "\nsleep 0.7\necho \"-$VIK_ISSUE_ID\" >> " + trace + "\necho '{\"kind\":\"completed\"}'\n");
    p.issues(
        R"([{"id":"C-1","title":"t","state":"todo"},{"id":"C-2","title":"t","state":"todo"},{"id":"C-3","title":"t","state":"todo"},
                 {"id":"C-4","title":"t","state":"todo"},{"id":"C-5","title":"t","state":"todo"}])");
    write_file(p.workflow(), workflow_text("  max_iterations: 4\n  max_issue_concurrency: 2\n",
                                           "    settings: {command: " + (p.dir / "agent.sh").string() + "}\n",
                                           "    work: {when: {state: todo}, agent: bot, prompt: p}\n"));
    auto r = p.run();
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    std::string t = read_file(trace);
    int running = 0, peak = 0;
    for (size_t pos = 0; pos < t.size(); pos = t.find('\n', pos) + 1) {
        running += t[pos] == '+' ? 1 : -1;
        peak = std::max(peak, running);
    }
    CHECK(peak == 2);
    CHECK(count(t, "+") >= 3); // slots were reused
}

TEST_CASE("run: after_create runs once per workspace, hooks see escaped values and VIK_ISSUE_* variables", "[run][e2e]") {
    Project p;
    p.agent("agent.sh", kOkAgent);
    std::string created = (p.dir / "created.log").string();
    p.issues(R"([{"id":"H-1","title":"quote \" and $(touch pwned) `touch pwned2`","state":"todo"}])");
    write_file(p.workflow(),
               workflow_text("  max_iterations: 2\n", "    settings: {command: " + (p.dir / "agent.sh").string() + "}\n",
                             "    work:\n      when: {state: todo}\n      agent: bot\n      prompt: p\n"
                             "      hooks:\n        before_run: echo \"$VIK_ISSUE_STAGE $VIK_ISSUE_ID\" > before.txt\n",
                             "  hooks:\n    after_create: |\n      echo \"{{ issue.title }}\" >> " + created +
                                 "\n      printf '%s\\n' \"$VIK_ISSUE_TITLE\" > env-title.txt\n") +
                   "scheduling: {continuation_delay_sec: 0.2, max_continuations: 1}\n");
    auto r = p.run();
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(read_file(created) == "quote \" and $(touch pwned) `touch pwned2`\n"); // once, literally
    CHECK(read_file(p.workspace("H-1") / "env-title.txt") == "quote \" and $(touch pwned) `touch pwned2`\n");
    CHECK(read_file(p.workspace("H-1") / "before.txt") == "work H-1\n");
    CHECK(p.session_files("H-1").size() == 2); // one continuation while the state stays, then blocked
    CHECK_THAT(r.out, Catch::Contains("stage blocked issue_id=H-1 stage=work: stage finished 2 time(s) in a row"));
    for (auto &e : fs::recursive_directory_iterator(p.dir.path))
        CHECK(e.path().filename().string().rfind("pwned", 0) != 0);
}

TEST_CASE("run: a failing after_create removes the new workspace and releases the issue", "[run][e2e]") {
    Project p;
    p.agent("agent.sh", kOkAgent);
    p.issues(R"([{"id":"F-1","title":"t","state":"todo"}])");
    write_file(p.workflow(),
               workflow_text("  max_iterations: 1\n", "    settings: {command: " + (p.dir / "agent.sh").string() + "}\n",
                             "    work: {when: {state: todo}, agent: bot, prompt: p}\n",
                             "  hooks:\n    after_create: echo nope >&2; exit 4\n"));
    auto r = p.run();
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    CHECK_THAT(r.out,
               Catch::Contains("issue setup failed issue_id=F-1: hook `after_create` exited with non-zero status 4: nope"));
    CHECK_FALSE(fs::exists(p.workspace("F-1")));
    CHECK(p.session_files("F-1").empty());
}

TEST_CASE("run: a failing before_run vetoes the stage", "[run][e2e]") {
    Project p;
    p.agent("agent.sh", kOkAgent);
    p.issues(R"([{"id":"V-1","title":"t","state":"todo"}])");
    write_file(p.workflow(),
               workflow_text("  max_iterations: 1\n", "    settings: {command: " + (p.dir / "agent.sh").string() + "}\n",
                             "    work:\n      when: {state: todo}\n      agent: bot\n      prompt: p\n"
                             "      hooks:\n        before_run: echo not ready >&2; exit 3\n"
                             "        after_run: touch after-ran\n"));
    auto r = p.run();
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    CHECK_THAT(r.out,
               Catch::Contains("stage aborted issue_id=V-1 stage=work: before_run vetoed the stage: hook `before_run` exited "
                               "with non-zero status 3: not ready"));
    CHECK(p.session_files("V-1").empty());
    CHECK_FALSE(fs::exists(p.workspace("V-1") / "after-ran"));
}

TEST_CASE("run: agents that fail get a failed session with a clear error, and after_run still runs", "[run][e2e]") {
    Project p;
    p.agent("agent.sh", R"(#!/bin/sh
cat > /dev/null
case "$VIK_ISSUE_ID" in
  exit)    echo '{"kind":"message","text":"x"}'; exit 2 ;;
  garbage) echo 'this is not json' ;;
  silent)  echo '{"kind":"message","text":"no terminal"}' ;;
  error)   echo '{"kind":"error","detail":"model refused"}' ;;
esac
)");
    p.issues(R"([{"id":"exit","title":"t","state":"todo"},{"id":"garbage","title":"t","state":"todo"},
                 {"id":"silent","title":"t","state":"todo"},{"id":"error","title":"t","state":"todo"}])");
    write_file(p.workflow(),
               workflow_text("  max_iterations: 1\n", "    settings: {command: " + (p.dir / "agent.sh").string() + "}\n",
                             "    work:\n      when: {state: todo}\n      agent: bot\n      prompt: p\n"
                             "      hooks:\n        after_run: touch after-ran\n"));
    auto r = p.run();
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    CHECK_THAT(r.out, Catch::Contains("issue_id=exit stage=work"));
    CHECK_THAT(r.out, Catch::Contains("state=failed input_tokens=0 output_tokens=0 cache_read_tokens=0 error=agent exited with "
                                      "code 2 before a terminal event"));
    CHECK_THAT(r.out, Catch::Contains("error=agent printed a line that is not JSON: this is not json"));
    CHECK_THAT(r.out, Catch::Contains("error=agent exited without a terminal event"));
    CHECK_THAT(r.out, Catch::Contains("error=model refused"));
    for (const char *id : {"exit", "garbage", "silent", "error"}) {
        INFO(id);
        CHECK(fs::exists(p.workspace(id) / "after-ran"));
        auto files = p.session_files(id);
        REQUIRE(files.size() == 1);
    }
    auto garbage = p.events(p.session_files("garbage")[0]);
    REQUIRE_FALSE(garbage.empty());
    CHECK(garbage.back().at("kind") == "error");
}

TEST_CASE("run: stderr of the agent is kept in the session file", "[run][e2e]") {
    Project p;
    p.agent("agent.sh", "#!/bin/sh\ncat >/dev/null\necho 'warming up' >&2\necho '{\"kind\":\"completed\"}'\n");
    p.issues(R"([{"id":"E-1","title":"t","state":"todo"}])");
    write_file(p.workflow(),
               workflow_text("  max_iterations: 1\n", "    settings: {command: " + (p.dir / "agent.sh").string() + "}\n",
                             "    work: {when: {state: todo}, agent: bot, prompt: p}\n"));
    auto r = p.run();
    REQUIRE(r.exit_code == 0);
    auto ev = p.events(p.session_files("E-1").at(0));
    bool found = false;
    for (auto &e : ev)
        found = found || (e.at("kind") == "stderr" && e.at("line") == "warming up");
    CHECK(found);
}

TEST_CASE("run: the prompt reaches the agent on stdin, rendered, with exec() expanded", "[run][e2e]") {
    Project p;
    p.agent("agent.sh", "#!/bin/sh\ncat > prompt.txt\necho '{\"kind\":\"completed\"}'\n");
    write_file(p.dir / "prompts" / "work.md",
               "Issue {{ issue.id }} ({{ issue.stage }}) in {{ issue.workdir }}: {{ issue.title }}\n"
               "Files: `exec(ls)`\n");
    p.issues(R"([{"id":"P-1","title":"`exec(touch pwned)`","state":"todo"}])");
    write_file(p.workflow(),
               workflow_text("  max_iterations: 1\n", "    settings: {command: " + (p.dir / "agent.sh").string() + "}\n",
                             "    work: {when: {state: todo}, agent: bot, prompt_file: prompts/work.md}\n",
                             "  hooks:\n    after_create: touch seed.txt\n"));
    auto r = p.run();
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    std::string prompt = read_file(p.workspace("P-1") / "prompt.txt");
    CHECK(prompt ==
          "Issue P-1 (work) in " + fs::canonical(p.workspace("P-1")).string() + ": `exec(touch pwned)`\nFiles: seed.txt");
    CHECK_FALSE(fs::exists(p.workspace("P-1") / "pwned"));
}

TEST_CASE("run: failing, hanging and garbage pull commands are logged and the loop goes on", "[run][e2e]") {
    Project p;
    p.agent("agent.sh", kOkAgent);
    p.agent("pull.sh", R"(#!/bin/sh
n=$(cat count 2>/dev/null || echo 0); n=$((n+1)); echo $n > count
case $n in
  1) echo "tracker is down" >&2; exit 1 ;;
  2) echo "<html>not json</html>" ;;
  3) sleep 30 ;;
  4) echo '[{"id":7,"title":"t","state":"todo"}]' ;;
  *) echo '[{"id":"OK-1","title":"t","state":"todo"}]' ;;
esac
)");
    std::string wf = workflow_text("  max_iterations: 5\n", "    settings: {command: " + (p.dir / "agent.sh").string() + "}\n",
                                   "    work: {when: {state: todo}, agent: bot, prompt: p}\n", "", "    timeout_sec: 1\n");
    wf.replace(wf.find("cat issues.json"), 15, "./pull.sh");
    write_file(p.workflow(), wf);
    auto r = p.run();
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    CHECK_THAT(r.out, Catch::Contains("intake cycle failed: issue pull command exited with code 1: tracker is down"));
    CHECK_THAT(r.out, Catch::Contains("intake cycle failed: issues are not valid JSON"));
    CHECK_THAT(r.out, Catch::Contains("intake cycle failed: issue pull command timed out after 1000 ms"));
    // A bad element is skipped with a warning; the cycle itself goes on (issue 11).
    CHECK_THAT(r.out, Catch::Contains("issue at index 0: field `id` must be a string, found a number; issue skipped"));
    CHECK(p.session_files("OK-1").size() == 1);
    CHECK_FALSE(process_with_marker_alive((p.dir / "pull.sh").string()));
}

TEST_CASE("run: max_iterations stops intake, drains running stages and exits 0", "[run][e2e]") {
    Project p;
    p.agent("agent.sh", "#!/bin/sh\ncat >/dev/null\nsleep 1.5\necho '{\"kind\":\"completed\"}'\n");
    p.issues(R"([{"id":"D-1","title":"t","state":"todo"}])");
    write_file(p.workflow(),
               workflow_text("  max_iterations: 1\n", "    settings: {command: " + (p.dir / "agent.sh").string() + "}\n",
                             "    work:\n      when: {state: todo}\n      agent: bot\n      prompt: p\n"
                             "      hooks:\n        after_run: touch drained\n"));
    auto r = p.run();
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    CHECK_THAT(r.out, Catch::Contains("max_iterations reached"));
    CHECK_THAT(r.out, Catch::Contains("state=completed"));
    CHECK(fs::exists(p.workspace("D-1") / "drained"));
}

TEST_CASE("run: the stall watchdog and the overall timeout fail a silent agent and kill it", "[run][e2e]") {
    Project p;
    std::string marker = "vik-stall-" + std::to_string(::getpid());
    p.agent("agent.sh", "#!/bin/sh\ncat >/dev/null\necho '{\"kind\":\"message\",\"text\":\"thinking\"}'\nsh -c 'sleep 60; : " +
                            marker + "'\necho '{\"kind\":\"completed\"}'\n");
    p.issues(R"([{"id":"W-1","title":"t","state":"todo"}])");
    write_file(p.workflow(),
               workflow_text("  max_iterations: 1\n",
                             "    stall_timeout_sec: 1\n    settings: {command: " + (p.dir / "agent.sh").string() + "}\n",
                             "    work:\n      when: {state: todo}\n      agent: bot\n      prompt: p\n"
                             "      hooks:\n        after_run: touch after-ran\n"));
    auto r = p.run();
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    CHECK_THAT(
        r.out,
        Catch::Contains("state=failed input_tokens=0 output_tokens=0 cache_read_tokens=0 error=stalled for 1000ms without agent "
                        "activity"));
    CHECK(fs::exists(p.workspace("W-1") / "after-ran")); // a stall is a failure, not a cancel
    CHECK_FALSE(process_with_marker_alive(marker));

    std::string wf = read_file(p.workflow());
    wf.replace(wf.find("stall_timeout_sec: 1"), 20, "timeout_sec: 1");
    write_file(p.workflow(), wf);
    fs::remove_all(p.scoped() / "state"); // a fresh start: the store would resume the queued retry
    auto t = p.run();
    INFO(t.out << t.err);
    REQUIRE(t.exit_code == 0);
    CHECK_THAT(t.out, Catch::Contains("error=timed out after 1000ms"));
    CHECK_FALSE(process_with_marker_alive(marker));
}

TEST_CASE("run: SIGTERM cancels sessions, skips after_run, leaves no process behind, exits 0", "[run][e2e][signals]") {
    Project p;
    std::string marker = "vik-sigterm-" + std::to_string(::getpid());
    p.agent("agent.sh", "#!/bin/sh\ncat >/dev/null\necho '{\"kind\":\"message\",\"text\":\"busy\"}'\nsh -c 'sleep 300; : " +
                            marker + "' &\nsh -c 'sleep 301; : " + marker + "'\n");
    p.issues(R"([{"id":"T-1","title":"t","state":"todo"}])");
    write_file(p.workflow(), workflow_text("", "    settings: {command: " + (p.dir / "agent.sh").string() + "}\n",
                                           "    work:\n      when: {state: todo}\n      agent: bot\n      prompt: p\n"
                                           "      hooks:\n        after_run: touch after-ran\n"));
    auto host = start_host({"run", p.workflow().string()}, p.dir.path);
    REQUIRE(wait_until([&] { return process_with_marker_alive(marker); }, 20s));
    CHECK(fs::exists(p.scoped() / "service" / "state.json"));
    auto state = json::parse(read_file(p.scoped() / "service" / "state.json")).as_object();
    CHECK(state.at("pid") == host->pid);
    CHECK(state.at("workflow_path").as_string() == p.workflow().string());
    // A workflow on SQLite never loads libpq and what it pulls in (issue 13: loaded on first use).
    std::string maps = read_file("/proc/" + std::to_string(host->pid) + "/maps");
    CHECK_THAT(maps, !Catch::Contains("libpq.so"));
    // Nor, without webhooks, the webhook module and OpenSSL behind it.
    CHECK_THAT(maps, !Catch::Contains("libvik-webhook-post.so"));
    CHECK_THAT(maps, !Catch::Contains("libssl.so"));
    CHECK_THAT(maps, !Catch::Contains("libcrypto.so"));
    host->signal(SIGTERM);
    int code = host->wait(20s);
    INFO(host->stdout_text());
    CHECK(code == 0);
    CHECK_THAT(host->stdout_text(), Catch::Contains("state=cancelled"));
    CHECK_FALSE(process_with_marker_alive(marker));
    CHECK_FALSE(fs::exists(p.workspace("T-1") / "after-ran"));
    CHECK_FALSE(fs::exists(p.scoped() / "service" / "state.json"));
}

TEST_CASE("run: a second signal exits 130 at once, even with a plugin call stuck", "[run][e2e][signals]") {
    Project p;
    // The slow tracker's pull blocks for 30 s and ignores everything: the first signal cannot
    // finish the stop while it is in flight, the second one ends the host at once.
    write_file(p.workflow(), "agents:\n  bot: {runtime: scripted, model: none, settings: {command: 'true'}}\n"
                             "issues:\n  tracker: {kind: slow}\n"
                             "issue:\n  stages:\n    work: {when: {state: todo}, agent: bot, prompt: p}\n");
    auto host = start_host(
        {"--plugins", plugin_dir().string(), "--plugins", (test_plugin_root() / "slow").string(), "run", p.workflow().string()},
        p.dir.path);
    REQUIRE(wait_until([&] { return host->stdout_text().find("starting vik") != std::string::npos; }, 20s));
    std::this_thread::sleep_for(200ms);
    host->signal(SIGINT);
    REQUIRE(wait_until([&] { return host->stdout_text().find("cancelling intake") != std::string::npos; }, 10s));
    auto started = std::chrono::steady_clock::now();
    host->signal(SIGINT);
    CHECK(host->wait(10s) == 130);
    CHECK(std::chrono::steady_clock::now() - started < 5s);
    CHECK_FALSE(fs::exists(p.scoped() / "service" / "state.json"));
}

TEST_CASE("run: when the host is SIGKILLed, its agents and their children die too", "[run][e2e][signals]") {
    Project p;
    std::string marker = "vik-sigkill-" + std::to_string(::getpid());
    p.agent("agent.sh",
            "#!/bin/sh\ncat >/dev/null\nsh -c 'sleep 300; : " + marker + "' &\nsh -c 'sleep 301; : " + marker + "'\n");
    p.issues(R"([{"id":"K-1","title":"t","state":"todo"}])");
    write_file(p.workflow(), workflow_text("", "    settings: {command: " + (p.dir / "agent.sh").string() + "}\n",
                                           "    work: {when: {state: todo}, agent: bot, prompt: p}\n"));
    auto host = start_host({"run", p.workflow().string()}, p.dir.path);
    REQUIRE(wait_until([&] { return process_with_marker_alive(marker); }, 20s));
    host->signal(SIGKILL);
    CHECK(host->wait(10s) == 128 + SIGKILL);
    CHECK(wait_until([&] { return !process_with_marker_alive(marker); }, 10s));
}

TEST_CASE("run: an invalid workflow is refused with vik's text", "[run][e2e]") {
    Project p;
    write_file(p.workflow(), workflow_text("  wait_ms: 0\n", "", "    work: {when: {state: todo}, agent: ghost, prompt: p}\n"));
    auto r = p.run();
    CHECK(r.exit_code == 1);
    CHECK(r.err == "invalid workflow config:\n'loop.wait_ms' expected to be great than 0, got 0\n"
                   "agent profile 'ghost' set for 'issue.stages.work.agent' is not defined in agents configuration section\n");
}

TEST_CASE("run: logs are vik's daily JSON files", "[run][e2e]") {
    Project p;
    p.agent("agent.sh", kOkAgent);
    p.issues(R"([{"id":"L-1","title":"t","state":"todo"}])");
    write_file(p.workflow(),
               workflow_text("  max_iterations: 1\n", "    settings: {command: " + (p.dir / "agent.sh").string() + "}\n",
                             "    work: {when: {state: todo}, agent: bot, prompt: p}\n"));
    write_file(p.scoped() / "logs" / "vik.log.2000-01-01", "old\n"); // older than 7 days: removed at start
    auto r = p.run();
    REQUIRE(r.exit_code == 0);
    CHECK_FALSE(fs::exists(p.scoped() / "logs" / "vik.log.2000-01-01"));
    std::vector<fs::path> logs;
    for (auto &e : fs::directory_iterator(p.scoped() / "logs"))
        logs.push_back(e.path());
    REQUIRE(logs.size() == 1);
    CHECK(std::regex_match(logs[0].filename().string(), std::regex("vik\\.log\\.\\d{4}-\\d{2}-\\d{2}")));
    std::string text = read_file(logs[0]);
    auto first = json::parse(text.substr(0, text.find('\n'))).as_object();
    CHECK(first.at("level") == "INFO"); // tracing's level names, as vik
    CHECK_THAT(std::string(first.at("message").as_string()), Catch::StartsWith("starting vik"));
    for (const char *line : {"issues pulled", "issue ready; launching stages", "session finished"})
        CHECK_THAT(text, Catch::Contains(line));
}

TEST_CASE("run: a hook past its timeout is killed with its whole process tree", "[run][e2e]") {
    Project p;
    std::string marker = "vik-hook-timeout-" + std::to_string(::getpid());
    p.agent("agent.sh", kOkAgent);
    p.issues(R"([{"id":"HT-1","title":"t","state":"todo"}])");
    write_file(p.workflow(),
               workflow_text("  max_iterations: 1\n", "    settings: {command: " + (p.dir / "agent.sh").string() + "}\n",
                             "    work: {when: {state: todo}, agent: bot, prompt: p}\n",
                             "  hooks:\n    timeout_sec: 1\n    after_create: |\n      sh -c 'sleep 60; : " + marker +
                                 "' &\n      sleep 61\n"));
    auto r = p.run();
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    CHECK_THAT(r.out, Catch::Contains("issue setup failed issue_id=HT-1: hook `after_create` timed out after 1000 ms"));
    CHECK_FALSE(process_with_marker_alive(marker));
}

TEST_CASE("run: a failing prompt command aborts the stage with the command and its stderr", "[run][e2e]") {
    Project p;
    p.agent("agent.sh", kOkAgent);
    p.issues(R"([{"id":"PC-1","title":"t","state":"todo"}])");
    write_file(p.workflow(),
               workflow_text("  max_iterations: 1\n", "    settings: {command: " + (p.dir / "agent.sh").string() + "}\n",
                             "    work:\n      when: {state: todo}\n      agent: bot\n      prompt: |\n        Log: `exec(echo "
                             "broken >&2; exit 5)`\n"));
    auto r = p.run();
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    CHECK_THAT(r.out, Catch::Contains(
                          "stage aborted issue_id=PC-1 stage=work: prompt rendering failed: prompt command `echo broken >&2; "
                          "exit 5` exited with status 5: broken"));
    CHECK(p.session_files("PC-1").empty());
}

TEST_CASE("run: the file tracker reads JSON and YAML, and issue set-state moves issues through it", "[run][e2e][file-tracker]") {
    TempDir dir;
    write_file(dir / "issues" / "a.json",
               R"([{"id":"F-1","title":"one","state":"todo"},{"id":"F-2","title":"two","status":"todo"}])");
    write_file(dir / "issues" / "b.yml", "id: 42\ntitle: yaml issue\nstate: todo\npriority: 2\n");
    write_file(dir / "workflow.yml", "agents:\n  bot: {runtime: scripted, model: none, settings: {command: 'true'}}\n"
                                     "issues:\n  tracker: {kind: file, path: issues}\n"
                                     "issue:\n  stages:\n    work: {when: {state: todo}, agent: bot, prompt: p}\n");
    auto moved = run_host({"issue", "set-state", "F-2", "review", (dir / "workflow.yml").string()}, dir.path);
    INFO(moved.out << moved.err);
    CHECK(moved.exit_code == 0);
    CHECK(moved.out == "issue F-2 moved to review\n");
    auto doc = json::parse(read_file(dir / "issues" / "a.json"));
    CHECK(doc.at(1).at("status") == "review");
    CHECK(doc.at(0).at("state") == "todo");
    auto commented = run_host({"issue", "comment", "F-1", "looks good", (dir / "workflow.yml").string()}, dir.path);
    CHECK(commented.exit_code == 0);
    CHECK(json::parse(read_file(dir / "issues" / "a.json")).at(0).at("comments").at(0) == "looks good");
    auto yaml = run_host({"issue", "set-state", "42", "done", (dir / "workflow.yml").string()}, dir.path);
    CHECK(yaml.exit_code == 1);
    CHECK_THAT(yaml.err, Catch::Contains("only .json files can be changed by vik-host"));
    auto missing = run_host({"issue", "set-state", "NOPE", "done", (dir / "workflow.yml").string()}, dir.path);
    CHECK(missing.exit_code == 1);
    CHECK_THAT(missing.err, Catch::Contains("no issue with id 'NOPE'"));
}

TEST_CASE("run: the command tracker says plainly that it cannot change issues", "[run][e2e]") {
    TempDir dir;
    write_file(dir / "workflow.yml",
               "agents:\n  bot: {runtime: scripted, model: none}\nissues:\n  pull:\n    command: echo '[]'\n"
               "issue:\n  stages:\n    work: {when: {state: todo}, agent: bot, prompt: p}\n");
    auto r = run_host({"issue", "set-state", "X-1", "done", (dir / "workflow.yml").string()}, dir.path);
    CHECK(r.exit_code == 1);
    CHECK_THAT(
        r.err,
        Catch::Contains("issue set-state failed: issue 'X-1': command-tracker: 'set_state (a pull command cannot change issues"));
}

TEST_CASE("run: the demo workflow moves every open issue to done", "[run][e2e][demo]") {
    TempDir dir;
    fs::copy(source_dir() / "examples" / "demo", dir / "demo", fs::copy_options::recursive);
    // The demo stops after four intake cycles, which is enough when each stand-in session takes a
    // fraction of a second; on a loaded machine (sanitizers, parallel tests) a session can take
    // longer than a cycle, so the test gives it eight.
    std::string wf = read_file(dir / "demo" / "workflow.yml");
    REQUIRE(wf.find("max_iterations: 4") != std::string::npos);
    wf.replace(wf.find("max_iterations: 4"), 17, "max_iterations: 8");
    write_file(dir / "demo" / "workflow.yml", wf);
    auto r = run_host({"run", (dir / "demo" / "workflow.yml").string()}, dir.path, {}, 120);
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    for (const char *id : {"ENG-1", "ENG-2", "ENG-3"}) {
        auto issue = json::parse(read_file(dir / "demo" / "issues" / (std::string(id) + ".json")));
        CHECK(issue.at("state") == "done");
    }
    CHECK_THAT(read_file(dir / "demo" / "issues" / "ENG-4.yml"), Catch::Contains("state: blocked"));
    CHECK_THAT(r.out, Catch::Contains("sessions: "));
}

TEST_CASE("run: the tracker's token variable is kept out of the agent's environment unless passed", "[run][e2e][security]") {
    Project p;
    p.agent("agent.sh", "#!/bin/sh\ncat >/dev/null\nenv > agent-env.txt\necho '{\"kind\":\"completed\"}'\n");
    write_file(p.dir / "issues.json", R"([{"id":"SEC-1","title":"t","state":"todo"}])");
    std::string wf = "loop: {max_iterations: 1}\n"
                     "agents:\n"
                     "  bot: {runtime: scripted, model: none, settings: {command: " +
                     (p.dir / "agent.sh").string() +
                     "}}\n"
                     "  open: {runtime: scripted, model: none, pass_env: [MY_TRACKER_TOKEN], settings: {command: " +
                     (p.dir / "agent.sh").string() +
                     "}}\n"
                     "issues:\n  tracker: {kind: file, path: issues.json, token_env: MY_TRACKER_TOKEN}\n"
                     "issue:\n  hooks:\n    after_create: echo \"$MY_TRACKER_TOKEN\" > hook-saw.txt\n"
                     "  stages:\n    work: {when: {state: todo}, agent: bot, prompt: p}\n";
    write_file(p.workflow(), wf);
    auto r = run_host({"run", p.workflow().string()}, p.dir.path, {"MY_TRACKER_TOKEN=s3cret-value"});
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(read_file(p.workspace("SEC-1") / "agent-env.txt").find("s3cret-value") == std::string::npos);
    CHECK(read_file(p.workspace("SEC-1") / "hook-saw.txt") == "s3cret-value\n");
    CHECK(r.out.find("s3cret-value") == std::string::npos);

    wf.replace(wf.find("agent: bot"), 10, "agent: open");
    write_file(p.workflow(), wf);
    fs::remove_all(p.scoped() / "state"); // a fresh start: the store would resume the queued continuation
    auto passed = run_host({"run", p.workflow().string()}, p.dir.path, {"MY_TRACKER_TOKEN=s3cret-value"});
    REQUIRE(passed.exit_code == 0);
    CHECK(read_file(p.workspace("SEC-1") / "agent-env.txt").find("MY_TRACKER_TOKEN=s3cret-value") != std::string::npos);
}

TEST_CASE("run: the hook templates that ran issue text before the shell lexer keep it data through the real binary",
          "[run][e2e][security]") {
    Project p;
    p.agent("agent.sh", kOkAgent);
    const std::string title = "x; touch CANARY $(touch CANARY2) `touch CANARY3` it's \\ \"q\"";
    p.issues(R"([{"id":"I-1","title":"x; touch CANARY $(touch CANARY2) `touch CANARY3` it's \\ \"q\"","state":"todo"}])");
    // An apostrophe in a comment before the value; a value in "$(… | tr)"; an apostrophe in a
    // heredoc body followed by a plain value.
    std::string hook = "  hooks:\n    after_create: |\n"
                       "      # Don't remove this workspace by hand\n"
                       "      printf '%s\\n' {{ issue.title }} > plain.txt\n"
                       "      X=\"$(printf '%s' {{ issue.title }} | tr a-z A-Z)\"; printf '%s\\n' \"$X\" > upper.txt\n"
                       "      cat > notes.txt <<EOF\n"
                       "      it's a note\n"
                       "      EOF\n"
                       "      printf '%s\\n' {{ issue.title }} >> notes.txt\n";
    write_file(p.workflow(),
               workflow_text("  max_iterations: 1\n", "    settings: {command: " + (p.dir / "agent.sh").string() + "}\n",
                             "    work: {when: {state: todo}, agent: bot, prompt: p}\n", hook));
    auto r = p.run();
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(read_file(p.workspace("I-1") / "plain.txt") == title + "\n");
    CHECK(read_file(p.workspace("I-1") / "upper.txt") == "X; TOUCH CANARY $(TOUCH CANARY2) `TOUCH CANARY3` IT'S \\ \"Q\"\n");
    CHECK(read_file(p.workspace("I-1") / "notes.txt") == "it's a note\n" + title + "\n");
    for (auto &e : fs::recursive_directory_iterator(p.dir.path))
        CHECK(e.path().filename().string().rfind("CANARY", 0) != 0);
}

TEST_CASE("run: a hook that would put issue text in a heredoc body is refused before any issue is claimed",
          "[run][e2e][security]") {
    Project p;
    p.agent("agent.sh", kOkAgent);
    p.issues(R"([{"id":"I-2","title":"EOF\ntouch CANARY","state":"todo"}])");
    std::string hook = "  hooks:\n    after_create: |\n      cat > notes.txt <<'EOF'\n      {{ issue.title }}\n      EOF\n";
    write_file(p.workflow(),
               workflow_text("  max_iterations: 1\n", "    settings: {command: " + (p.dir / "agent.sh").string() + "}\n",
                             "    work: {when: {state: todo}, agent: bot, prompt: p}\n", hook));
    auto r = p.run();
    CHECK(r.exit_code == 1);
    CHECK_THAT(r.err, Catch::StartsWith(
                          "invalid workflow config:\n'issue.hooks.after_create' substitutes a value where the shell cannot be "
                          "kept from running it: "));
    CHECK_THAT(r.err, Catch::Contains("inside a heredoc body"));
    CHECK_FALSE(fs::exists(p.workspace("I-2")));
    CHECK_FALSE(fs::exists(p.dir / "CANARY"));
}

TEST_CASE("run: only the plugins the workflow uses are loaded, and a blocker outside every stage still holds its issue",
          "[e2e][intake]") {
    Project p;
    p.agent("agent.sh", kOkAgent);
    // B-1 blocks T-1 from a state no stage takes: the pull does not build it, but its state is
    // still known, so T-1 waits; T-2 runs.
    p.issues(R"([{"id":"T-1","title":"blocked","state":"todo","blocked_by":["B-1"]},
                 {"id":"T-2","title":"free","state":"todo"},
                 {"id":"B-1","title":"blocker","state":"backlog"}])");
    write_file(p.workflow(),
               workflow_text("  max_iterations: 1\n", "    settings: {command: " + (p.dir / "agent.sh").string() + "}\n",
                             "    work: {when: {state: todo}, agent: bot, prompt: p}\n"));
    auto r = run_host({"--log-level", "debug", "run", p.workflow().string()}, p.dir.path);
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    CHECK_THAT(r.out, Catch::Contains("issues pulled count=3 iteration=1"));
    // The network trackers and the other runtimes were never loaded (their libraries never mapped).
    std::smatch m;
    REQUIRE(std::regex_search(r.out, m, std::regex("plugins not loaded, this workflow does not use them: ([^\\n]+)")));
    for (const char *id : {"github-tracker", "codex", "claude-code", "file-tracker"})
        CHECK_THAT(m[1].str(), Catch::Contains(id));
    CHECK_THAT(m[1].str(), !Catch::Contains("shell-hooks"));
    CHECK_THAT(m[1].str(), !Catch::Contains("scripted"));
    CHECK(p.session_files("T-2").size() == 1);
    CHECK(p.session_files("T-1").empty());
}
