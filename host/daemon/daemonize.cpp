#include "daemon/daemonize.hpp"

#include "daemon/daemon_status.hpp"
#include "logging/logging.hpp"

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fcntl.h>
#include <iostream>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

namespace vik::daemon {

namespace {
int handshake_fd = -1; // the daemon's write end until it reports

void write_all(int fd, const std::string &text) {
    size_t off = 0;
    while (off < text.size()) {
        ssize_t n = ::write(fd, text.data() + off, text.size() - off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;
        off += static_cast<size_t>(n);
    }
}
} // namespace

Detached detach(const std::string &state_file, int timeout_sec) {
    // vik logs this warning (cli/run.rs) once the detached daemon has its log files.
    if (auto s = inspect(std::filesystem::path(state_file).parent_path()); s.liveness == Liveness::stale)
        logging::warn_after_setup("found stale daemon state file on startup; overwriting stale_pid=" +
                                  std::to_string(s.state ? s.state->pid : 0) + " state_file=" + state_file);
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        std::cerr << "run failed: cannot create the start-up pipe: " << std::strerror(errno) << "\n";
        return {false, 1};
    }
    std::cout.flush();
    std::cerr.flush();
    pid_t first = fork();
    if (first < 0) {
        std::cerr << "run failed: fork: " << std::strerror(errno) << "\n";
        return {false, 1};
    }
    if (first == 0) {
        ::close(fds[0]);
        setsid();
        pid_t second = fork();
        if (second != 0) _exit(second < 0 ? 1 : 0); // the session leader leaves; the daemon cannot regain a terminal
        int devnull = ::open("/dev/null", O_RDWR);
        if (devnull >= 0) {
            dup2(devnull, 0);
            dup2(devnull, 1);
            dup2(devnull, 2);
            if (devnull > 2) ::close(devnull);
        }
        if (chdir("/") != 0) {
            // The workflow paths are absolute already; staying put is harmless.
        }
        handshake_fd = fds[1];
        return {true, 0};
    }
    ::close(fds[1]);
    int status = 0;
    waitpid(first, &status, 0);
    std::string report;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_sec);
    for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
        if (left <= 0) {
            std::cerr << "run failed: the daemon did not report within " << timeout_sec << " s; see its log\n";
            ::close(fds[0]);
            return {false, 1};
        }
        pollfd p{fds[0], POLLIN, 0};
        int r = ::poll(&p, 1, static_cast<int>(left));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) continue;
        char buf[4096];
        ssize_t n = ::read(fds[0], buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        report.append(buf, static_cast<size_t>(n));
    }
    ::close(fds[0]);
    if (report.rfind("OK ", 0) == 0) {
        std::string pid = report.substr(3);
        while (!pid.empty() && pid.back() == '\n')
            pid.pop_back();
        std::cout << "daemon started (pid " << pid << ", state file " << state_file << ")\n";
        return {false, 0};
    }
    if (report.rfind("ERR ", 0) == 0) {
        std::string reason = report.substr(4);
        while (!reason.empty() && reason.back() == '\n')
            reason.pop_back();
        std::cerr << reason << "\n";
        return {false, 1};
    }
    std::cerr << "run failed: the daemon exited during start-up; see its log\n";
    return {false, 1};
}

void report_started() {
    if (handshake_fd < 0) return;
    write_all(handshake_fd, "OK " + std::to_string(getpid()) + "\n");
    ::close(handshake_fd);
    handshake_fd = -1;
}

void report_failed(const std::string &reason) {
    if (handshake_fd < 0) return;
    write_all(handshake_fd, "ERR " + reason + "\n");
    ::close(handshake_fd);
    handshake_fd = -1;
}

} // namespace vik::daemon
