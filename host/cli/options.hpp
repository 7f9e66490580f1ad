#pragma once
// Command-line parsing: `vik-host [GLOBAL...] <COMMAND> [OPTIONS...] [WORKFLOW]`, where global
// options (--plugins DIR) may stand before or after the command.

#include <expected>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace vik::cli {

struct Options {
    std::string command; // run, doctor, status, stop, restart, uninstall, plugins, issue, history, stats
    std::vector<std::filesystem::path> plugin_dirs; // --plugins: added to the built-in directory
    bool no_builtin_plugins = false;                // --no-builtin-plugins: only the --plugins directories
    std::filesystem::path workflow = "workflow.yml";
    bool help = false, version = false;
    std::string log_level = "info";      // --log-level: trace, debug, info, warn, error
    std::optional<std::string> settings; // plugin check --settings JSON
    // doctor
    bool json = false, strict = false;
    // run
    bool detach = false;
    bool dry_run = false; // --dry-run: one pull, report what would happen, change nothing
    std::optional<int> port;
    std::string bind_address;
    // stop / restart / uninstall: how long to wait for the daemon to exit
    int timeout_sec = 30;
    // history
    std::optional<std::string> issue;    // --issue ID
    std::optional<std::string> message;  // issue retry --message TEXT: the next prompt's operator_message
    std::optional<std::string> feedback; // gate reject --feedback TEXT: the next prompt's gate_feedback
    size_t limit = 50;                   // --limit N
    // issue <action> <id> [text]; tracker pull | fetch ID...
    std::vector<std::string> args;
    std::vector<std::string> argv; // the whole command line, for state.json
};

// On error the text is a usage message (exit 2).
std::expected<Options, std::string> parse_options(int argc, char **argv);

std::string usage_text();

} // namespace vik::cli
