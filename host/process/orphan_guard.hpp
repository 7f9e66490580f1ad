#pragma once
// The orphan guard: a tiny helper process forked at start-up, before any thread exists. The host
// tells it, through a pipe, its containment facts (the base cgroup, the environment tag of its
// children) and, in proc mode, each child process group it creates and each one that ended (in
// cgroup mode every child is in the base cgroup's tree, which the guard kills whole). If the host dies
// for any reason (SIGKILL included) the pipe closes and the guard kills what is left: every
// registered group, the whole base cgroup (cgroup.kill), and every process carrying the host's
// tag or in a registered session, with their descendants.
//
// The guard runs in a session of its own, so `kill -KILL -<host pgid>` (or a terminal's signals)
// cannot take it down with the host; it is not dumpable, so the host's children cannot ptrace it.
// Besides pipe EOF it asks for PR_SET_PDEATHSIG, in case a stray copy of the pipe's write end
// survived the host.

#include <string>
#include <sys/types.h>

namespace vik::process {

// Starts the guard once; later calls do nothing. Call from main() before threads start.
void start_orphan_guard();
// The guard's pid, or -1 when none runs.
pid_t orphan_guard_pid();
void orphan_guard_register(pid_t pgid);
void orphan_guard_unregister(pid_t pgid);
// Containment facts (see containment.hpp); either may be empty.
void orphan_guard_set_containment(const std::string &cgroup_base, const std::string &tag_prefix);

} // namespace vik::process
