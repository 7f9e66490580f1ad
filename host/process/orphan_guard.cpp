#include "process/orphan_guard.hpp"

#include <csignal>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <set>
#include <string>
#include <sys/prctl.h>
#include <unistd.h>

namespace vik::process {
namespace {

int guard_fd = -1; // write end, owned by the host; -1 when no guard runs

[[noreturn]] void guard_main(int read_fd) {
    // Terminal signals aimed at the host's group must not take the guard down first.
    std::signal(SIGINT, SIG_IGN);
    std::signal(SIGTERM, SIG_IGN);
    std::signal(SIGHUP, SIG_IGN);
    std::signal(SIGPIPE, SIG_IGN);
    prctl(PR_SET_NAME, "vik-host-guard", 0, 0, 0);
    std::set<pid_t> groups;
    std::string pending;
    char buf[4096];
    for (;;) {
        ssize_t n = read(read_fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break; // the host is gone (or closed us on a clean exit)
        pending.append(buf, static_cast<size_t>(n));
        size_t pos;
        while ((pos = pending.find('\n')) != std::string::npos) {
            std::string line = pending.substr(0, pos);
            pending.erase(0, pos + 1);
            if (line.size() < 2) continue;
            pid_t pid = static_cast<pid_t>(std::strtol(line.c_str() + 1, nullptr, 10));
            if (pid <= 1) continue;
            if (line[0] == '+') groups.insert(pid);
            else if (line[0] == '-') groups.erase(pid);
        }
    }
    for (pid_t pgid : groups) ::kill(-pgid, SIGKILL);
    _exit(0);
}

void send(char op, pid_t pgid) {
    if (guard_fd < 0) return;
    char line[32];
    int len = std::snprintf(line, sizeof line, "%c%d\n", op, static_cast<int>(pgid));
    // One short write is atomic on a pipe; a failure only means the guard is gone.
    [[maybe_unused]] ssize_t ignored = ::write(guard_fd, line, static_cast<size_t>(len));
}

} // namespace

void start_orphan_guard() {
    if (guard_fd >= 0) return;
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) return;
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return;
    }
    if (pid == 0) {
        close(fds[1]);
        // Keep only the read end: inheriting anything else (a log file, a socket, the daemon's
        // handshake pipe) would keep it open after the host exits.
        if (fds[0] != 3) {
            dup2(fds[0], 3);
            close(fds[0]);
        }
        close_range(4, ~0U, 0);
        int devnull = open("/dev/null", O_RDWR);
        if (devnull >= 0) {
            dup2(devnull, 0);
            dup2(devnull, 1);
            dup2(devnull, 2);
            if (devnull > 3) close(devnull);
        }
        guard_main(3);
    }
    close(fds[0]);
    guard_fd = fds[1];
}

void orphan_guard_register(pid_t pgid) { send('+', pgid); }
void orphan_guard_unregister(pid_t pgid) { send('-', pgid); }

} // namespace vik::process
