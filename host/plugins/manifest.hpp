#pragma once
// A plugin's TOML manifest, read before its library is loaded so `vik-host plugins` and doctor
// can describe plugins without guessing.

#include <expected>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace vik::plugins {

enum class Kind { tracker, agent_runtime, hooks };

const char *kind_name(Kind kind);         // "tracker", "agent-runtime", "hooks"
const char *kind_interface_id(Kind kind); // "vik.tracker/1", ...

struct SettingSpec {
    std::string type = "any"; // string | integer | boolean | array | table | any
    std::string description;
    bool required = false;
};

// Where a tracker plugin's settings come from (manifest key `settings_from`).
enum class SettingsSource {
    tracker_section, // "tracker" (default): the workflow's issues.tracker keys other than `kind`
    pull_command,    // "pull_command": vik's issues.pull.command, rendered as shell once, handed to
                     // the plugin as settings `command` and `cwd` (the workflow's directory)
};

// The settings the host writes for a tracker with settings_from = "pull_command".
inline constexpr const char *kPullCommandSetting = "command"; // issues.pull.command, rendered as shell
inline constexpr const char *kPullCwdSetting = "cwd";         // the workflow's directory

// Where a plugin's code runs (manifest key `isolation`).
enum class Isolation {
    in_process, // the library is loaded into the host (the default)
    process,    // a child process serves it over the stdio protocol (plugins/process_bridge.hpp): a
                // crash or a hang costs that child, not the host
};

struct Manifest {
    std::filesystem::path path;       // the .toml file
    std::filesystem::path library;    // resolved path of the shared library (empty for a program)
    std::filesystem::path executable; // an out-of-process plugin's program (`executable`), else empty
    Isolation isolation = Isolation::in_process;
    std::string id;
    std::string version;
    unsigned abi_major = 0;
    std::string description;
    std::vector<Kind> kinds;
    std::vector<std::string> runtimes;           // agent-runtime plugins: `agents.X.runtime` names served
    std::vector<std::string> trackers;           // tracker plugins: `issues.tracker.kind` names served
    std::map<std::string, SettingSpec> settings; // accepted settings (for doctor)

    // Facts the host acts on instead of comparing plugin names (docs/plugin-sdk.md, "Facts").
    // Variables holding this plugin's secrets (`secret_env`; tracker and hooks plugins): withheld
    // from the host's environment once plugins exist, and from agents unless a profile passes them.
    std::vector<std::string> secret_env;
    SettingsSource settings_from = SettingsSource::tracker_section; // tracker plugins only
    // Agent-runtime plugins: the plugin continues a conversation when a session request carries
    // `resume_conversation` (ABI 1.1); profiles with `resume: true` rely on it.
    bool resumes_conversations = false;
    // Hooks plugins: the plugin acts only on lifecycle points the workflow gives a script
    // (context.script not null), so the host need not call it, nor build the call's context,
    // at points without one.
    bool scripted_only = false;
};

// Reads and validates one manifest; the error names the file (with line:column where the TOML
// value is), the key and what is wrong. Types are checked strictly and unknown keys are refused:
// a misspelt fact (`secrets_env`) must not be silently ignored.
std::expected<Manifest, std::string> read_manifest(const std::filesystem::path &path);

} // namespace vik::plugins
