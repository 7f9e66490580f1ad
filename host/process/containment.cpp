#include "process/containment.hpp"

#include "process/proc_table.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <fstream>
#include <set>
#include <sstream>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

namespace vik::process {
namespace {

std::string read_text(const std::string &path) {
    std::ifstream in(path);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// The cgroup v2 mount point, from /proc/self/mountinfo; empty when there is none.
std::string cgroup2_mount() {
    std::ifstream in("/proc/self/mountinfo");
    std::string line;
    while (std::getline(in, line)) {
        // "id parent major:minor root mount-point options ... - fstype source super-options"
        auto dash = line.find(" - ");
        if (dash == std::string::npos || line.compare(dash + 3, 8, "cgroup2 ") != 0) continue;
        std::istringstream fields(line.substr(0, dash));
        std::string id, parent, dev, root, mount;
        fields >> id >> parent >> dev >> root >> mount;
        return mount;
    }
    return {};
}

// The host's own cgroup v2 path ("0::/path" in /proc/self/cgroup); empty when unknown.
std::string own_cgroup_path() {
    std::ifstream in("/proc/self/cgroup");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind("0::", 0) == 0) return line.substr(3);
    return {};
}

bool write_file(const std::string &path, const char *text) {
    int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) return false;
    ssize_t n = ::write(fd, text, std::strlen(text));
    ::close(fd);
    return n == static_cast<ssize_t>(std::strlen(text));
}

// Every pid in a cgroup and the cgroups below it.
void cgroup_pids(const std::string &dir, std::vector<pid_t> &out) {
    std::istringstream procs(read_text(dir + "/cgroup.procs"));
    long pid;
    while (procs >> pid)
        out.push_back(static_cast<pid_t>(pid));
    if (DIR *d = ::opendir(dir.c_str())) {
        while (auto *e = ::readdir(d))
            if (e->d_type == DT_DIR && e->d_name[0] != '.') cgroup_pids(dir + "/" + e->d_name, out);
        ::closedir(d);
    }
}

// rmdir of a cgroup and every (empty) cgroup below it, deepest first.
bool remove_tree(const std::string &dir) {
    // Most have no cgroup below them: one rmdir, and the directory is read only when that fails.
    if (::rmdir(dir.c_str()) == 0 || errno == ENOENT) return true;
    if (DIR *d = ::opendir(dir.c_str())) {
        std::vector<std::string> subs;
        while (auto *e = ::readdir(d))
            if (e->d_type == DT_DIR && e->d_name[0] != '.') subs.push_back(dir + "/" + e->d_name);
        ::closedir(d);
        for (const auto &s : subs)
            remove_tree(s);
    }
    return ::rmdir(dir.c_str()) == 0 || errno == ENOENT;
}

} // namespace

bool cgroup_kill(const std::string &dir) { return write_file(dir + "/cgroup.kill", "1"); }

Containment::Containment() {
    static std::atomic<unsigned> instances{0};
    instance_ = instances++;
    self_ = ::getpid();
    self_sid_ = ::getsid(0);
    subreaper_ = ::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0;
    auto me = read_proc_entry(self_);
    tag_prefix_ = "VIK_HOST_TAG=" + std::to_string(self_) + "." + std::to_string(me ? me->start_ticks : 0) + ".";

    const char *forced = std::getenv("VIK_HOST_CONTAINMENT");
    std::string force = forced ? forced : "";
    if (force == "proc") {
        reason_ = "VIK_HOST_CONTAINMENT=proc";
        return;
    }
    std::string mount = cgroup2_mount(), own = own_cgroup_path();
    if (mount.empty() || own.empty()) {
        reason_ = "no cgroup v2 hierarchy is mounted";
        return;
    }
    std::string own_dir = mount + (own == "/" ? "" : own);
    if (::access((own_dir + "/cgroup.procs").c_str(), W_OK) != 0) {
        reason_ = "the host's cgroup " + own_dir + " is not writable (not delegated)";
        return;
    }
    // Leftovers of hosts that died without their guard: empty ones go.
    if (DIR *d = ::opendir(own_dir.c_str())) {
        std::vector<std::string> stale;
        while (auto *e = ::readdir(d)) {
            if (std::strncmp(e->d_name, "vik-host-", 9) != 0) continue;
            pid_t pid = static_cast<pid_t>(std::atoi(e->d_name + 9));
            if (pid > 0 && pid != self_ && ::kill(pid, 0) != 0 && errno == ESRCH) stale.push_back(own_dir + "/" + e->d_name);
        }
        ::closedir(d);
        for (const auto &s : stale)
            remove_tree(s);
    }
    std::string base = own_dir + "/vik-host-" + std::to_string(self_) + (instance_ ? "." + std::to_string(instance_) : "");
    if (::mkdir(base.c_str(), 0755) != 0 && errno != EEXIST) {
        reason_ = "cannot create " + base + ": " + std::strerror(errno);
        return;
    }
    if (::access((base + "/cgroup.kill").c_str(), W_OK) != 0) {
        reason_ = "the kernel has no cgroup.kill (Linux 5.14 or later)";
        ::rmdir(base.c_str());
        return;
    }
    base_ = base;
    mode_ = ContainmentMode::cgroup;
    reason_ = "cgroup v2 at " + base_;
}

Containment::~Containment() {
    if (!base_.empty()) remove_tree(base_);
}

std::string Containment::describe() const {
    std::string s = mode_ == ContainmentMode::cgroup ? "process containment: cgroup (" + reason_ + ")"
                                                     : "process containment: proc walk fallback (" + reason_ + ")";
    s += subreaper_ ? "; host is a child subreaper" : "; PR_SET_CHILD_SUBREAPER failed: orphans go to init";
    return s;
}

