#pragma once
// Detaching: double fork + setsid, stdio to /dev/null, and a handshake pipe so the starting
// command exits 0 only after the daemon reported that it really started.

#include <string>

namespace vik::daemon {

struct Detached {
    bool is_daemon = false; // true in the daemon process, false in the original one
    int parent_exit = 0;    // for the original process: its exit code
};

// A stale state file (its daemon is gone) is noted for the daemon's log, as vik does:
// "found stale daemon state file on startup; overwriting" with stale_pid and state_file.
// In the original process: forks, waits for the daemon's report (at most timeout_sec) and
// prints it; returns {false, code}. In the daemon: returns {true, 0} with stdio on /dev/null.
Detached detach(const std::string &state_file, int timeout_sec);

// Called by the daemon once it is up (ok) or when start-up failed (with the reason).
void report_started();
void report_failed(const std::string &reason);

} // namespace vik::daemon
