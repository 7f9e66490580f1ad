#pragma once
// The services table the host hands each plugin (vik_host_api), one per plugin instance so the
// log lines and settings it serves are that plugin's.

#include <vik/plugin.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

namespace vik::plugins {

struct HostContext {
    std::string plugin_id;
    std::string settings_json = "{}";
    vik_host_api api{};
};

// The returned context must outlive every use of `context->api` by the plugin.
std::unique_ptr<HostContext> make_host_context(std::string plugin_id, std::string settings_json = "{}");

// A running process that a plugin started with VIK_ISSUE_ID in its environment: an agent
// (started by an agent-runtime plugin) or a hook (by a hooks plugin).
struct SpawnedProcess {
    std::string plugin_id;
    std::string issue_id; // VIK_ISSUE_ID
    std::string stage;    // VIK_ISSUE_STAGE, empty for hooks outside a stage
};

// The process with this pid, while it runs, if a plugin started it with VIK_ISSUE_ID. Every
// child is a session leader, so a control-channel peer's session id (Peer::sid) finds the agent
// or hook the request comes from. Thread-safe.
std::optional<SpawnedProcess> spawned_process(int64_t pid);

} // namespace vik::plugins
