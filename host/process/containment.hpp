#pragma once
// Containment: how the host finds and kills everything a child started, including descendants
// that left the child's process group or session (setsid, setpgid, double fork).
//
// Two layers, always both where available:
//  - The host is a child subreaper (PR_SET_CHILD_SUBREAPER): an orphaned descendant re-parents
//    to the host, not to init, so it stays visible (ppid == host) and its zombie is reaped by
//    the process service.
//  - cgroup mode: when the host's own cgroup v2 directory is writable and the kernel has
//    `cgroup.kill`, the host makes `<own cgroup>/vik-host-<pid>/` and puts every child in a cgroup
//    of its own below it before exec. Killing a child writes `cgroup.kill`: the kernel kills
//    every process in it, whatever session or group it made. Without privileges nothing leaves
//    a cgroup.
//  - proc mode (the fallback): every child gets `VIK_HOST_TAG=<host pid>.<host start>.<i>-<n>` in
//    its environment (i: the process service instance, n: the child). Killing child n kills, from a walk of /proc: its session
//    and group members, every host-adopted orphan carrying tag n, and all descendants of those by parent chain.
//
// `VIK_HOST_CONTAINMENT=cgroup|proc` forces a mode (cgroup falls back to proc, with the
// reason, when it cannot work); unset means cgroup when possible.

#include <cstdint>
#include <mutex>
#include <string>
#include <sys/types.h>
#include <vector>

namespace vik::process {

enum class ContainmentMode { cgroup, proc };

class Containment {
  public:
    Containment();  // makes the host a subreaper and probes cgroup v2
    ~Containment(); // removes the host's cgroups that are empty by now
    Containment(const Containment &) = delete;
    Containment &operator=(const Containment &) = delete;

    ContainmentMode mode() const { return mode_; }
    bool subreaper() const { return subreaper_; }
    // One line for the log: the mode in force and why.
    std::string describe() const;
    // "VIK_HOST_TAG=<pid>.<start>." (every child's tag starts with it) and one child's entry.
    const std::string &tag_prefix() const { return tag_prefix_; }
    std::string tag_entry(uint64_t seq) const { return tag_prefix_ + std::to_string(instance_) + "-" + std::to_string(seq); }
    // The host's base cgroup directory; empty in proc mode.
    const std::string &cgroup_base() const { return base_; }

    // cgroup mode: gives the child a cgroup of its own (a spare one, or a new s<seq>) and opens
    // its cgroup.procs for writing (the child writes "0" there between fork and exec). Returns
    // the fd, or -1 with `error` set. `spare` says whether it was a spare (made for an earlier
    // child); `allow_spare` false asks for a new one.
    int prepare_child_cgroup(uint64_t seq, std::string &path, std::string &error, bool &spare, bool allow_spare = true) const;
    // Whether no process is left in the cgroup (or below it) and it is not frozen
    // (cgroup.events: "populated 0", "frozen 0").
    static bool cgroup_idle(const std::string &path);
    // A child's cgroup after its session ended: kept as a spare for a later child when it is idle
    // (`known_idle`: the caller read that already, and nothing can have entered it since), else
    // removed. False while processes are still in it (remove it later with remove_cgroup). Making
    // and removing a cgroup costs the kernel far more than reading whether one is empty; a spare
    // holds nothing of the last session.
    bool release_child_cgroup(const std::string &path, bool known_idle = false) const;
    // Sends `signal` to every process of the child's session: cgroup.kill (SIGKILL) or each
    // member of the cgroup in cgroup mode; session, group, tagged orphans and their descendants
    // in proc mode. `leader` is the child's pid (its pgid and sid), `seq` its tag number.
    void signal_child(pid_t leader, uint64_t seq, const std::string &cgroup, int signal) const;
    // Sends `signal` to host-adopted orphans that belong to no live child (shutdown only).
    void signal_strays(const std::vector<pid_t> &tracked, pid_t guard, int signal) const;
    // rmdir of a child's cgroup; false while processes are still in it.
    static bool remove_cgroup(const std::string &path);
    // Reaps zombies the host adopted as subreaper (children it did not start and that are not in
    // its own session, so nobody else in the process waits for them).
    void reap_adopted(const std::vector<pid_t> &tracked) const;

  private:
    ContainmentMode mode_ = ContainmentMode::proc;
    bool subreaper_ = false;
    pid_t self_ = 0, self_sid_ = 0;
    unsigned instance_ = 0; // more than one process service per process happens in tests
    std::string base_, reason_, tag_prefix_;
    static constexpr size_t kMaxSpareCgroups = 256;
    mutable std::mutex spare_mutex_;
    mutable std::vector<std::string> spare_cgroups_; // empty child cgroups under base_, ready for reuse
};

// Writes "1" to <dir>/cgroup.kill; false when that fails.
bool cgroup_kill(const std::string &dir);

} // namespace vik::process
