#pragma once
// vik-compatible logging: `logs/vik.log.YYYY-MM-DD` (JSON lines, info and above) and
// `logs/vik-error.log.YYYY-MM-DD` (errors only), daily files in UTC, files older than 7 days
// removed at start; in the foreground also a compact human format on stdout.

#include "util/json_text.hpp"

#include <boost/json/fwd.hpp>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>

#include <spdlog/common.h>

namespace vik::logging {

struct LogOptions {
    std::filesystem::path dir; // <scoped root>/logs
    bool console = true;       // human format on stdout
    int retention_days = 7;
    // The least severe level written (--log-level): info by default; debug lets plugins' debug
    // lines through. The error file keeps errors only.
    spdlog::level::level_enum level = spdlog::level::info;
};

// Installs the default spdlog logger. Safe to call again (replaces the sinks).
void setup(const LogOptions &options);

// Console only (commands that have no workflow yet).
void setup_console_only(spdlog::level::level_enum level = spdlog::level::info);

// "trace", "debug", "info", "warn" or "error"; nullopt for anything else.
std::optional<spdlog::level::level_enum> parse_level(const std::string &name);

// Deletes vik.log.* / vik-error.log.* files older than `days` (by the date in their name).
void remove_old_logs(const std::filesystem::path &dir, int days);

// vik's JSON text (util/json_text.hpp), as the log writer and its callers use it.
using util::json_compact;
using util::json_pretty;

// One line of vik's JSON log file (tracing-subscriber's JSON layer with flatten_event):
// {"timestamp":"<RFC 3339, microseconds, Z>","level":"INFO","message":"...",<fields>,"target":"..."}.
// `message` is split as vik-host writes its log lines: "<text> key=value key=value[: detail]".
// The text before the first ` key=` is the message, each key becomes a JSON key of its own
// (digits -> a number unless the key names an id), and a trailing `: detail` / `; detail` goes
// to `error` (warnings and errors) or `detail` (other levels). A line without `key=` fields
// splits at its first ": " the same way. `level` is one of TRACE DEBUG INFO WARN ERROR.
std::string json_log_line(std::chrono::system_clock::time_point t, const std::string &level, const std::string &message,
                          const std::string &target);

// A warning to log once `setup` has installed the log files (the daemon learns of a stale state
// file before it has logs). Written in the usual "<text> key=value ..." form.
void warn_after_setup(const std::string &message);

} // namespace vik::logging
