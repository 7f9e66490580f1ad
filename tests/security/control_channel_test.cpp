// The control channel: nobody else can pose as the host, idle or slow clients cannot stall it,
// and the handler learns who asks. Through the real binary where a host is involved.
#include "e2e/e2e_support.hpp"
#include "orchestrator/control_channel.hpp"
#include "plugins/host_api.hpp"
#include "process/process_service.hpp"
#include "security/security_support.hpp"

#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <csignal>
#include <optional>
#include <thread>

using namespace vik::test;
namespace fs = std::filesystem;
namespace ctl = vik::orchestrator;
using namespace std::chrono_literals;

namespace {

// A workflow whose host runs until stopped and answers `issue retry`.
void write_idle_workflow(Project &p) {
    p.issues("[]");
    p.agent("agent.sh", kOkAgent);
    write_file(p.workflow(), workflow_text("", "    settings: {command: " + (p.dir / "agent.sh").string() + "}\n",
                                           "    work: {when: {state: todo}, agent: bot, prompt: p}\n"));
}

fs::path socket_path(const Project &p) { return ctl::control_socket_name(p.scoped()); }

// A raw client connection to the socket (through /proc/self/fd, as the real client does).
int connect_raw(const fs::path &path) {
    int dir = ::open(path.parent_path().c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0) return -1;
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::string s = "/proc/self/fd/" + std::to_string(dir) + "/" + path.filename().string();
    std::memcpy(addr.sun_path, s.data(), s.size());
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (::connect(fd, reinterpret_cast<sockaddr *>(&addr),
                  static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + s.size() + 1)) != 0) {
        ::close(fd);
        fd = -1;
    }
    ::close(dir);
    return fd;
}

// What the peer sends until it closes or `timeout` passes; nullopt when it neither answered nor closed.
std::optional<std::string> read_until_closed(int fd, std::chrono::milliseconds timeout) {
    std::string got;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
        if (left <= 0) return std::nullopt;
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(left)) <= 0) return std::nullopt;
        char buf[4096];
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n <= 0) return got;
        got.append(buf, static_cast<size_t>(n));
    }
}

// A listener that binds as root and then becomes `nobody` before listen(): SO_PEERCRED names
// nobody. It reports every byte a client sent it through a pipe.
struct Impostor {
    pid_t pid = -1;
    int report = -1;
    Impostor(const fs::path &path, uid_t uid, gid_t gid) {
        int p[2];
        REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
        std::fflush(stdout);
        pid = ::fork();
        if (pid == 0) {
            ::close(p[0]);
            int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
            sockaddr_un addr{};
            addr.sun_family = AF_UNIX;
            int dir = ::open(path.parent_path().c_str(), O_PATH | O_DIRECTORY);
            std::string s = "/proc/self/fd/" + std::to_string(dir) + "/" + path.filename().string();
            std::memcpy(addr.sun_path, s.data(), s.size());
            ::unlink(path.c_str());
            if (::bind(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr) != 0 || ::chmod(path.c_str(), 0777) != 0 ||
                !become(uid, gid) || ::listen(fd, 8) != 0)
                ::_exit(3);
            for (;;) {
                int c = ::accept(fd, nullptr, nullptr);
                if (c < 0) ::_exit(4);
                auto got = read_until_closed(c, 5s);
                if (got && !got->empty() && ::write(p[1], got->data(), got->size()) < 0) ::_exit(5);
                ::close(c);
            }
        }
        ::close(p[1]);
        report = p[0];
    }
    // Everything clients sent, once the impostor is stopped.
    std::string stop() {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
        pid = -1;
        ::fcntl(report, F_SETFL, O_NONBLOCK);
        return read_until_closed(report, 200ms).value_or("");
    }
    ~Impostor() {
        if (pid > 0) stop();
        ::close(report);
    }
};

} // namespace

