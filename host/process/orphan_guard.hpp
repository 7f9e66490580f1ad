#pragma once
// The orphan guard: a tiny helper process forked at start-up, before any thread exists. The host
// tells it each child process group it creates and each one that ended, through a pipe. If the
// host dies for any reason (SIGKILL included) the pipe closes, and the guard kills every group
// still registered. PR_SET_PDEATHSIG alone would only reach direct children, not what a hook
// shell starts in the background.

#include <sys/types.h>

namespace vik::process {

// Starts the guard once; later calls do nothing. Call from main() before threads start.
void start_orphan_guard();
void orphan_guard_register(pid_t pgid);
void orphan_guard_unregister(pid_t pgid);

} // namespace vik::process
