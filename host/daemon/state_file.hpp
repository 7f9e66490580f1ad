#pragma once
// service/state.json (vik-compat §1): who is running this workflow, written atomically
// (temp file, fsync, rename) so a reader never sees half a file.

#include <expected>
#include <filesystem>
#include <optional>
#include <string>

namespace vik::daemon {

struct ServiceState {
    std::string workflow_path;
    std::string cwd;
    long pid = 0;
    int port = 0; // 0 = none
    std::string bind_address;
    std::string started_at; // RFC 3339 UTC
    std::string log_dir;
    std::string sessions_dir;
    std::string command;
};

std::expected<void, std::string> write_state(const std::filesystem::path &file, const ServiceState &state);
std::expected<ServiceState, std::string> read_state(const std::filesystem::path &file);

} // namespace vik::daemon