TEST_CASE("control: a control directory owned by another user is refused by the client and by the host, naming the owner",
          "[security][control][e2e]") {
    Unprivileged nobody;
    if (auto why = Unprivileged::unavailable(); !why.empty()) VIK_SKIP(why);
    Project p;
    write_idle_workflow(p);
    fs::path dir = socket_path(p).parent_path();
    fs::create_directories(dir);
    REQUIRE(::chown(dir.c_str(), nobody.uid, nobody.gid) == 0);
    ::chmod(dir.c_str(), 0700);
    Impostor impostor(socket_path(p), nobody.uid, nobody.gid);
    REQUIRE(wait_until([&] { return fs::exists(socket_path(p)); }, 5s));

    for (const char *cmd : {"retry", "cancel"}) {
        auto r = run_host({"issue", cmd, "X-1", p.workflow().string()});
        CHECK(r.exit_code == 1);
        CHECK_THAT(r.err, Catch::Contains("control directory " + dir.string() + " belongs to uid 65534 (nobody)"));
    }
    // set-state must not fall back to the tracker either: someone poses as the host.
    auto s = run_host({"issue", "set-state", "X-1", "done", p.workflow().string()});
    CHECK(s.exit_code == 1);
    CHECK_THAT(s.err, Catch::Contains("belongs to uid 65534 (nobody)"));

    auto host = run_host({"run", p.workflow().string()}, p.dir.path, {}, 30);
    CHECK(host.exit_code == 1);
    CHECK_THAT(host.err, Catch::Contains("cannot open the control channel"));
    CHECK_THAT(host.err, Catch::Contains("belongs to uid 65534 (nobody)"));
    CHECK(impostor.stop().empty());
}

TEST_CASE("control: the client sends nothing to a listener of another user and names it", "[security][control][e2e]") {
    Unprivileged nobody;
    if (auto why = Unprivileged::unavailable(); !why.empty()) VIK_SKIP(why);
    Project p;
    write_idle_workflow(p);
    fs::path dir = socket_path(p).parent_path();
    fs::create_directories(dir);
    ::chmod(dir.c_str(), 0700);
    Impostor impostor(socket_path(p), nobody.uid, nobody.gid);
    REQUIRE(wait_until([&] { return fs::exists(socket_path(p)); }, 5s));

    auto r = run_host({"issue", "comment", "X-1", "secret plans", p.workflow().string()});
    CHECK(r.exit_code == 1);
    CHECK_THAT(r.err, Catch::Contains("runs as uid 65534 (nobody), not as you"));
    CHECK_THAT(r.err, Catch::Contains("refusing to send anything"));
    CHECK(impostor.stop().empty());
}

TEST_CASE("control: a group- or world-writable control directory is refused", "[security][control]") {
    TempDir d;
    fs::path dir = d / "control";
    fs::create_directories(dir);
    ::chmod(dir.c_str(), 0777);
    CHECK_THROWS_WITH(ctl::control_request((dir / "socket").string(), "retry", "X", "", 2000),
                      Catch::Contains("is writable by group or others (mode 0777"));
    boost::asio::io_context io;
    CHECK_THROWS_WITH(
        ctl::ControlServer(io, (dir / "socket").string(),
                           [](const ctl::ControlRequest &, const ctl::Peer &, ctl::ControlServer::Reply r) { r("ok"); }),
        Catch::Contains("is writable by group or others"));
}

