// Containment through the process service: descendants that leave their session or process
// group (setsid after a double fork, setpgid) die with their child, in cgroup mode and in the
// proc-walk fallback; a shut read gate stops reading a child's pipes without dropping anything.
#include "process/process_service.hpp"
#include "process/read_gate.hpp"
#include "support/test_support.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <thread>
#include <unistd.h>

using namespace vik::process;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

// Gone: no such process, or a zombie (dead, waiting for its parent to reap it).
bool gone(pid_t pid) {
    if (::kill(pid, 0) != 0 && errno == ESRCH) return true;
    std::string stat = vik::test::read_file("/proc/" + std::to_string(pid) + "/stat");
    auto close = stat.rfind(')');
    return close == std::string::npos || (close + 2 < stat.size() && stat[close + 2] == 'Z');
}

pid_t read_pid(const fs::path &file) {
    std::string text = vik::test::read_file(file);
    return text.empty() ? 0 : static_cast<pid_t>(std::atol(text.c_str()));
}

// A shell script whose descendants escape: one double-forks and calls setsid, one calls
// setpgid; both write their pid to a file and sleep. The script itself then sleeps too.
std::string escaping_script(const vik::test::TempDir &dir, const std::string &then) {
    std::string setsid_pid = (dir / "setsid.pid").string(), setpgid_pid = (dir / "setpgid.pid").string();
    return "( setsid sh -c 'echo $$ > " + setsid_pid +
           "; exec sleep 300' </dev/null >/dev/null 2>&1 & )\n"
           "( perl -e 'setpgrp(0,0); open(F, \">\", $ARGV[0]) or die; print F $$; close F; exec(\"sleep\", \"301\")' " +
           setpgid_pid + " </dev/null >/dev/null 2>&1 & )\n" + then;
}

struct ModeScope {
    explicit ModeScope(const char *mode) { ::setenv("VIK_HOST_CONTAINMENT", mode, 1); }
    ~ModeScope() { ::unsetenv("VIK_HOST_CONTAINMENT"); }
};

bool cgroup_available() {
    ProcessService probe;
    return probe.containment_description().find("containment: cgroup") != std::string::npos;
}

void check_escapers_die(const char *mode, bool by_kill) {
    ModeScope scope(mode);
    ProcessService service;
    INFO(service.containment_description());
    CHECK_THAT(service.containment_description(), Catch::Contains(std::string(mode) == "proc" ? "proc walk" : "cgroup"));
    vik::test::TempDir dir;
    SpawnSpec spec;
    spec.argv = {"sh", "-c", escaping_script(dir, by_kill ? "sleep 300\n" : "sleep 2\n")};
    auto p = service.spawn(spec, {});
    REQUIRE(vik::test::wait_until([&] { return read_pid(dir / "setsid.pid") > 0 && read_pid(dir / "setpgid.pid") > 0; }, 10s));
    pid_t a = read_pid(dir / "setsid.pid"), b = read_pid(dir / "setpgid.pid");
    CHECK(::getsid(a) == a); // really escaped: a session of its own
    CHECK(::getpgid(b) == b);
    CHECK_FALSE(gone(a));
    CHECK_FALSE(gone(b));
    if (by_kill) p->kill(SIGKILL);
    REQUIRE(p->wait(10000));
    CHECK(vik::test::wait_until([&] { return gone(a) && gone(b); }, 5s));
}

} // namespace

TEST_CASE("containment: a session kill reaches descendants that called setsid or setpgid (proc walk)", "[process][containment]") {
    check_escapers_die("proc", true);
}

TEST_CASE("containment: a session kill reaches descendants that called setsid or setpgid (cgroup)", "[process][containment]") {
    if (!cgroup_available()) {
        WARN("cgroup v2 is not writable here; only the proc walk fallback is tested");
        return;
    }
    check_escapers_die("cgroup", true);
}

TEST_CASE("containment: when a child exits, its escaped descendants are killed (both mechanisms)", "[process][containment]") {
    check_escapers_die("proc", false);
    if (cgroup_available()) check_escapers_die("cgroup", false);
}

