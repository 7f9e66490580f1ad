// Several real vik-host processes on one workflow, coordinating through a real PostgreSQL 15
// (tests/support/pg_server) with leases and fencing (docs/scale-out.md). Each host has its own
// copy of the workflow (its own directory, as on its own machine) and its own VIK_HOST_ID; they
// share the database, the tracker (a directory of issue files) and the agent script. Agents log
// their own start and end, so the checks read what really ran, and when:
//   - every issue is done, and no two runs of one issue were ever alive at the same time;
//   - a host SIGKILLed mid-run: its leases expire and the others finish its work;
//   - a host SIGSTOPped past its lease time: its work is taken over, and when it wakes up its
//     stale agents' tracker writes and its stale store writes are refused;
//   - PostgreSQL restarted mid-run: the hosts keep their agents and lose nothing;
//   - one host's worth of tracker pulls: the intake leader shares its pull with the others.
#include "e2e_support.hpp"
#include "http/http_test_support.hpp"
#include "support/pg_server.hpp"

#include <catch2/catch.hpp>

#include <csignal>
#include <fmt/format.h>
#include <map>
#include <set>
#include <sstream>
#include <thread>

using namespace vik::test;
using namespace std::chrono_literals;
namespace json = boost::json;

namespace {

// One agent run as the agent logged it.
struct AgentRun {
    std::string issue, host;
    int64_t start_ns = 0;
    std::optional<int64_t> end_ns; // none: it never ended (its host was killed)
    std::optional<int> set_state_exit;
};

struct Cluster {
    PgServer &pg;
    int lease_ttl_sec;
    double agent_sleep_sec;
    int concurrency;
    TempDir root;
    fs::path issues = root / "issues";
    fs::path log = root / "agents.log";
    std::vector<std::unique_ptr<HostProcess>> hosts;
    std::string name;       // of the test, for kept logs
    std::string scheduling; // an extra `scheduling:` section, when a test needs one

    Cluster(const std::string &test, PgServer &server, int issue_count, int ttl_sec, double sleep_sec, int per_host)
        : pg(server), lease_ttl_sec(ttl_sec), agent_sleep_sec(sleep_sec), concurrency(per_host), name(test) {
        fs::create_directories(issues);
        for (int i = 1; i <= issue_count; ++i)
            add_issue(i);
        write_agent(false);
    }

    void add_issue(int i) {
        write_file(issues / fmt::format("I-{:03}.json", i),
                   fmt::format(R"({{"id":"I-{:03}","title":"issue {}","state":"todo"}})", i, i) + "\n");
    }

    // The agent's last act is its tracker write: the host stops the session once the issue moved
    // (SIGKILL), so the run's work ends with the "end" line, before it. `fail_first`: each issue's
    // first run (on whichever host) fails after its work, so its retry follows.
    void write_agent(bool fail_first) {
        std::string logged = shell_quote(log.string());
        std::string work = "echo \"start $VIK_ISSUE_ID $(date +%s%N) $VIK_HOST_ID\" >> " + logged +
                           "\necho '{\"kind\":\"message\",\"text\":\"working\"}'\nsleep " + fmt::format("{}", agent_sleep_sec) +
                           "\necho \"end $VIK_ISSUE_ID $(date +%s%N) $VIK_HOST_ID\" >> " + logged + "\n";
        std::string first_fails = fail_first ? "if mkdir " + shell_quote((root / "failed").string()) +
                                                   "/\"$VIK_ISSUE_ID\" 2>/dev/null; then\n" + work + "exit 1\nfi\n"
                                             : "";
        write_file(root / "agent.sh", "#!/bin/sh\ncat >/dev/null\n" + first_fails + work +
                                          "echo '{\"kind\":\"completed\"}'\n"
                                          "\"$VIK_HOST_BIN\" issue set-state \"$VIK_ISSUE_ID\" done >/dev/null 2>&1\n"
                                          "echo \"moved $VIK_ISSUE_ID $(date +%s%N) $VIK_HOST_ID $?\" >> " +
                                          logged + "\n");
        fs::create_directories(root / "failed");
        fs::permissions(root / "agent.sh", fs::perms::owner_all);
    }