TEST_CASE("control: the host's socket lives in a private directory and goes away with the host", "[security][control][e2e]") {
    Project p;
    write_idle_workflow(p);
    auto host = start_host({"run", p.workflow().string()}, p.dir.path);
    REQUIRE(wait_until([&] { return host->stdout_text().find("issues pulled") != std::string::npos; }, 20s));
    struct stat st {};
    REQUIRE(::stat(socket_path(p).parent_path().c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0700);
    CHECK(st.st_uid == ::geteuid());
    auto r = run_host({"issue", "retry", "NOPE-1", p.workflow().string()});
    CHECK(r.exit_code == 0);
    CHECK(r.out == "issue NOPE-1 had no blocked or queued stage; nothing to retry\n");
    host->signal(SIGTERM);
    CHECK(host->wait(20s) == 0);
    CHECK_FALSE(fs::exists(socket_path(p)));
    auto gone = run_host({"issue", "retry", "NOPE-1", p.workflow().string()});
    CHECK(gone.exit_code == 1);
    CHECK_THAT(gone.err, Catch::Contains("no vik-host is running this workflow"));
}

TEST_CASE("control: a slow client is dropped after its read deadline and does not delay a real request",
          "[security][control][e2e]") {
    Project p;
    write_idle_workflow(p);
    auto host = start_host({"run", p.workflow().string()}, p.dir.path);
    REQUIRE(wait_until([&] { return host->stdout_text().find("issues pulled") != std::string::npos; }, 20s));
    INFO(host->stdout_text());

    int slow = connect_raw(socket_path(p));
    REQUIRE(slow >= 0);
    auto opened = std::chrono::steady_clock::now();
    REQUIRE(::write(slow, "{\"comm", 6) == 6); // ... and nothing more for a long time

    auto began = std::chrono::steady_clock::now();
    auto r = run_host({"issue", "retry", "NOPE-1", p.workflow().string()});
    CHECK(r.exit_code == 0);
    CHECK(r.out == "issue NOPE-1 had no blocked or queued stage; nothing to retry\n");
    CHECK(std::chrono::steady_clock::now() - began < 3s);

    auto got = read_until_closed(slow, 10s);
    REQUIRE(got.has_value()); // closed by the host, without an answer
    CHECK(got->empty());
    auto held = std::chrono::steady_clock::now() - opened;
    CHECK(held >= 4500ms);
    CHECK(held < 9s);
    ::close(slow);

    // An over-long request is refused, not buffered without end.
    int big = connect_raw(socket_path(p));
    REQUIRE(big >= 0);
    std::string junk(2 * 1024 * 1024, 'x');
    std::thread writer([&] {
        size_t sent = 0;
        while (sent < junk.size()) {
            ssize_t n = ::send(big, junk.data() + sent, junk.size() - sent, MSG_NOSIGNAL);
            if (n <= 0) break;
            sent += static_cast<size_t>(n);
        }
    });
    auto answer = read_until_closed(big, 10s);
    ::shutdown(big, SHUT_RDWR);
    writer.join();
    ::close(big);
    REQUIRE(answer.has_value());
    CHECK(*answer == "error the request is longer than 1048576 bytes\n");

    host->signal(SIGTERM);
    CHECK(host->wait(20s) == 0);
}

TEST_CASE("control: many idle connections get 'busy' past the cap, the host keeps working, and a real request gets through",
          "[security][control][e2e]") {
    Project p;
    write_idle_workflow(p);
    auto host = start_host({"run", p.workflow().string()}, p.dir.path);
    REQUIRE(wait_until([&] { return host->stdout_text().find("issues pulled") != std::string::npos; }, 20s));
    INFO(host->stdout_text());

    std::vector<int> idle;
    for (int i = 0; i < 40; ++i) {
        int fd = connect_raw(socket_path(p));
        REQUIRE(fd >= 0);
        idle.push_back(fd);
    }
    size_t pulls_before = count(host->stdout_text(), "issues pulled");
    auto began = std::chrono::steady_clock::now();
    // The real client retries while every slot is taken, and gets through once idle ones are dropped.
    auto r = run_host({"issue", "retry", "NOPE-2", p.workflow().string()});
    INFO(r.err);
    CHECK(r.exit_code == 0);
    CHECK(r.out == "issue NOPE-2 had no blocked or queued stage; nothing to retry\n");
    CHECK(std::chrono::steady_clock::now() - began < 9s);

    size_t busy = 0, dropped = 0;
    for (int fd : idle) {
        auto got = read_until_closed(fd, 10s);
        if (got && got->rfind("error busy:", 0) == 0)
            ++busy;
        else if (got && got->empty())
            ++dropped;
        ::close(fd);
    }
    CHECK(busy == 24);
    CHECK(dropped == 16);
    CHECK(count(host->stdout_text(), "issues pulled") > pulls_before); // intake went on meanwhile
    host->signal(SIGTERM);
    CHECK(host->wait(20s) == 0);
}

// [tsan-skip]: its client is a fork without exec of the threaded test process, which ThreadSanitizer
// does not support (the child can block on the runtime's own locks).
TEST_CASE("control: the handler learns the peer's pid, uid and session, and an agent's requests carry its session",
          "[security][control][tsan-skip]") {
    TempDir d;
    fs::path path = d / "service" / "control" / "socket";
    boost::asio::io_context io;
    std::vector<std::pair<ctl::ControlRequest, ctl::Peer>> seen;
    ctl::ControlServer server(io, path.string(),
                              [&](const ctl::ControlRequest &req, const ctl::Peer &peer, ctl::ControlServer::Reply reply) {
                                  seen.emplace_back(req, peer);
                                  reply("ok seen " + req.id);
                              });
    // A child in its own session, like an agent started by the host (setsid), asks for an issue.
    std::fflush(stdout);
    pid_t child = ::fork();
    if (child == 0) {
        ::setsid();
        try {
            ::_exit(ctl::control_request(path.string(), "set-state", "A-1", "review", 10000) == "ok seen A-1" ? 0 : 1);
        } catch (...) {
            ::_exit(2);
        }
    }
    int status = -1;
    for (int i = 0; i < 100 && ::waitpid(child, &status, WNOHANG) != child; ++i)
        io.run_for(50ms);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    REQUIRE(seen.size() == 1);
    CHECK(seen[0].first.command == "set-state");
    CHECK(seen[0].first.id == "A-1");
    CHECK(seen[0].first.value == "review");
    CHECK(seen[0].second.pid == child);
    CHECK(seen[0].second.sid == child);
    CHECK(seen[0].second.uid == ::getuid());
}

TEST_CASE("control: the read deadline and the connection cap are configurable and hold", "[security][control]") {
    TempDir d;
    fs::path path = d / "control" / "socket";
    boost::asio::io_context io;
    ctl::ControlLimits limits;
    limits.read_timeout = 300ms;
    limits.max_connections = 2;
    ctl::ControlServer server(
        io, path.string(),
        [](const ctl::ControlRequest &r, const ctl::Peer &, ctl::ControlServer::Reply reply) { reply("ok " + r.command); },
        limits);
    std::thread loop([&] { io.run_for(4s); });
    int a = connect_raw(path), b = connect_raw(path);
    std::this_thread::sleep_for(100ms);
    int c = connect_raw(path);
    auto third = read_until_closed(c, 2s);
    CHECK(third.value_or("<no answer>") == "error busy: 2 control connections are being served; try again\n");
    auto first = read_until_closed(a, 2s);
    CHECK(first.value_or("<still open>") == ""); // dropped at its deadline
    for (int fd : {a, b, c})
        ::close(fd);
    // The stale socket of a previous server is replaced; a live one is not.
    CHECK_THROWS_WITH(
        ctl::ControlServer(io, path.string(),
                           [](const ctl::ControlRequest &, const ctl::Peer &, ctl::ControlServer::Reply r) { r("ok"); }),
        Catch::Contains("another process listens on the control socket"));
    CHECK(ctl::control_request(path.string(), "ping", "X", "", 2000) == "ok ping");
    loop.join();
}

TEST_CASE("control: a peer's session finds the agent process a plugin started for an issue, while it runs",
          "[security][control]") {
    vik::process::ProcessService processes;
    vik::plugins::ProcessServiceBinding bind(processes);
    auto ctx = vik::plugins::make_host_context("some-runtime");
    const char *argv[] = {"sleep", "30", nullptr};
    const char *env[] = {"PATH=/usr/bin:/bin", "VIK_ISSUE_ID=A-7", "VIK_ISSUE_STAGE=build", nullptr};
    vik_process_spec spec{};
    spec.struct_size = sizeof spec;
    spec.argv = argv;
    spec.env = env;
    vik_process_callbacks cb{};
    cb.struct_size = sizeof cb;
    vik_process *proc = nullptr;
    char message[256] = {};
    vik_errbuf err{message, sizeof message};
    REQUIRE(ctx->api.process_spawn(ctx->api.host_ctx, &spec, &cb, &proc, &err) == VIK_OK);
    int64_t pid = ctx->api.process_pid(proc);
    CHECK(::getsid(static_cast<pid_t>(pid)) == pid); // a session leader: requests from inside carry its pid as sid
    auto found = vik::plugins::spawned_process(pid);
    REQUIRE(found.has_value());
    CHECK(found->plugin_id == "some-runtime");
    CHECK(found->issue_id == "A-7");
    CHECK(found->stage == "build");
    ctx->api.process_kill(proc, SIGKILL);
    int32_t code = 0, sig = 0;
    CHECK(ctx->api.process_wait(proc, 5000, &code, &sig) == VIK_OK);
    CHECK(wait_until([&] { return !vik::plugins::spawned_process(pid).has_value(); }, 2s));
    ctx->api.process_release(proc);
}
