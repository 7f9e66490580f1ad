#pragma once
// A read of /proc: who is alive, their parent, process group and session, and whether a
// process carries a given environment entry. The containment fallback and the orphan guard find
// escaped descendants with it (see containment.hpp for the rules).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <vector>

namespace vik::process {

struct ProcEntry {
    pid_t pid = 0;
    pid_t ppid = 0;
    pid_t pgid = 0;
    pid_t sid = 0;
    char state = '?';         // R, S, D, Z, ...
    uint64_t start_ticks = 0; // start time after boot, in clock ticks: with pid, a unique identity
};

// One process; nullopt when it is gone (or /proc cannot be read).
std::optional<ProcEntry> read_proc_entry(pid_t pid);
// Every process visible in /proc.
std::vector<ProcEntry> list_processes();
// Whether /proc/<pid>/environ holds `entry` (whole, or as a prefix of an entry when
// `prefix_only`); false when unreadable.
bool environ_has(pid_t pid, std::string_view entry, bool prefix_only);
// The pids whose parent is this process (any of its threads), from /proc/self/task/*/children;
// nullopt when the kernel does not offer that file.
std::optional<std::vector<pid_t>> own_children();
// Every pid in `roots` plus all their descendants by the current parent chain.
std::vector<pid_t> with_descendants(const std::vector<ProcEntry> &table, const std::vector<pid_t> &roots);

} // namespace vik::process