TEST_CASE("containment: destroying the process service (host exit) kills escaped descendants", "[process][containment]") {
    for (const char *mode : {"proc", "cgroup"}) {
        ModeScope scope(mode);
        vik::test::TempDir dir;
        pid_t a = 0, b = 0;
        {
            ProcessService service;
            SpawnSpec spec;
            spec.argv = {"sh", "-c", escaping_script(dir, "sleep 300\n")};
            auto p = service.spawn(spec, {});
            REQUIRE(vik::test::wait_until([&] { return read_pid(dir / "setsid.pid") > 0 && read_pid(dir / "setpgid.pid") > 0; },
                                          10s));
            a = read_pid(dir / "setsid.pid");
            b = read_pid(dir / "setpgid.pid");
            p.reset(); // the handle goes first, as in the host
        }
        INFO(mode);
        CHECK(vik::test::wait_until([&] { return gone(a) && gone(b); }, 5s));
    }
}

namespace {

// The last stdout line of a child, kept under a lock (the I/O thread writes it).
struct LastLine {
    std::mutex m;
    std::string text;
    ProcessCallbacks callbacks() {
        ProcessCallbacks cb;
        cb.on_stdout = [this](std::string_view line, bool) {
            std::lock_guard lock(m);
            text = std::string(line);
        };
        return cb;
    }
    std::string get() {
        std::lock_guard lock(m);
        return text;
    }
};

// Prints the child's cgroup ("0::/path" in /proc/self/cgroup, the path), then runs `then`.
const std::string kPrintCgroup = "sed -n 's/^0:://p' /proc/self/cgroup";

// The cgroup a child of `service` runs in, once it ended.
std::string child_cgroup(ProcessService &service) {
    SpawnSpec spec;
    spec.argv = {"sh", "-c", kPrintCgroup};
    LastLine line;
    auto p = service.spawn(spec, line.callbacks());
    REQUIRE(p->wait(10000));
    return line.get();
}

// The host's base cgroup directory, from the containment description ("cgroup v2 at <dir>").
fs::path base_cgroup(const ProcessService &service) {
    std::string d = service.containment_description();
    auto at = d.find("cgroup v2 at ");
    if (at == std::string::npos) return {};
    at += 13;
    return d.substr(at, d.find(')', at) - at);
}

} // namespace

TEST_CASE("containment: an ended child's empty cgroup is used again, and contains the next child as well",
          "[process][containment]") {
    if (!cgroup_available()) {
        WARN("cgroup v2 is not writable here; cgroup reuse is not tested");
        return;
    }
    ModeScope scope("cgroup");
    fs::path base;
    {
        ProcessService service;
        base = base_cgroup(service);
        REQUIRE_FALSE(base.empty());
        std::string first = child_cgroup(service);
        REQUIRE_FALSE(first.empty());
        // The first child ended and its cgroup was empty: the next child gets the same one.
        CHECK(child_cgroup(service) == first);

        // A child in the reused cgroup: its escaped descendants still die when it is killed.
        vik::test::TempDir dir;
        SpawnSpec spec;
        spec.argv = {"sh", "-c", escaping_script(dir, kPrintCgroup + "; sleep 300\n")};
        LastLine where;
        auto p = service.spawn(spec, where.callbacks());
        REQUIRE(
            vik::test::wait_until([&] { return read_pid(dir / "setsid.pid") > 0 && read_pid(dir / "setpgid.pid") > 0; }, 10s));
        pid_t a = read_pid(dir / "setsid.pid"), b = read_pid(dir / "setpgid.pid");
        REQUIRE(vik::test::wait_until([&] { return !where.get().empty(); }, 10s));
        CHECK(where.get() == first);
        p->kill(SIGKILL);
        REQUIRE(p->wait(10000));
        CHECK(vik::test::wait_until([&] { return gone(a) && gone(b); }, 5s));

        // A session whose cgroup was frozen (an agent may write its cgroup.freeze): once it is
        // killed, that cgroup is given to nobody else.
        SpawnSpec sleeper;
        sleeper.argv = {"sh", "-c", kPrintCgroup + "; exec sleep 300"};
        LastLine cold;
        auto q = service.spawn(sleeper, cold.callbacks());
        REQUIRE(vik::test::wait_until([&] { return !cold.get().empty(); }, 10s));
        fs::path cold_dir = base / fs::path(cold.get()).filename();
        vik::test::write_file(cold_dir / "cgroup.freeze", "1");
        CHECK(vik::test::wait_until(
            [&] { return vik::test::read_file(cold_dir / "cgroup.events").find("frozen 1") != std::string::npos; }, 5s));
        q->kill(SIGKILL);
        REQUIRE(q->wait(10000));
        std::string next = child_cgroup(service);
        CHECK_FALSE(next.empty());
        CHECK(next != cold.get());

        // A session that made a cgroup below its own (as a container tool might): its cgroup is
        // removed with what is below it, not given to anyone.
        LastLine nested;
        auto r = service.spawn(sleeper, nested.callbacks());
        REQUIRE(vik::test::wait_until([&] { return !nested.get().empty(); }, 10s));
        fs::path nested_dir = base / fs::path(nested.get()).filename();
        fs::create_directory(nested_dir / "inner");
        r->kill(SIGKILL);
        REQUIRE(r->wait(10000));
        CHECK(child_cgroup(service) != nested.get());
        CHECK(vik::test::wait_until([&] { return !fs::exists(nested_dir); }, 5s));
    }
    // The service is gone (the host exits): so are its cgroups, spares included.
    CHECK_FALSE(fs::exists(base));
}