    // VIK_TEST_KEEP_LOGS=DIR keeps the hosts' logs and the agents' log there, to look into a failure.
    ~Cluster() {
        if (const char *keep = std::getenv("VIK_TEST_KEEP_LOGS")) {
            for (size_t k = 1; k <= hosts.size(); ++k)
                if (hosts[k - 1]) write_file(fmt::format("{}/{}-host-{}.log", keep, name, k), host_log(k));
            if (fs::exists(log)) write_file(fmt::format("{}/{}-agents.log", keep, name), read_file(log));
        }
    }

    fs::path host_dir(size_t k) const { return root / fmt::format("host-{}", k); }

    // Starts host k (1-based) on its own copy of the workflow.
    // `serve`: with the HTTP API on a free port (served_port(k)).
    void start(size_t k, bool serve = false) {
        fs::create_directories(host_dir(k));
        write_file(host_dir(k) / "workflow.yml",
                   fmt::format("loop: {{max_issue_concurrency: {}}}\nagents:\n  bot:\n    runtime: scripted\n    model: none\n"
                               "    settings: {{command: {}}}\nissues:\n  tracker: {{kind: file, path: {}}}\n"
                               "  pull: {{idle_sec: 1}}\nissue:\n  stages:\n"
                               "    work: {{when: {{state: todo}}, agent: bot, prompt: p}}\n"
                               "store: {{kind: postgres, url_env: VIK_PG_URL, workflow_id: shared, lease_ttl_sec: {}}}\n{}",
                               concurrency, (root / "agent.sh").string(), issues.string(), lease_ttl_sec, scheduling));
        if (hosts.size() < k) hosts.resize(k);
        std::vector<std::string> args{"run", (host_dir(k) / "workflow.yml").string()};
        if (serve) args.insert(args.begin() + 1, {"--port", "0"});
        hosts[k - 1] = start_host(args, host_dir(k), {"VIK_PG_URL=" + pg.conninfo(), fmt::format("VIK_HOST_ID=host-{}", k)});
    }

    // The port host k serves its HTTP API on, from its service state file (0: none yet).
    uint16_t served_port(size_t k) const {
        std::error_code ec;
        for (const auto &scoped : fs::directory_iterator(host_dir(k) / ".vik" / "workflows", ec))
            if (auto file = scoped.path() / "service" / "state.json"; fs::exists(file, ec)) try {
                    return static_cast<uint16_t>(json::parse(read_file(file)).at("port").to_number<int64_t>());
                } catch (const std::exception &) {
                    return 0; // being replaced
                }
        return 0;
    }

    std::string host_log(size_t k) const { return hosts[k - 1]->stdout_text() + read_file(hosts[k - 1]->err); }

    size_t done() const {
        size_t n = 0;
        for (auto &e : fs::directory_iterator(issues))
            if (e.path().extension() == ".json" && read_file(e.path()).find("\"done\"") != std::string::npos) ++n;
        return n;
    }

    std::vector<AgentRun> runs() const {
        std::vector<AgentRun> out;
        std::map<std::pair<std::string, std::string>, size_t> open; // (issue, host) -> its run not yet ended
        std::istringstream in(fs::exists(log) ? read_file(log) : "");
        std::string what, issue, host;
        int64_t ns = 0;
        std::string line;
        while (std::getline(in, line)) {
            std::istringstream l(line);
            l >> what >> issue >> ns >> host;
            if (what == "start") {
                open[{issue, host}] = out.size();
                out.push_back(AgentRun{issue, host, ns, std::nullopt, std::nullopt});
            } else if (what == "end") {
                if (auto it = open.find({issue, host}); it != open.end()) out[it->second].end_ns = ns;
            } else if (what == "moved") {
                int rc = -1;
                l >> rc;
                if (auto it = open.find({issue, host}); it != open.end()) {
                    out[it->second].set_state_exit = rc;
                    open.erase(it);
                }
            }
        }
        return out;
    }

