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
    std::string database; // vik-host: the durable store (docs/store.md); vik writes none
    std::string command;
};

// Written as vik writes it (serde_json::to_vec_pretty: two-space indent, no final newline).
std::expected<void, std::string> write_state(const std::filesystem::path &file, const ServiceState &state);
std::expected<ServiceState, std::string> read_state(const std::filesystem::path &file);

// `started_at` as vik's `status` prints it (chrono's Display of DateTime<Utc>):
// "2026-11-23 20:58:38.123456789 UTC", the fraction in 3, 6 or 9 digits and left out when zero,
// other offsets converted to UTC. A value that is not RFC 3339 is returned unchanged.
std::string started_at_display(const std::string &rfc3339);

} // namespace vik::daemon
