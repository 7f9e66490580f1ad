// The process service: line reading with a cap, stdin, exit codes, group kill, no leftovers.
#include "process/process_service.hpp"
#include "support/test_support.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <csignal>
#include <mutex>
#include <signal.h>
#include <sys/resource.h>
#include <thread>

using namespace vik::process;
using vik::test::TempDir;
namespace fs = std::filesystem;

namespace {
struct Collected {
    std::mutex m;
    std::vector<std::string> out, err;
    std::vector<bool> truncated;
};
ProcessCallbacks collect(Collected &c) {
    ProcessCallbacks cb;
    cb.on_stdout = [&c](std::string_view l, bool t) {
        std::lock_guard lock(c.m);
        c.out.emplace_back(l);
        c.truncated.push_back(t);
    };
    cb.on_stderr = [&c](std::string_view l, bool) {
        std::lock_guard lock(c.m);
        c.err.emplace_back(l);
    };
    return cb;
}
} // namespace

TEST_CASE("process: lines from stdout and stderr, stdin delivered, exit code reported", "[process]") {
    ProcessService svc;
    Collected c;
    SpawnSpec spec;
    spec.argv = {"sh", "-c", "read x; echo \"got $x\"; echo oops >&2; printf 'no newline'; exit 3"};
    spec.pipe_stdin = true;
    auto p = svc.spawn(spec, collect(c));
    p->write_stdin("hello\n");
    p->close_stdin();
    auto st = p->wait(10000);
    REQUIRE(st);
    CHECK(st->exit_code == 3);
    CHECK(c.out == std::vector<std::string>{"got hello", "no newline"});
    CHECK(c.err == std::vector<std::string>{"oops"});
}

TEST_CASE("process: an over-long line is cut at the cap and the rest dropped", "[process]") {
    ProcessService svc;
    Collected c;
    SpawnSpec spec;
    spec.argv = {"sh", "-c", "head -c 100000 /dev/zero | tr '\\0' a; echo; echo short"};
    spec.max_line_bytes = 1000;
    auto p = svc.spawn(spec, collect(c));
    REQUIRE(p->wait(10000));
    REQUIRE(c.out.size() == 2);
    CHECK(c.out[0].size() == 1000);
    CHECK(c.truncated[0]);
    CHECK(c.out[1] == "short");
    CHECK_FALSE(c.truncated[1]);
}

TEST_CASE("process: kill ends the whole group, background children included", "[process]") {
    ProcessService svc;
    vik::test::TempDir dir;
    std::string marker = "vik-bg-marker-" + std::to_string(getpid());
    SpawnSpec spec;
    spec.argv = {"sh", "-c", "sh -c 'sleep 300; : " + marker + "' & sh -c 'sleep 301; : " + marker + "' & echo started; wait"};
    Collected c;
    auto p = svc.spawn(spec, collect(c));
    REQUIRE(vik::test::wait_until([&] { return vik::test::process_with_marker_alive(marker); }, std::chrono::seconds(5)));
    CHECK_FALSE(p->wait(200));
    p->kill(SIGKILL);
    auto st = p->wait(10000);
    REQUIRE(st);
    CHECK(st->term_signal == SIGKILL);
    CHECK(vik::test::wait_until([&] { return !vik::test::process_with_marker_alive(marker); }, std::chrono::seconds(5)));
}

TEST_CASE("process: when the leader exits, what it left behind in its group is killed", "[process]") {
    ProcessService svc;
    std::string marker = "vik-orphan-marker-" + std::to_string(getpid());
    SpawnSpec spec;
    spec.argv = {"sh", "-c", "sh -c 'sleep 300; : " + marker + "' & echo done"};
    Collected c;
    auto p = svc.spawn(spec, collect(c));
    auto st = p->wait(10000);
    REQUIRE(st);
    CHECK(st->exit_code == 0);
    CHECK(vik::test::wait_until([&] { return !vik::test::process_with_marker_alive(marker); }, std::chrono::seconds(5)));
}

TEST_CASE("process: a missing program or directory is a clear error", "[process]") {
    ProcessService svc;
    SpawnSpec spec;
    spec.argv = {"definitely-not-a-program-vik"};
    CHECK_THROWS_WITH(svc.spawn(spec, {}), Catch::Contains("not found on PATH"));
    spec.argv = {"true"};
    spec.cwd = "/nonexistent/dir";
    CHECK_THROWS_WITH(svc.spawn(spec, {}), Catch::Contains("cannot enter directory '/nonexistent/dir'"));
}

TEST_CASE("process: releasing a running child kills it and stops callbacks", "[process]") {
    ProcessService svc;
    std::string marker = "vik-release-marker-" + std::to_string(getpid());
    std::atomic<int> lines{0};
    ProcessCallbacks cb;
    cb.on_stdout = [&](std::string_view, bool) { ++lines; };
    SpawnSpec spec;
    spec.argv = {"sh", "-c", "while true; do echo x; sleep 0.01; done; : " + marker};
    auto p = svc.spawn(spec, cb);
    REQUIRE(vik::test::wait_until([&] { return lines > 2; }, std::chrono::seconds(5)));
    p->release();
    int after = lines;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    CHECK(lines == after);
    CHECK(vik::test::wait_until([&] { return !vik::test::process_with_marker_alive(marker); }, std::chrono::seconds(5)));
}

TEST_CASE("process: a child starts with default signal dispositions, nothing blocked, and the host's original "
          "open-file limit",
          "[process]") {
    struct rlimit before {};
    REQUIRE(getrlimit(RLIMIT_NOFILE, &before) == 0);
    // The host raises its own limit at start; its children must not inherit the raised one.
    raise_open_file_limit();
    ProcessService svc;
    Collected c;
    SpawnSpec spec;
    spec.argv = {"sh", "-c", "grep -E '^(SigBlk|SigIgn)' /proc/self/status; ulimit -Sn"};
    // The host ignores SIGPIPE; the spawning thread blocks a signal of its own.
    std::signal(SIGPIPE, SIG_IGN);
    sigset_t usr1, previous;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &usr1, &previous);
    auto p = svc.spawn(spec, collect(c));
    pthread_sigmask(SIG_SETMASK, &previous, nullptr);
    REQUIRE(p->wait(10000));
    std::lock_guard lock(c.m);
    REQUIRE(c.out.size() == 3);
    CHECK(c.out[0] == "SigBlk:\t0000000000000000");
    CHECK(c.out[1] == "SigIgn:\t0000000000000000");
    CHECK(c.out[2] == (before.rlim_cur == RLIM_INFINITY ? std::string("unlimited") : std::to_string(before.rlim_cur)));
}

TEST_CASE("process: an exec failure names the program and its reason, and leaves no child behind", "[process]") {
    TempDir dir;
    fs::path script = dir / "bad-interpreter.sh";
    vik::test::write_file(script, "#!/nonexistent/interpreter\n");
    fs::permissions(script, fs::perms::owner_all);
    ProcessService svc;
    SpawnSpec spec;
    spec.argv = {script.string()};
    CHECK_THROWS_WITH(svc.spawn(spec, {}),
                      Catch::Contains("exec '" + script.string() + "'") && Catch::Contains("No such file or directory"));
    CHECK(svc.live_children() == 0);
    // The service still starts children afterwards.
    spec.argv = {"true"};
    auto p = svc.spawn(spec, {});
    auto st = p->wait(10000);
    REQUIRE(st);
    CHECK(st->exit_code == 0);
}