    // Stops the hosts still running (an orderly stop) and checks they stopped cleanly.
    void stop_all() {
        for (auto &h : hosts)
            if (h && h->pid > 0) h->signal(SIGTERM);
        for (auto &h : hosts)
            if (h && h->pid > 0) CHECK(h->wait(30s) == 0);
    }
};

int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// No two runs of one issue alive at once: each run starts after the previous one ended (a run
// that never ended, its host killed, ended when the host was killed at the latest).
void check_no_overlap(const std::vector<AgentRun> &runs, std::optional<int64_t> killed_at_ns, const std::string &killed_host) {
    std::map<std::string, std::vector<const AgentRun *>> by_issue;
    for (const auto &r : runs)
        by_issue[r.issue].push_back(&r);
    for (auto &[issue, list] : by_issue) {
        std::sort(list.begin(), list.end(), [](auto *a, auto *b) { return a->start_ns < b->start_ns; });
        for (size_t i = 1; i < list.size(); ++i) {
            const AgentRun &before = *list[i - 1];
            INFO("issue " << issue << ": a run on " << before.host << " then one on " << list[i]->host);
            REQUIRE((before.end_ns || (killed_at_ns && before.host == killed_host)));
            int64_t end = before.end_ns ? *before.end_ns : *killed_at_ns;
            CHECK(list[i]->start_ns >= end);
        }
    }
}

// Every issue moved to done exactly once: the hosts log each tracker write they made.
void check_done_once(const std::string &host_logs, size_t issue_count) {
    for (size_t i = 1; i <= issue_count; ++i) {
        std::string issue = fmt::format("I-{:03}", i);
        INFO("issue " << issue);
        CHECK(count(host_logs, "issue state changed issue_id=" + issue + " state=done") == 1);
    }
}

// The most agents alive at one instant, on all hosts together.
int most_at_once(const std::vector<AgentRun> &runs) {
    std::vector<std::pair<int64_t, int>> edges;
    for (const auto &r : runs) {
        REQUIRE(r.end_ns);
        edges.push_back({r.start_ns, +1});
        edges.push_back({*r.end_ns, -1});
    }
    std::sort(edges.begin(), edges.end()); // an end before a start at the same instant
    int at_work = 0, most = 0;
    for (const auto &[t, d] : edges)
        most = std::max(most, at_work += d);
    return most;
}

#define VIK_NEEDS_POSTGRES()                                                                                                     \
    if (auto why = PgServer::unavailable()) {                                                                                    \
        WARN("skipped: " << *why);                                                                                               \
        return;                                                                                                                  \
    }

} // namespace

