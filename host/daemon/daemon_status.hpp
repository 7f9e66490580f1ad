#pragma once
// Is a vik-host running this workflow? The state file says who; the instance lock says whether
// that process is still alive (a dead process holds no lock, even as a zombie, and a reused pid
// holds none either).

#include "daemon/state_file.hpp"

#include <filesystem>
#include <optional>

namespace vik::daemon {

enum class Liveness { not_installed, stale, running };

struct DaemonStatus {
    std::filesystem::path state_file, lock_file;
    std::optional<ServiceState> state;
    Liveness liveness = Liveness::not_installed;
    // Set when this user may not read the state or the lock ("permission denied: <path> ...");
    // then `liveness` means nothing and commands must say so rather than "not installed".
    std::string access_error;
};

DaemonStatus inspect(const std::filesystem::path &service_dir);
const char *liveness_name(Liveness l); // running | stale | not installed

} // namespace vik::daemon
