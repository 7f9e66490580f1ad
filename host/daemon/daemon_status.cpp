#include "daemon/daemon_status.hpp"

#include "daemon/instance_lock.hpp"

namespace vik::daemon {

DaemonStatus inspect(const std::filesystem::path &service_dir) {
    DaemonStatus s;
    s.state_file = service_dir / "state.json";
    s.lock_file = service_dir / "run.lock";
    std::error_code ec;
    if (!std::filesystem::exists(s.state_file, ec)) return s;
    auto st = read_state(s.state_file);
    if (st) s.state = *st;
    s.liveness = InstanceLock::held_by_other(s.lock_file) ? Liveness::running : Liveness::stale;
    return s;
}

const char *liveness_name(Liveness l) {
    switch (l) {
    case Liveness::running: return "running";
    case Liveness::stale: return "stale";
    case Liveness::not_installed: return "not installed";
    }
    return "?";
}

} // namespace vik::daemon