int Containment::prepare_child_cgroup(uint64_t seq, std::string &path, std::string &error, bool &spare, bool allow_spare) const {
    spare = true;
    while (allow_spare) {
        {
            std::lock_guard lock(spare_mutex_);
            if (spare_cgroups_.empty()) break;
            path = std::move(spare_cgroups_.back());
            spare_cgroups_.pop_back();
        }
        int fd = ::open((path + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC);
        if (fd >= 0) return fd;
        remove_tree(path); // gone or broken: not used again
    }
    spare = false;
    path = base_ + "/s" + std::to_string(seq);
    if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) {
        error = "cannot create cgroup " + path + ": " + std::strerror(errno);
        return -1;
    }
    int fd = ::open((path + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
        error = "cannot open " + path + "/cgroup.procs: " + std::strerror(errno);
        ::rmdir(path.c_str());
    }
    return fd;
}

void Containment::signal_child(pid_t leader, uint64_t seq, const std::string &cgroup, int signal) const {
    if (leader > 1) ::kill(-leader, signal);
    if (!cgroup.empty()) {
        if (signal == SIGKILL && cgroup_kill(cgroup)) return;
        std::vector<pid_t> pids;
        cgroup_pids(cgroup, pids);
        for (pid_t p : pids)
            if (p > 1 && p != self_) ::kill(p, signal);
        return;
    }
    std::string tag = tag_entry(seq);
    // Two rounds: something may fork between the walk and the kill.
    for (int round = 0; round < 2; ++round) {
        auto table = list_processes();
        std::vector<pid_t> roots;
        for (const auto &e : table) {
            if (e.pid == self_ || e.state == 'Z') continue;
            bool adopted = e.ppid == self_ || !subreaper_;
            if (e.sid == leader || e.pgid == leader || (adopted && environ_has(e.pid, tag, false))) roots.push_back(e.pid);
        }
        size_t live = 0;
        for (pid_t p : with_descendants(table, roots)) {
            if (p == self_) continue;
            ::kill(p, signal);
            ++live;
        }
        if (live == 0 || signal != SIGKILL) return;
    }
}

void Containment::signal_strays(const std::vector<pid_t> &tracked, pid_t guard, int signal) const {
    // The host's own children first (/proc/self/task/*/children): the whole process table is
    // read only when one of them may be a stray.
    if (auto own = own_children()) {
        bool maybe_stray = std::any_of(own->begin(), own->end(), [&](pid_t p) {
            return p != guard && std::find(tracked.begin(), tracked.end(), p) == tracked.end();
        });
        if (!maybe_stray) return;
    }
    auto table = list_processes();
    std::vector<pid_t> roots;
    for (const auto &e : table) {
        if (e.ppid != self_ || e.state == 'Z' || e.pid == guard || e.sid == self_sid_) continue;
        if (std::find(tracked.begin(), tracked.end(), e.pid) != tracked.end()) continue;
        roots.push_back(e.pid);
    }
    for (pid_t p : with_descendants(table, roots))
        if (p != self_) ::kill(p, signal);
}

bool Containment::remove_cgroup(const std::string &path) { return remove_tree(path); }

bool Containment::cgroup_idle(const std::string &path) {
    // cgroup.events reads "populated 0\nfrozen 0\n" once no process is left in it or below it.
    char events[128] = {};
    int fd = ::open((path + "/cgroup.events").c_str(), O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? ::read(fd, events, sizeof events - 1) : -1;
    if (fd >= 0) ::close(fd);
    return n > 0 && std::strstr(events, "populated 0") != nullptr && std::strstr(events, "frozen 0") != nullptr;
}

namespace {

// Whether the cgroup has no cgroup below it, live or dying (cgroup.stat: "nr_descendants 0").
bool has_no_descendants(const std::string &path) {
    char stat[256] = {};
    int fd = ::open((path + "/cgroup.stat").c_str(), O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? ::read(fd, stat, sizeof stat - 1) : -1;
    if (fd >= 0) ::close(fd);
    return n > 0 && std::strstr(stat, "nr_descendants 0\n") != nullptr &&
           std::strstr(stat, "nr_dying_descendants 0\n") != nullptr;
}

} // namespace

bool Containment::release_child_cgroup(const std::string &path, bool known_idle) const {
    // Kept only as it was made: no process, not frozen (an agent may write its cgroup.freeze), no
    // cgroup below it (one with controllers enabled would refuse the next child). A join that
    // fails all the same (a session changed its cgroup.type) is retried by the process service
    // in a new cgroup.
    if ((known_idle || cgroup_idle(path)) && has_no_descendants(path)) {
        std::lock_guard lock(spare_mutex_);
        if (spare_cgroups_.size() < kMaxSpareCgroups) {
            spare_cgroups_.push_back(path);
            return true;
        }
    }
    return remove_tree(path);
}

void Containment::reap_adopted(const std::vector<pid_t> &tracked) const {
    if (!subreaper_) return;
    std::vector<pid_t> kids;
    if (auto own = own_children())
        kids = std::move(*own);
    else
        for (const auto &e : list_processes())
            if (e.ppid == self_) kids.push_back(e.pid);
    for (pid_t pid : kids) {
        if (std::find(tracked.begin(), tracked.end(), pid) != tracked.end()) continue;
        auto e = read_proc_entry(pid);
        // A child in the host's own session may be somebody else's (system(), a test harness):
        // its parent code waits for it. Adopted orphans are never in the host's session.
        if (e && e->state == 'Z' && e->sid != self_sid_) {
            int ws;
            ::waitpid(pid, &ws, WNOHANG);
        }
    }
}

} // namespace vik::process
