#include "process/orphan_guard.hpp"

#include "process/containment.hpp"
#include "process/proc_table.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <set>
#include <string>
#include <sys/prctl.h>
#include <thread>
#include <unistd.h>

namespace vik::process {
namespace {

int guard_fd = -1; // write end, owned by the host; -1 when no guard runs
pid_t guard_pid = -1;

void on_parent_death(int) {} // only interrupts read(): the loop then checks the parent

// Kills what the host left: registered groups, the base cgroup, tagged processes and members of
// registered sessions, with all their descendants; a few rounds, as a dying tree may still fork.
void kill_leftovers(const std::set<pid_t> &groups, const std::string &cgroup, const std::string &tag) {
    for (pid_t pgid : groups)
        ::kill(-pgid, SIGKILL);
    if (!cgroup.empty()) cgroup_kill(cgroup);
    pid_t self = ::getpid();
    for (int round = 0; round < 5; ++round) {
        auto table = list_processes();
        std::vector<pid_t> roots;
        for (const auto &e : table) {
            if (e.pid == self || e.state == 'Z') continue;
            if (groups.count(e.sid) || groups.count(e.pgid) || (!tag.empty() && environ_has(e.pid, tag, true)))
                roots.push_back(e.pid);
        }
        auto all = with_descendants(table, roots);
        all.erase(std::remove(all.begin(), all.end(), self), all.end());
        if (all.empty()) break;
        for (pid_t p : all)
            ::kill(p, SIGKILL);
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (!cgroup.empty()) {
        // Killed processes leave their cgroups as they exit; then the cgroups can go.
        for (int i = 0; i < 100 && !Containment::remove_cgroup(cgroup); ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
}

[[noreturn]] void guard_main(int read_fd, pid_t host) {
    // Its own session: a kill of the host's process group or a terminal hangup misses it.
    ::setsid();
    // Terminal signals aimed at the host's group must not take the guard down first.
    std::signal(SIGINT, SIG_IGN);
    std::signal(SIGTERM, SIG_IGN);
    std::signal(SIGHUP, SIG_IGN);
    std::signal(SIGPIPE, SIG_IGN);
    struct sigaction sa {};
    sa.sa_handler = on_parent_death; // no SA_RESTART: read() returns EINTR
    ::sigaction(SIGUSR1, &sa, nullptr);
    ::prctl(PR_SET_PDEATHSIG, SIGUSR1, 0, 0, 0);
    ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    ::prctl(PR_SET_NAME, "vik-host-guard", 0, 0, 0);
    std::set<pid_t> groups;
    std::string pending, cgroup, tag;
    char buf[4096];
    for (;;) {
        if (::getppid() != host) break; // re-parented: the host is gone
        ssize_t n = ::read(read_fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break; // the host is gone (or closed us on a clean exit)
        pending.append(buf, static_cast<size_t>(n));
        size_t pos;
        while ((pos = pending.find('\n')) != std::string::npos) {
            std::string line = pending.substr(0, pos);
            pending.erase(0, pos + 1);
            if (line.size() < 2) continue;
            if (line[0] == 'c') {
                cgroup = line.substr(1);
                continue;
            }
            if (line[0] == 't') {
                tag = line.substr(1);
                continue;
            }
            pid_t pid = static_cast<pid_t>(std::strtol(line.c_str() + 1, nullptr, 10));
            if (pid <= 1) continue;
            if (line[0] == '+')
                groups.insert(pid);
            else if (line[0] == '-')
                groups.erase(pid);
        }
    }
    kill_leftovers(groups, cgroup, tag);
    _exit(0);
}

void send_line(const std::string &line) {
    if (guard_fd < 0) return;
    // One short write is atomic on a pipe; a failure only means the guard is gone.
    [[maybe_unused]] ssize_t ignored = ::write(guard_fd, line.data(), line.size());
}

void send(char op, pid_t pgid) {
    if (guard_fd < 0) return;
    char line[32];
    int len = std::snprintf(line, sizeof line, "%c%d\n", op, static_cast<int>(pgid));
    [[maybe_unused]] ssize_t ignored = ::write(guard_fd, line, static_cast<size_t>(len));
}

} // namespace

void start_orphan_guard() {
    if (guard_fd >= 0) return;
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) return;
    pid_t host = ::getpid();
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
        guard_main(3, host);
    }
    close(fds[0]);
    guard_fd = fds[1];
    guard_pid = pid;
}

pid_t orphan_guard_pid() { return guard_pid; }

void orphan_guard_register(pid_t pgid) { send('+', pgid); }
void orphan_guard_unregister(pid_t pgid) { send('-', pgid); }

void orphan_guard_set_containment(const std::string &cgroup_base, const std::string &tag_prefix) {
    if (!cgroup_base.empty() && cgroup_base.size() < 4000) send_line("c" + cgroup_base + "\n");
    if (!tag_prefix.empty()) send_line("t" + tag_prefix + "\n");
}

} // namespace vik::process