TEST_CASE("scale-out: three hosts finish every issue once with no overlapping runs, also when one is SIGKILLed mid-run",
          "[e2e][postgres][scale-out]") {
    VIK_NEEDS_POSTGRES();
    PgServer pg;
    constexpr size_t kIssues = 150;
    Cluster c("kill", pg, kIssues, 6, 1.0, 6);
    for (size_t k = 1; k <= 3; ++k)
        c.start(k);
    REQUIRE(wait_until([&] { return c.done() >= 40; }, 120s));
    // Operators see the hosts and who holds which lease. The hosts' agents all sleep as long, so
    // their runs come in waves: between two waves (a few hundred ms) no lease is held, and a
    // heartbeat's `running` may still count the wave that just ended. Asked again until a wave runs.
    CommandResult status;
    bool lease_seen = wait_until(
        [&] {
            status =
                run_host({"status", (c.host_dir(1) / "workflow.yml").string()}, c.host_dir(1), {"VIK_PG_URL=" + pg.conninfo()});
            return status.out.find("lease: issue=I-") != std::string::npos;
        },
        30s);
    INFO(status.out << status.err);
    CHECK(lease_seen);
    CHECK_THAT(status.out, Catch::Contains("cluster: workflow_id=shared hosts=3"));
    CHECK_THAT(status.out, Catch::Contains("host: host-3 address="));
    // host-3 dies with work under way: its agents die with it (the orphan guard), its leases expire.
    INFO(c.host_log(3).substr(0, 20000));
    // Killed while one of its runs is a few hundred ms old: that run's claim is in the store (a
    // host killed sooner leaves bare leases) and its agent still works.
    REQUIRE(wait_until(
        [&] {
            int64_t now = now_ns();
            for (const auto &r : c.runs())
                if (r.host == "host-3" && !r.end_ns && now - r.start_ns > 250'000'000 && now - r.start_ns < 700'000'000)
                    return true;
            return false;
        },
        30s));
    c.hosts[2]->signal(SIGKILL);
    int64_t killed_at = now_ns();
    REQUIRE(c.hosts[2]->wait(10s) == 128 + SIGKILL);
    std::set<std::string> cut_short;
    for (const auto &r : c.runs())
        if (r.host == "host-3" && !r.end_ns) cut_short.insert(r.issue);
    REQUIRE_FALSE(cut_short.empty());

    bool all_done = wait_until([&] { return c.done() == kIssues; }, 180s);
    INFO(c.host_log(1).substr(0, 20000));
    REQUIRE(all_done);
    c.stop_all();

    auto runs = c.runs();
    check_no_overlap(runs, killed_at, "host-3");
    check_done_once(c.host_log(1) + c.host_log(2) + c.host_log(3), kIssues);
    std::map<std::string, size_t> per_host;
    for (const auto &r : runs)
        ++per_host[r.host];
    CHECK(per_host["host-1"] > 0);
    CHECK(per_host["host-2"] > 0);
    CHECK(per_host["host-3"] > 0);
    // The killed host's unfinished issues were finished by the others, after its leases expired.
    for (const auto &issue : cut_short) {
        INFO("issue " << issue);
        CHECK(std::any_of(runs.begin(), runs.end(),
                          [&](const AgentRun &r) { return r.issue == issue && r.host != "host-3" && r.end_ns; }));
        CHECK(count(c.host_log(1) + c.host_log(2), "issue state changed issue_id=" + issue + " state=done") == 1);
    }
    {
        std::istringstream all(c.host_log(1) + c.host_log(2));
        std::string line, lease_lines;
        while (std::getline(all, line))
            if (line.find("lease") != std::string::npos || line.find("taken") != std::string::npos ||
                line.find("interrupted") != std::string::npos)
                lease_lines += line + "\n";
        INFO(lease_lines.substr(0, 6000));
        CHECK_THAT(c.host_log(1) + c.host_log(2), Catch::Contains("work taken over from hosts whose leases expired"));
    }

    // One intake for the cluster: the tracker was pulled about as often as one host pulls it
    // (a follower pulls it itself only before the leader's first pull is published).
    {
        size_t tracker_pulls = 0, shared_pulls = 0, most_cycles = 0;
        for (size_t k = 1; k <= 3; ++k) {
            std::string l = c.host_log(k);
            tracker_pulls += count(l, "source=tracker");
            shared_pulls += count(l, "source=leader");
            most_cycles = std::max(most_cycles, count(l, "issues pulled count="));
        }
        INFO("tracker pulls " << tracker_pulls << ", shared " << shared_pulls << ", most cycles of one host " << most_cycles);
        CHECK(shared_pulls > 0);
        CHECK(tracker_pulls <= most_cycles + 4);
    }

    // The shared history: one succeeded run per issue, and the killed host's runs interrupted.
    auto h = run_host({"history", "--json", "--limit", "1000", (c.host_dir(1) / "workflow.yml").string()}, c.host_dir(1),
                      {"VIK_PG_URL=" + pg.conninfo()});
    INFO(h.err);
    REQUIRE(h.exit_code == 0);
    std::map<std::string, std::map<std::string, int>> outcomes;
    json::value listed = json::parse(h.out); // named: a range-for over a temporary's member dangles
    for (const auto &run : listed.as_array())
        ++outcomes[std::string(run.at("issue_id").as_string())][std::string(run.at("outcome").as_string())];
    CHECK(outcomes.size() == kIssues);
    for (auto &[issue, by] : outcomes) {
        INFO("issue " << issue);
        CHECK(by["succeeded"] <= 1); // a run the host stopped once the issue moved may count as cancelled
    }
    // Runs the killed host had recorded are interrupted now (the take-over marked them); one it
    // started in its last instant may not have reached the store at all.
    size_t interrupted = 0;
    for (const auto &issue : cut_short) {
        CHECK(outcomes[issue]["interrupted"] <= 1);
        interrupted += outcomes[issue]["interrupted"];
    }
    CHECK(interrupted > 0);
}

