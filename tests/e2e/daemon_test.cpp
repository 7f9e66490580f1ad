// Daemon lifecycle through the real binary: run -d, status, stop, restart, uninstall (vik-compat §1).
#include "support/test_support.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <csignal>
#include <filesystem>
#include <future>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

using namespace vik::test;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

struct DaemonProject {
    TempDir dir;
    std::string marker = "vik-daemon-agent-" + std::to_string(::getpid()) + "-" + std::to_string(std::rand());
    DaemonProject() {
        // An agent that stays busy (with a child of its own) until it is stopped.
        write_file(dir / "agent.sh",
                   "#!/bin/sh\ncat >/dev/null\necho '{\"kind\":\"message\",\"text\":\"busy\"}'\nsh -c 'sleep 300; : " + marker +
                       "'\n");
        fs::permissions(dir / "agent.sh", fs::perms::owner_all);
        write_file(dir / "issues.json", R"([{"id":"D-1","title":"t","state":"todo"}])");
        write_file(dir / "workflow.yml",
                   "agents:\n  bot: {runtime: scripted, model: none, settings: {command: " + (dir / "agent.sh").string() +
                       "}}\nissues:\n  tracker: {kind: file, path: issues.json}\n  pull: {idle_sec: 1}\n"
                       "issue:\n  stages:\n    work: {when: {state: todo}, agent: bot, prompt: p}\n");
    }
    ~DaemonProject() { run_host({"stop", "--timeout", "10", wf()}); }
    std::string wf() const { return (dir / "workflow.yml").string(); }
    fs::path state_file() const {
        std::string key = wf();
        for (char &c : key)
            if (c == '/') c = '-';
        return dir / ".vik" / "workflows" / key / "service" / "state.json";
    }
    long state_pid() const { return static_cast<long>(boost::json::parse(read_file(state_file())).at("pid").as_int64()); }
};

bool pid_alive(long pid) {
    if (::kill(static_cast<pid_t>(pid), 0) != 0) return false;
    std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
    auto close = stat.rfind(')');
    return !(close != std::string::npos && close + 2 < stat.size() && stat[close + 2] == 'Z');
}

} // namespace

TEST_CASE("daemon: run -d starts, status reports it, a second run -d is refused, stop leaves nothing behind", "[daemon][e2e]") {
    DaemonProject p;
    auto started = run_host({"run", "-d", p.wf()});
    INFO(started.out << started.err);
    REQUIRE(started.exit_code == 0);
    CHECK_THAT(started.out, Catch::StartsWith("daemon started (pid "));
    REQUIRE(fs::exists(p.state_file())); // written before the starting command returned
    long pid = p.state_pid();
    CHECK(pid_alive(pid));

    auto status = run_host({"status", p.wf()});
    CHECK(status.exit_code == 0);
    CHECK_THAT(status.out, Catch::StartsWith("status: running\nstate_file: " + p.state_file().string() +
                                             "\npid: " + std::to_string(pid) + "\n"));
    for (const char *field :
         {"bind_address: 127.0.0.1:0", "started_at: ", "log_dir: ", "sessions_dir: ", "workflow_path: ", "command: "})
        CHECK_THAT(status.out, Catch::Contains(field));

    auto second = run_host({"run", "-d", p.wf()});
    CHECK(second.exit_code == 1);
    CHECK(second.err == "daemon already running (pid " + std::to_string(pid) + ", state file " + p.state_file().string() + ")\n");

    REQUIRE(wait_until([&] { return process_with_marker_alive(p.marker); }, 20s)); // its agent is working
    auto stop = run_host({"stop", p.wf()});
    CHECK(stop.exit_code == 0);
    CHECK(stop.out == "daemon stopped\n");
    CHECK_FALSE(fs::exists(p.state_file()));
    CHECK(wait_until([&] { return !pid_alive(pid); }, 10s));
    CHECK_FALSE(process_with_marker_alive(p.marker));

    auto after = run_host({"status", p.wf()});
    CHECK(after.exit_code == 0);
    CHECK(after.out == "status: not installed\nstate_file: " + p.state_file().string() + "\n");
    auto again = run_host({"stop", p.wf()});
    CHECK(again.exit_code == 1);
    CHECK(again.err == "stop failed: no daemon state file for " + p.state_file().string() + "\n");
}

