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

const char *kind_name(Kind kind);           // "tracker", "agent-runtime", "hooks"
const char *kind_interface_id(Kind kind);   // "vik.tracker/1", ...

struct SettingSpec {
    std::string type = "any"; // string | integer | boolean | array | table | any
    std::string description;
    bool required = false;
};

struct Manifest {
    std::filesystem::path path;    // the .toml file
    std::filesystem::path library; // resolved path of the shared library
    std::string id;
    std::string version;
    unsigned abi_major = 0;
    std::string description;
    std::vector<Kind> kinds;
    std::vector<std::string> runtimes; // agent-runtime plugins: `agents.X.runtime` names served
    std::vector<std::string> trackers; // tracker plugins: `issues.tracker.kind` names served
    std::map<std::string, SettingSpec> settings; // accepted settings (for doctor)
};

// Reads and validates one manifest; the error names the file and what is wrong.
std::expected<Manifest, std::string> read_manifest(const std::filesystem::path &path);

} // namespace vik::plugins