TEST_CASE("scale-out: a host paused past its lease time is fenced out: its work is taken over and its stale writes refused",
          "[e2e][postgres][scale-out]") {
    VIK_NEEDS_POSTGRES();
    PgServer pg;
    constexpr size_t kIssues = 6;
    Cluster c("pause", pg, kIssues, 6, 4.0, 3);
    c.start(1);
    // host-1 takes the first three issues (its concurrency), then host-2 joins for the rest.
    REQUIRE(wait_until([&] { return c.runs().size() >= 3; }, 60s));
    c.start(2);
    std::set<std::string> paused_work;
    for (const auto &r : c.runs())
        if (r.host == "host-1") paused_work.insert(r.issue);
    std::this_thread::sleep_for(600ms); // their claims reached the store; the agents work on
    c.hosts[0]->signal(SIGSTOP);
    std::this_thread::sleep_for(15s); // two and a half lease times
    c.hosts[0]->signal(SIGCONT);

    bool all_done = wait_until([&] { return c.done() == kIssues; }, 120s);
    INFO(c.host_log(1) << "\n----\n" << c.host_log(2));
    REQUIRE(all_done);
    // Let host-1's stale agents get their answers before looking.
    REQUIRE(wait_until(
        [&] {
            auto runs = c.runs();
            return std::all_of(runs.begin(), runs.end(), [](const AgentRun &r) { return r.end_ns.has_value(); });
        },
        60s));
    c.stop_all();

    auto runs = c.runs();
    std::string log1 = c.host_log(1), log2 = c.host_log(2);
    check_done_once(log1 + log2, kIssues);
    for (const auto &issue : paused_work) {
        INFO("issue " << issue);
        // host-1's agent finished while its host was paused; when the host woke up its tracker
        // write was refused (or the agent was stopped first), and host-2 ran the stage again.
        CHECK(count(log1, "issue state changed issue_id=" + issue) == 0);
        CHECK(count(log2, "issue state changed issue_id=" + issue + " state=done") == 1);
        CHECK(std::any_of(runs.begin(), runs.end(), [&](const AgentRun &r) { return r.issue == issue && r.host == "host-2"; }));
        CHECK_FALSE(std::any_of(runs.begin(), runs.end(), [&](const AgentRun &r) {
            return r.issue == issue && r.host == "host-1" && r.set_state_exit == 0;
        }));
    }
    CHECK_THAT(log1, Catch::Contains("lease lost") || Catch::Contains("leases given up"));
    CHECK_THAT(c.host_log(2), Catch::Contains("work taken over from hosts whose leases expired"));

    // In the store, host-1's runs of those issues stay as host-2's take-over left them.
    auto h = run_host({"history", "--json", (c.host_dir(2) / "workflow.yml").string()}, c.host_dir(2),
                      {"VIK_PG_URL=" + pg.conninfo()});
    REQUIRE(h.exit_code == 0);
    std::map<std::string, std::map<std::string, int>> outcomes;
    json::value listed = json::parse(h.out); // named: a range-for over a temporary's member dangles
    for (const auto &run : listed.as_array())
        ++outcomes[std::string(run.at("issue_id").as_string())][std::string(run.at("outcome").as_string())];
    for (const auto &issue : paused_work) {
        INFO("issue " << issue);
        CHECK(outcomes[issue]["succeeded"] == 1);
        CHECK(outcomes[issue]["interrupted"] == 1);
    }
}

