#include "daemon/daemon_status.hpp"

#include "daemon/instance_lock.hpp"
#include "daemon/scoped_root.hpp"

#include <cerrno>
#include <sys/stat.h>
#include <unistd.h>

namespace vik::daemon {

DaemonStatus inspect(const std::filesystem::path &service_dir) {
    DaemonStatus s;
    s.state_file = service_dir / "state.json";
    s.lock_file = service_dir / "run.lock";
    struct stat st {};
    if (::stat(s.state_file.c_str(), &st) != 0) {
        // EACCES on the way down: the daemon's files are private to its user (0700/0600).
        if (errno == EACCES || errno == EPERM) s.access_error = permission_denied(s.state_file);
        return s;
    }
    if (::access(s.state_file.c_str(), R_OK) != 0 && (errno == EACCES || errno == EPERM)) {
        s.access_error = permission_denied(s.state_file);
        return s;
    }
    auto state = read_state(s.state_file);
    if (state) s.state = *state;
    auto held = InstanceLock::probe(s.lock_file);
    if (!held) {
        s.access_error = permission_denied(s.lock_file);
        return s;
    }
    s.liveness = *held ? Liveness::running : Liveness::stale;
    return s;
}

const char *liveness_name(Liveness l) {
    switch (l) {
    case Liveness::running:
        return "running";
    case Liveness::stale:
        return "stale";
    case Liveness::not_installed:
        return "not installed";
    }
    return "?";
}

} // namespace vik::daemon