TEST_CASE("daemon: stale state files are handled by every command", "[daemon][e2e]") {
    DaemonProject p;
    // A state file naming a process that is gone.
    pid_t dead = fork();
    if (dead == 0) _exit(0);
    waitpid(dead, nullptr, 0);
    std::string stale =
        R"({"workflow_path":")" + p.wf() + R"(","cwd":"/","pid":)" + std::to_string(dead) +
        R"(,"port":0,"bind_address":"127.0.0.1","started_at":"2026-01-01T00:00:00.000Z","log_dir":"l","sessions_dir":"s","command":"vik-host run -d"})";
    write_file(p.state_file(), stale);

    auto status = run_host({"status", p.wf()});
    CHECK(status.exit_code == 0);
    CHECK_THAT(status.out, Catch::StartsWith("status: stale\n"));
    CHECK_THAT(status.out, Catch::Contains("pid: " + std::to_string(dead)));
    CHECK_THAT(status.out, Catch::Contains("\nstarted_at: 2026-01-01 00:00:00 UTC\n")); // chrono's Display, as vik

    auto stop = run_host({"stop", p.wf()});
    CHECK(stop.exit_code == 0);
    CHECK(stop.out == "daemon stopped\n");
    CHECK_FALSE(fs::exists(p.state_file()));

    write_file(p.state_file(), stale);
    auto run = run_host({"run", "-d", p.wf()});
    INFO(run.out << run.err);
    CHECK(run.exit_code == 0);
    CHECK_THAT(run.err, Catch::Contains("warning: overwriting stale state file"));
    CHECK(p.state_pid() != dead);
    CHECK_THAT(read_file(p.state_file()), Catch::StartsWith("{\n  \"workflow_path\": \"")); // serde_json pretty, as vik
    {
        // vik's warning, in the daemon's log with its fields as keys (cli/run.rs).
        fs::path logs = p.state_file().parent_path().parent_path() / "logs";
        std::string found;
        REQUIRE(wait_until(
            [&] {
                std::error_code ec;
                for (const auto &e : fs::directory_iterator(logs, ec))
                    if (e.path().filename().string().rfind("vik.log.", 0) == 0) {
                        std::string text = read_file(e.path());
                        if (auto at = text.find("found stale daemon state file"); at != std::string::npos) {
                            auto start = text.rfind('\n', at);
                            found = text.substr(start == std::string::npos ? 0 : start + 1,
                                                text.find('\n', at) - (start == std::string::npos ? 0 : start + 1));
                            return true;
                        }
                    }
                return false;
            },
            10s));
        auto line = boost::json::parse(found).as_object();
        CHECK(line.at("level") == "WARN");
        CHECK(line.at("message") == "found stale daemon state file on startup; overwriting");
        CHECK(line.at("stale_pid") == static_cast<int64_t>(dead));
        CHECK(std::string(line.at("state_file").as_string()) == p.state_file().string());
    }
    CHECK(run_host({"stop", p.wf()}).exit_code == 0);

    write_file(p.state_file(), stale);
    auto uninstall = run_host({"uninstall", p.wf()});
    CHECK(uninstall.exit_code == 0);
    CHECK(uninstall.out == "daemon uninstalled (state file removed if present)\n");
    CHECK_FALSE(fs::exists(p.state_file()));

    write_file(p.state_file(), stale);
    auto restart = run_host({"restart", p.wf()});
    CHECK(restart.exit_code == 0);
    CHECK_THAT(restart.out, Catch::StartsWith("no daemon was running; starting one\ndaemon started (pid "));
}