TEST_CASE("scale-out: PostgreSQL restarted mid-run: hosts keep their agents and lose nothing", "[e2e][postgres][scale-out]") {
    VIK_NEEDS_POSTGRES();
    PgServer pg;
    constexpr size_t kIssues = 12;
    Cluster c("restart", pg, kIssues, 15, 2.0, 3);
    c.start(1);
    c.start(2);
    REQUIRE(wait_until([&] { return c.runs().size() >= 4; }, 60s));
    // The postgres store loaded libpq when it was opened (it is not linked into the host).
    CHECK_THAT(read_file("/proc/" + std::to_string(c.hosts[0]->pid) + "/maps"), Catch::Contains("libpq.so.5"));
    pg.stop();
    std::this_thread::sleep_for(4s); // longer than a renewal period: renewals fail, then work again
    pg.start();
    bool all_done = wait_until([&] { return c.done() == kIssues; }, 120s);
    INFO(c.host_log(1) << "\n----\n" << c.host_log(2));
    REQUIRE(all_done);
    c.stop_all();

    auto runs = c.runs();
    CHECK(runs.size() == kIssues); // nothing ran twice: no lease was lost
    check_no_overlap(runs, std::nullopt, "");
    std::string logs = c.host_log(1) + c.host_log(2);
    check_done_once(logs, kIssues);
    CHECK_THAT(logs, !Catch::Contains("lease lost") && !Catch::Contains("leases given up"));
    CHECK_THAT(logs, Catch::Contains("lease renewal works again"));
    auto h = run_host({"history", "--json", (c.host_dir(1) / "workflow.yml").string()}, c.host_dir(1),
                      {"VIK_PG_URL=" + pg.conninfo()});
    REQUIRE(h.exit_code == 0);
    json::value all = json::parse(h.out);
    CHECK(all.as_array().size() == kIssues);
    for (const auto &run : all.as_array())
        CHECK(run.at("outcome") != "interrupted");
}

TEST_CASE("scale-out: a per-state limit holds across the hosts", "[e2e][postgres][scale-out]") {
    VIK_NEEDS_POSTGRES();
    PgServer pg;
    constexpr size_t kIssues = 8;
    Cluster c("limits", pg, kIssues, 10, 1.0, 4);
    c.scheduling = "scheduling: {max_concurrent_by_state: {todo: 2}}\n";
    c.start(1);
    c.start(2);
    bool all_done = wait_until([&] { return c.done() == kIssues; }, 120s);
    INFO(c.host_log(1) << "\n----\n" << c.host_log(2));
    REQUIRE(all_done);
    c.stop_all();
    // At no instant were more than two agents at work, counting both hosts (their own logs).
    CHECK(most_at_once(c.runs()) == 2);
    check_done_once(c.host_log(1) + c.host_log(2), kIssues);
}