TEST_CASE("containment: an escaped daemon holding the child's stdout does not keep the child from finishing",
          "[process][containment]") {
    ProcessService service;
    SpawnSpec spec;
    // The daemon keeps stdout open: only killing it lets the pipe reach EOF.
    spec.argv = {"sh", "-c", "( setsid sleep 300 & ); echo started"};
    std::atomic<int> lines{0};
    ProcessCallbacks cb;
    cb.on_stdout = [&](std::string_view, bool) { ++lines; };
    auto p = service.spawn(spec, cb);
    auto st = p->wait(10000);
    REQUIRE(st);
    CHECK(st->exit_code == 0);
    CHECK(lines == 1);
}

TEST_CASE("containment: orphans adopted by the host are reaped, not left as zombies", "[process][containment]") {
    ProcessService service;
    vik::test::TempDir dir;
    SpawnSpec spec;
    // The grandchild exits on its own after its parent is gone: it becomes the host's zombie.
    spec.argv = {"sh", "-c",
                 "( setsid sh -c 'echo $$ > " + (dir / "pid").string() + "; sleep 0.5' </dev/null >/dev/null 2>&1 & ); sleep 2"};
    auto p = service.spawn(spec, {});
    REQUIRE(vik::test::wait_until([&] { return read_pid(dir / "pid") > 0; }, 10s));
    pid_t orphan = read_pid(dir / "pid");
    // It re-parented to us (the subreaper), died, and was reaped: no /proc entry at all.
    CHECK(vik::test::wait_until([&] { return ::kill(orphan, 0) != 0 && errno == ESRCH; }, 5s));
    REQUIRE(p->wait(10000));
}

// [tsan-skip]: two million lines through the gate take minutes under ThreadSanitizer.
TEST_CASE("read gate: a shut gate stops reading a child's output, nothing is lost, opening resumes",
          "[process][flow][tsan-skip]") {
    ProcessService service;
    auto gate = std::make_shared<ReadGate>();
    std::atomic<long> lines{0};
    std::atomic<bool> order_ok{true};
    ProcessCallbacks cb;
    long expected = 0;
    std::mutex m;
    cb.on_stdout = [&](std::string_view line, bool) {
        std::lock_guard lock(m);
        if (std::atol(std::string(line).c_str()) != expected + 1) order_ok = false;
        expected += 1;
        ++lines;
    };
    SpawnSpec spec;
    spec.argv = {"seq", "1", "2000000"};
    spec.gate = gate;
    gate->shut();
    auto p = service.spawn(spec, cb);
    // At most one read's worth gets through while shut; the child blocks on a full pipe.
    std::this_thread::sleep_for(500ms);
    long while_shut = lines;
    CHECK(while_shut < 20000);
    std::this_thread::sleep_for(300ms);
    CHECK(lines == while_shut);
    CHECK_FALSE(p->exited());
    gate->open();
    auto st = p->wait(60000);
    REQUIRE(st);
    CHECK(st->exit_code == 0);
    CHECK(lines == 2000000);
    CHECK(order_ok);
}

// [tsan-skip]: its 5 s bound on the blocked child's end is a wall-clock figure for a normal build.
TEST_CASE("read gate: releasing a child whose gate is shut still lets it finish", "[process][flow][tsan-skip]") {
    ProcessService service;
    auto gate = std::make_shared<ReadGate>();
    gate->shut();
    SpawnSpec spec;
    spec.argv = {"yes"};
    spec.gate = gate;
    auto p = service.spawn(spec, {});
    std::this_thread::sleep_for(100ms);
    p->release();
    CHECK(vik::test::wait_until([&] { return service.live_children() == 0; }, 5s));
}