TEST_CASE("daemon: restart replaces the running daemon", "[daemon][e2e]") {
    DaemonProject p;
    REQUIRE(run_host({"run", "-d", p.wf()}).exit_code == 0);
    long first = p.state_pid();
    auto restart = run_host({"restart", p.wf()});
    INFO(restart.out << restart.err);
    CHECK(restart.exit_code == 0);
    CHECK_THAT(restart.out, Catch::StartsWith("daemon stopped; starting a fresh one\ndaemon started (pid "));
    long second = p.state_pid();
    CHECK(second != first);
    CHECK_FALSE(pid_alive(first));
    CHECK(pid_alive(second));
    auto uninstall = run_host({"uninstall", p.wf()});
    CHECK(uninstall.exit_code == 0);
    CHECK(wait_until([&] { return !pid_alive(second); }, 10s));
    CHECK_FALSE(process_with_marker_alive(p.marker));
}

TEST_CASE("daemon: a daemon whose workflow is invalid fails run -d with the reason", "[daemon][e2e]") {
    DaemonProject p;
    write_file(p.dir / "workflow.yml", "loop: {wait_ms: 0}\n" + read_file(p.dir / "workflow.yml"));
    auto r = run_host({"run", "-d", p.wf()});
    CHECK(r.exit_code == 1);
    CHECK(r.err == "invalid workflow config:\n'loop.wait_ms' expected to be great than 0, got 0\n");
    CHECK_FALSE(fs::exists(p.state_file()));
}

TEST_CASE("daemon: a daemon whose plugin refuses to start reports the reason to run -d", "[daemon][e2e]") {
    DaemonProject p;
    // An empty path passes doctor (the setting is present) but the plugin itself refuses it.
    write_file(p.dir / "workflow.yml", "agents:\n  bot: {runtime: scripted, model: none}\n"
                                       "issues:\n  tracker: {kind: file, path: ''}\n"
                                       "issue:\n  stages:\n    work: {when: {state: todo}, agent: bot, prompt: p}\n");
    auto r = run_host({"run", "-d", p.wf()});
    CHECK(r.exit_code == 1);
    CHECK_THAT(r.err,
               Catch::Contains("run failed: tracker plugin 'file-tracker' refused to start: file-tracker: setting 'path'"));
    CHECK_FALSE(fs::exists(p.state_file()));
}

TEST_CASE("daemon: two run -d at the same instant end with exactly one daemon", "[daemon][e2e]") {
    DaemonProject p;
    auto a = std::async(std::launch::async, [&] { return run_host({"run", "-d", p.wf()}); });
    auto b = std::async(std::launch::async, [&] { return run_host({"run", "-d", p.wf()}); });
    auto ra = a.get(), rb = b.get();
    INFO(ra.out << ra.err << rb.out << rb.err);
    CHECK(ra.exit_code + rb.exit_code == 1); // one 0, one 1
    const auto &loser = ra.exit_code == 1 ? ra : rb;
    CHECK_THAT(loser.err, Catch::StartsWith("daemon already running"));
    auto status = run_host({"status", p.wf()});
    CHECK_THAT(status.out, Catch::StartsWith("status: running"));
    CHECK(run_host({"stop", p.wf()}).exit_code == 0);
}

TEST_CASE("daemon: a foreground run is refused while a daemon runs the same workflow", "[daemon][e2e]") {
    DaemonProject p;
    REQUIRE(run_host({"run", "-d", p.wf()}).exit_code == 0);
    auto fg = run_host({"run", p.wf()}, {}, {}, 20);
    CHECK(fg.exit_code == 1);
    CHECK_THAT(fg.err, Catch::StartsWith("daemon already running (pid " + std::to_string(p.state_pid())));
}

TEST_CASE("daemon: stop reports failure when the daemon outlives the grace period", "[daemon][e2e]") {
    DaemonProject p;
    REQUIRE(run_host({"run", "-d", p.wf()}).exit_code == 0);
    long pid = p.state_pid();
    ::kill(static_cast<pid_t>(pid), SIGSTOP); // a stopped process cannot act on SIGTERM
    auto stop = run_host({"stop", "--timeout", "1", p.wf()});
    CHECK(stop.exit_code == 1);
    CHECK(stop.err == "stop failed: daemon pid " + std::to_string(pid) + " did not exit within 1000 ms\n"); // vik's text
    ::kill(static_cast<pid_t>(pid), SIGCONT);
    CHECK(wait_until([&] { return !pid_alive(pid); }, 20s)); // the pending SIGTERM now lands
}
