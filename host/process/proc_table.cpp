#include "process/proc_table.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <map>
#include <set>
#include <unistd.h>

namespace vik::process {
namespace {

// Reads a small /proc file whole; empty when it cannot be opened.
std::string slurp(const char *path, size_t limit) {
    std::string out;
    int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return out;
    char buf[4096];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        out.append(buf, static_cast<size_t>(n));
        if (out.size() >= limit) break;
    }
    ::close(fd);
    return out;
}

bool all_digits(const char *s) {
    if (*s == '\0') return false;
    for (; *s; ++s)
        if (*s < '0' || *s > '9') return false;
    return true;
}

} // namespace

std::optional<ProcEntry> read_proc_entry(pid_t pid) {
    char path[64];
    std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
    std::string stat = slurp(path, 4096);
    // "pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime
    // stime cutime cstime priority nice threads itrealvalue starttime ..."; comm may hold spaces
    // and parentheses, so parse after the last ')'.
    auto close = stat.rfind(')');
    if (close == std::string::npos || close + 2 >= stat.size()) return std::nullopt;
    ProcEntry e;
    e.pid = pid;
    const char *p = stat.c_str() + close + 2;
    e.state = *p;
    char *end = nullptr;
    p += 1;
    long fields[19] = {0}; // ppid .. starttime (fields 4..22)
    for (long &f : fields) {
        f = std::strtol(p, &end, 10);
        if (end == p) return std::nullopt;
        p = end;
    }
    e.ppid = static_cast<pid_t>(fields[0]);
    e.pgid = static_cast<pid_t>(fields[1]);
    e.sid = static_cast<pid_t>(fields[2]);
    e.start_ticks = static_cast<uint64_t>(fields[18]);
    return e;
}

std::vector<ProcEntry> list_processes() {
    std::vector<ProcEntry> out;
    DIR *d = ::opendir("/proc");
    if (d == nullptr) return out;
    while (auto *ent = ::readdir(d)) {
        if (!all_digits(ent->d_name)) continue;
        if (auto e = read_proc_entry(static_cast<pid_t>(std::atoi(ent->d_name)))) out.push_back(*e);
    }
    ::closedir(d);
    return out;
}

bool environ_has(pid_t pid, std::string_view entry, bool prefix_only) {
    char path[64];
    std::snprintf(path, sizeof path, "/proc/%d/environ", static_cast<int>(pid));
    std::string env = slurp(path, 1 << 20);
    size_t start = 0;
    while (start < env.size()) {
        size_t end = env.find('\0', start);
        if (end == std::string::npos) end = env.size();
        auto e = std::string_view(env).substr(start, end - start);
        if (prefix_only ? e.starts_with(entry) : e == entry) return true;
        start = end + 1;
    }
    return false;
}

std::optional<std::vector<pid_t>> own_children() {
    DIR *d = ::opendir("/proc/self/task");
    if (d == nullptr) return std::nullopt;
    std::vector<pid_t> out;
    bool any_file = false;
    while (auto *ent = ::readdir(d)) {
        if (!all_digits(ent->d_name)) continue;
        std::string path = std::string("/proc/self/task/") + ent->d_name + "/children";
        if (::access(path.c_str(), R_OK) != 0) continue;
        any_file = true;
        std::string text = slurp(path.c_str(), 1 << 20);
        const char *p = text.c_str();
        char *end = nullptr;
        for (;;) {
            long v = std::strtol(p, &end, 10);
            if (end == p) break;
            out.push_back(static_cast<pid_t>(v));
            p = end;
        }
    }
    ::closedir(d);
    if (!any_file) return std::nullopt;
    return out;
}

std::vector<pid_t> with_descendants(const std::vector<ProcEntry> &table, const std::vector<pid_t> &roots) {
    std::multimap<pid_t, pid_t> kids;
    for (const auto &e : table)
        kids.emplace(e.ppid, e.pid);
    std::set<pid_t> seen;
    std::vector<pid_t> stack(roots.begin(), roots.end()), out;
    while (!stack.empty()) {
        pid_t p = stack.back();
        stack.pop_back();
        if (p <= 1 || !seen.insert(p).second) continue;
        out.push_back(p);
        auto [b, e] = kids.equal_range(p);
        for (auto it = b; it != e; ++it)
            stack.push_back(it->second);
    }
    return out;
}

} // namespace vik::process
