// The durable store through the real binary: a host SIGKILLed mid-run is started again, says
// what it resumed, runs the interrupted stage again as attempt 2, and `history` / `stats` show
// both runs (docs/store.md). The recovery rules one by one are tested in-process:
// tests/orchestrator/restart_recovery_test.cpp.
#include "e2e/e2e_support.hpp"
#include "support/pg_server.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <csignal>
#include <sys/stat.h>

#include <thread>

using namespace vik::test;
namespace fs = std::filesystem;
namespace json = boost::json;
using namespace std::chrono_literals;

TEST_CASE("store: a SIGKILLed host resumes its interrupted run as attempt 2, and history and stats show both runs",
          "[store][e2e][signals]") {
    Project p;
    std::string prompts = shell_quote((p.dir / "prompts.log").string());
    std::string first = shell_quote((p.dir / "first-run").string());
    // The first run hangs (the host dies under it); the next one completes and moves the issue on.
    // Completion is reported before the state moves: a pull that sees `done` first would stop the
    // run before its `completed` line was read, and the run would not be on record as succeeded.
    p.agent("agent.sh", "#!/bin/sh\n{ cat; echo; } >> " + prompts + "\nif [ ! -e " + first + " ]; then : > " + first +
                            "; exec sleep 1000; fi\n"
                            "echo '{\"kind\":\"token_usage\",\"input\":120,\"output\":30,\"cache_read\":7,\"cost_usd\":0.25}'\n"
                            "echo '{\"kind\":\"completed\"}'\n\"$VIK_HOST_BIN\" issue set-state K-1 done >/dev/null\n");
    p.issues(R"([{"id":"K-1","title":"t","state":"todo"}])");
    write_file(p.workflow(), "agents:\n  bot:\n    runtime: scripted\n    model: none\n    settings: {command: " +
                                 (p.dir / "agent.sh").string() +
                                 "}\nissues:\n  tracker: {kind: file, path: issues.json}\n  pull: {idle_sec: 1}\nissue:\n"
                                 "  stages:\n    work: {when: {state: todo}, agent: bot, prompt: 'attempt={{ attempt }}'}\n"
                                 "scheduling: {retry_base_sec: 0.2}\n");
    {
        auto host = start_host({"run", p.workflow().string()}, p.dir.path);
        REQUIRE(wait_until([&] { return fs::exists(p.dir / "first-run"); }, 20s));
        // Store writes are batched (at most 50 ms behind): the run is on record before the kill.
        REQUIRE(wait_until(
            [&] {
                auto h = run_host({"history", "--json", p.workflow().string()}, p.dir.path);
                return h.exit_code == 0 && h.out.find("\"running\"") != std::string::npos;
            },
            20s));
        host->signal(SIGKILL);
        REQUIRE(host->wait(10s) == 128 + SIGKILL);
    }
    fs::path db = p.scoped() / "state" / "vik.db";
    REQUIRE(fs::exists(db));
    struct stat st {};
    REQUIRE(::stat(db.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);

    auto host = start_host({"run", p.workflow().string()}, p.dir.path);
    REQUIRE(wait_until([&] { return read_file(p.dir / "issues.json").find("done") != std::string::npos; }, 30s));
    REQUIRE(wait_until(
        [&] {
            auto h = run_host({"history", "--json", p.workflow().string()}, p.dir.path);
            return h.exit_code == 0 && h.out.find("succeeded") != std::string::npos;
        },
        20s));
    host->signal(SIGTERM);
    REQUIRE(host->wait(20s) == 0);
    std::string out = host->stdout_text();
    INFO(out);
    CHECK_THAT(out, Catch::Contains("store resumed: 1 interrupted run(s), 1 interrupted claim(s) to retry, 0 pending "
                                    "retries, 0 blocked pair(s)"));
    CHECK(read_file(p.dir / "prompts.log") == "attempt=1\nattempt=2\n");
    CHECK_THAT(out, Catch::Contains("input_tokens=120 output_tokens=30 cache_read_tokens=7 cost_usd=0.250000"));

    auto h = run_host({"history", "--json", p.workflow().string()}, p.dir.path);
    REQUIRE(h.exit_code == 0);
    json::array runs = json::parse(h.out).as_array();
    REQUIRE(runs.size() == 2);
    CHECK(runs[0].at("outcome") == "succeeded"); // newest first
    CHECK(runs[0].at("attempt") == 2);
    CHECK(runs[0].at("tokens_in") == 120);
    CHECK(runs[0].at("tokens_cache_read") == 7);
    CHECK(runs[0].at("cost_usd") == 0.25);
    CHECK(runs[1].at("outcome") == "interrupted");
    CHECK(runs[1].at("attempt") == 1);
    CHECK(runs[1].at("error") == "interrupted: vik-host stopped while this run was running");

    auto text = run_host({"history", "K-1", p.workflow().string()}, p.dir.path);
    REQUIRE(text.exit_code == 0);
    CHECK_THAT(text.out, Catch::Contains("OUTCOME"));
    CHECK(count(text.out, "K-1") == 2);
    auto other = run_host({"history", "--issue", "NOPE-1", p.workflow().string()}, p.dir.path);
    CHECK(other.out == "no runs on record for issue NOPE-1\n");

    auto stats = run_host({"stats", "--json", p.workflow().string()}, p.dir.path);
    REQUIRE(stats.exit_code == 0);
    json::object s = json::parse(stats.out).as_object();
    CHECK(s.at("overall").at("runs") == 2);
    CHECK(s.at("overall").at("successes") == 1);
    CHECK(s.at("overall").at("failures") == 1);
    CHECK(s.at("overall").at("tokens_in") == 120);
    CHECK(s.at("per_agent").as_array().at(0).at("key") == "bot");
}

TEST_CASE("store: history of a workflow that never ran is empty, not an error", "[store][e2e]") {
    Project p;
    write_file(p.workflow(), workflow_text("", "    settings: {command: /bin/true}\n",
                                           "    work: {when: {state: todo}, agent: bot, prompt: p}\n"));
    auto h = run_host({"history", p.workflow().string()}, p.dir.path);
    CHECK(h.exit_code == 0);
    CHECK(h.out == "no runs on record\n");
    auto j = run_host({"stats", "--json", p.workflow().string()}, p.dir.path);
    CHECK(j.exit_code == 0);
    CHECK(json::parse(j.out).at("overall").at("runs") == 0);
}

namespace {

// A host on `p` until its store shows a run whose outcome is `outcome`, then SIGKILLed.
void run_until_recorded_then_kill(const Project &p, const std::string &outcome) {
    auto host = start_host({"run", p.workflow().string()}, p.dir.path);
    REQUIRE(wait_until(
        [&] {
            auto h = run_host({"history", "--json", p.workflow().string()}, p.dir.path);
            return h.exit_code == 0 && h.out.find("\"" + outcome + "\"") != std::string::npos;
        },
        30s));
    std::this_thread::sleep_for(200ms); // the claim's transition lands in the same or the next batch (50 ms)
    host->signal(SIGKILL);
    REQUIRE(host->wait(10s) == 128 + SIGKILL);
}

std::string killed_workflow(const Project &p, const std::string &scheduling) {
    return "agents:\n  bot:\n    runtime: scripted\n    model: none\n    settings: {command: " + (p.dir / "agent.sh").string() +
           "}\nissues:\n  tracker: {kind: file, path: issues.json}\n  pull: {idle_sec: 1}\nissue:\n"
           "  stages:\n    work: {when: {state: todo}, agent: bot, prompt: 'attempt={{ attempt }} {{ retry_kind }}'}\n"
           "scheduling: " +
           scheduling + "\n";
}

} // namespace

TEST_CASE("store: SIGKILL with a retry pending, with a block, and after a finished run: nothing runs early or twice",
          "[store][e2e][signals]") {
    struct Case {
        const char *name, *agent_tail, *scheduling, *outcome, *resumed;
    };
    for (Case c :
         {Case{"retry pending", "exit 1", "{retry_base_sec: 120}", "failed",
               "0 interrupted run(s), 0 interrupted claim(s) to retry, 1 pending retry, 0 blocked pair(s)"},
          Case{"blocked", "exit 1", "{max_attempts: 1}", "failed",
               "0 interrupted run(s), 0 interrupted claim(s) to retry, 0 pending retries, 1 blocked pair(s)"},
          Case{"finished, continuation pending", "echo '{\"kind\":\"completed\"}'", "{continuation_delay_sec: 120}", "succeeded",
               "0 interrupted run(s), 0 interrupted claim(s) to retry, 1 pending retry, 0 blocked pair(s)"}}) {
        INFO(c.name);
        Project p;
        p.agent("agent.sh",
                "#!/bin/sh\n{ cat; echo; } >> " + shell_quote((p.dir / "prompts.log").string()) + "\n" + c.agent_tail + "\n");
        p.issues(R"([{"id":"S-1","title":"t","state":"todo"}])");
        write_file(p.workflow(), killed_workflow(p, c.scheduling));
        run_until_recorded_then_kill(p, c.outcome);
        REQUIRE(read_file(p.dir / "prompts.log") == "attempt=1 first\n");

        // Started again for three intake cycles: what was decided before the kill holds.
        std::string wf = read_file(p.workflow());
        write_file(p.workflow(), "loop: {max_iterations: 3}\n" + wf);
        auto r = p.run(60);
        INFO(r.out << r.err);
        REQUIRE(r.exit_code == 0);
        CHECK_THAT(r.out, Catch::Contains(std::string("store resumed: ") + c.resumed));
        CHECK(read_file(p.dir / "prompts.log") == "attempt=1 first\n"); // nothing ran early, nothing ran twice
        auto h = run_host({"history", "--json", p.workflow().string()}, p.dir.path);
        REQUIRE(h.exit_code == 0);
        CHECK(json::parse(h.out).as_array().size() == 1);
    }
}

TEST_CASE("store: a corrupt database stops the start with its path and what to do, and is left as it is", "[store][e2e]") {
    Project p;
    p.issues(R"([{"id":"C-1","title":"t","state":"todo"}])");
    write_file(p.workflow(), killed_workflow(p, "{}"));
    fs::path db = p.scoped() / "state" / "vik.db";
    fs::create_directories(db.parent_path());
    for (const fs::path &d : {p.dir / ".vik", p.dir / ".vik" / "workflows", p.scoped(), db.parent_path()})
        fs::permissions(d, fs::perms::owner_all); // private, as the host makes them
    write_file(db, std::string(4096, 'x'));
    auto r = p.run(30);
    CHECK(r.exit_code == 1);
    CHECK_THAT(r.err,
               Catch::Contains(db.string()) && Catch::Contains("the database is corrupt") && Catch::Contains("Move it aside"));
    CHECK(read_file(db) == std::string(4096, 'x'));
    CHECK_FALSE(fs::exists(p.workspace("C-1")));
}

TEST_CASE("store: a workflow with a postgres store keeps its runs there, and its URL never reaches the agent",
          "[store][e2e][postgres]") {
    if (auto why = PgServer::unavailable()) {
        WARN("skipped: " << *why);
        return;
    }
    PgServer pg;
    Project p;
    std::string seen = shell_quote((p.dir / "agent-env.txt").string());
    p.agent("agent.sh", "#!/bin/sh\ncat >/dev/null\nenv | grep -c '^VIK_PG_URL=' > " + seen +
                            "\necho '{\"kind\":\"completed\"}'\n\"$VIK_HOST_BIN\" issue set-state P-1 done >/dev/null\n");
    p.issues(R"([{"id":"P-1","title":"t","state":"todo"}])");
    write_file(p.workflow(), "loop: {max_iterations: 3}\nagents:\n  bot:\n    runtime: scripted\n    model: none\n"
                             "    settings: {command: " +
                                 (p.dir / "agent.sh").string() +
                                 "}\nissues:\n  tracker: {kind: file, path: issues.json}\n  pull: {idle_sec: 1}\nissue:\n"
                                 "  stages:\n    work: {when: {state: todo}, agent: bot, prompt: p}\n"
                                 "store: {kind: postgres, url_env: VIK_PG_URL, workflow_id: e2e-flow}\n");
    std::vector<std::string> env{"VIK_PG_URL=" + pg.conninfo()};
    auto doctor = run_host({"doctor", p.workflow().string()}, p.dir.path, env);
    CHECK(doctor.out == "Vik doctor shows 0 error(s), 0 warning(s)\n");
    auto r = run_host({"run", p.workflow().string()}, p.dir.path, env, 120);
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(read_file(p.dir / "issues.json").find("done") != std::string::npos);
    CHECK(read_file(p.dir / "agent-env.txt") == "0\n");       // withheld like a tracker token
    CHECK_FALSE(fs::exists(p.scoped() / "state" / "vik.db")); // nothing went to SQLite

    auto h = run_host({"history", "--json", p.workflow().string()}, p.dir.path, env);
    INFO(h.err);
    REQUIRE(h.exit_code == 0);
    json::array runs = json::parse(h.out).as_array();
    REQUIRE(runs.size() == 1);
    CHECK(runs[0].at("issue_id") == "P-1");
    CHECK(runs[0].at("outcome") == "succeeded");

    // Without the URL the host refuses to start, naming the variable.
    auto refused = run_host({"run", p.workflow().string()}, p.dir.path);
    CHECK(refused.exit_code == 1);
    CHECK_THAT(refused.err + refused.out, Catch::Contains("export VIK_PG_URL (named by store.url_env)"));
}