TEST_CASE("scale-out: a retry firing on one host waits while the state's places are taken on another",
          "[e2e][postgres][scale-out]") {
    VIK_NEEDS_POSTGRES();
    PgServer pg;
    // Host 1 runs I-001 and I-002, whose first runs fail: their retries wait on host 1 while
    // nothing of the state is at work anywhere. Host 1 is paused (well within its lease's safe
    // time) so that host 2 alone takes the state's two places with I-003 and I-004; when host 1
    // wakes, its overdue retries fire while both places are taken on host 2.
    Cluster c("retry-limits", pg, 2, 45, 4.0, 4); // host 1's safe time (30 s) outlasts its pause
    c.write_agent(true);                          // every issue's first run fails
    c.scheduling = "scheduling: {max_concurrent_by_state: {todo: 2}, retry_base_sec: 2, retry_max_backoff_sec: 4}\n";
    c.start(1);
    auto ended = [&](size_t n) { return count(fs::exists(c.log) ? read_file(c.log) : "", "end I-") >= n; };
    REQUIRE(wait_until([&] { return ended(2); }, 60s));
    std::this_thread::sleep_for(300ms); // the failures are decided and the retries queued
    c.hosts[0]->signal(SIGSTOP);
    c.add_issue(3);
    c.add_issue(4);
    c.start(2, true); // it pulls the tracker itself once the paused leader's pull is stale
    auto started = [&](const std::string &issue) {
        return count(fs::exists(c.log) ? read_file(c.log) : "", "start " + issue) >= 1;
    };
    bool taken = wait_until([&] { return started("I-003") && started("I-004"); }, 15s);
    c.hosts[0]->signal(SIGCONT);
    INFO(c.host_log(1) << "\n----\n" << c.host_log(2));
    REQUIRE(taken);
    bool all_done = wait_until([&] { return c.done() == 4; }, 120s);
    REQUIRE(all_done);
    // Host 2's intakes while it read the paused leader's ageing pull took milliseconds: their
    // duration is the host's own call, not the age of the text it read.
    uint16_t port = 0;
    REQUIRE(wait_until([&] { return (port = c.served_port(2)) != 0; }, 10s));
    auto state = json::parse(http_request(port, "GET", "/api/v1/state").body).as_object();
    const auto &totals = state.at("totals").as_object();
    INFO(json::serialize(totals));
    CHECK(totals.at("intake_cycles").to_number<int64_t>() >= 8);
    CHECK(totals.at("intake_duration_seconds").at("sum").to_number<double>() <
          0.5 * totals.at("intake_cycles").to_number<double>());
    c.stop_all();
    auto runs = c.runs();
    CHECK(runs.size() == 8); // a failed run and its retry per issue
    CHECK(most_at_once(runs) == 2);
    CHECK(count(c.host_log(1), "the state's limit is reached on the hosts") >= 1);
    check_done_once(c.host_log(1) + c.host_log(2), 4);
}

TEST_CASE("scale-out: a schedule fires once for the cluster, on one host", "[e2e][postgres][scale-out]") {
    VIK_NEEDS_POSTGRES();
    PgServer pg;
    Cluster c("schedule", pg, 1, 10, 0.5, 2);
    // Every minute, I-001 goes back to todo (its stage moves it to done).
    c.scheduling = "schedules:\n  again:\n    cron: \"* * * * *\"\n    time_zone: UTC\n    issue: I-001\n    state: todo\n";
    // Started early in a minute, so the first run has moved I-001 to done before the firing.
    auto second = std::chrono::system_clock::now().time_since_epoch() % std::chrono::minutes(1);
    if (second > 30s) std::this_thread::sleep_for(std::chrono::minutes(1) - second + 1s);
    c.start(1);
    c.start(2);
    auto logs = [&] { return c.host_log(1) + c.host_log(2); };
    REQUIRE(wait_until([&] { return c.done() == 1; }, 30s));
    // Both hosts' timers go off at the next minute; one of them records the firing and fires.
    bool fired = wait_until([&] { return count(logs(), "schedule fired by another host schedule=again") >= 1; }, 75s);
    INFO(c.host_log(1) << "\n----\n" << c.host_log(2));
    REQUIRE(fired);
    // The issue went back to todo once, and its stage ran again (the first run's done and this one's).
    REQUIRE(wait_until([&] { return count(logs(), "issue state changed issue_id=I-001 state=done") == 2; }, 30s));
    c.stop_all();
    std::string all = logs();
    CHECK(count(all, "state=todo: schedule again") == 1);
    CHECK(count(all, "schedule fired schedule=again") == 1);
    CHECK(count(all, "schedule fired by another host schedule=again") == 1);
}
