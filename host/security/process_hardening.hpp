#pragma once
// Keeps other processes of the same user (agents run as the host's user) out of the host's
// memory: no ptrace, no /proc/<pid>/mem or /proc/<pid>/environ, no core dump.

namespace vik::security {

// Clears the "dumpable" flag (prctl PR_SET_DUMPABLE 0). The kernel then refuses ptrace and the
// /proc files that expose memory to every process without CAP_SYS_PTRACE, same user included,
// and writes no core dump. Children forked later inherit the flag, but execve resets it: agents,
// hooks and commands the host starts are ordinary, dumpable processes. Call first in main().
// Throws std::runtime_error when the kernel refuses (then the secrets would be readable).
void make_non_dumpable();

// Whether the calling process is dumpable (prctl PR_GET_DUMPABLE).
bool is_dumpable();

} // namespace vik::security
