#pragma once
// vik-compatible logging: `logs/vik.log.YYYY-MM-DD` (JSON lines, info and above) and
// `logs/vik-error.log.YYYY-MM-DD` (errors only), daily files in UTC, files older than 7 days
// removed at start; in the foreground also a compact human format on stdout.

#include <filesystem>

namespace vik::logging {

struct LogOptions {
    std::filesystem::path dir;  // <scoped root>/logs
    bool console = true;        // human format on stdout
    int retention_days = 7;
};

// Installs the default spdlog logger. Safe to call again (replaces the sinks).
void setup(const LogOptions &options);

// Console only (commands that have no workflow yet).
void setup_console_only();

// Deletes vik.log.* / vik-error.log.* files older than `days` (by the date in their name).
void remove_old_logs(const std::filesystem::path &dir, int days);

} // namespace vik::logging
