#pragma once
// The services table the host hands each plugin (vik_host_api), one per plugin instance so the
// log lines and settings it serves are that plugin's, and the children it spawns go to the
// process service of the host that created it.

#include <vik/plugin.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace vik::process {
class ProcessService;
}

namespace vik::plugins {

struct Manifest;

struct HostContext {
    std::string plugin_id;
    const Manifest *manifest = nullptr; // the plugin's (an out-of-process plugin's bridge reads its program)
    std::string settings_json = "{}";
    // Where this plugin's spawn() goes: the service bound when the context was made.
    process::ProcessService *processes = nullptr;
    vik_host_api api{};
    vik_host_info_v1 info{}; // the "vik.host-info/1" service of this context (names plugin_id)
};

// The returned context must outlive every use of `context->api` by the plugin. Its process
// service is the one bound by a live ProcessServiceBinding; without one, the plugin's spawn()
// fails with a message naming the plugin (there is no process-wide default service).
std::unique_ptr<HostContext> make_host_context(std::string plugin_id, std::string settings_json = "{}");

// The composition root (cli/cmd_run.cpp) binds the process service it built for as long as it
// creates plugin instances, so that their children are the host's own: the orchestrator's stop
// (kill_all) reaches them, and nobody else's. The service must outlive every context made while
// it was bound. One binding at a time; not thread-safe against concurrent make_host_context.
class ProcessServiceBinding {
  public:
    explicit ProcessServiceBinding(process::ProcessService &service);
    ~ProcessServiceBinding();
    ProcessServiceBinding(const ProcessServiceBinding &) = delete;
    ProcessServiceBinding &operator=(const ProcessServiceBinding &) = delete;

  private:
    process::ProcessService *previous_;
};

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

// An agent an out-of-process runtime started (its plugin reports the pid): recorded while it runs,
// as the host's own spawns are. Thread-safe.
void record_spawned_process(int64_t pid, SpawnedProcess process);
void forget_spawned_process(int64_t pid);

// Collects the pids of the children this thread spawns through the host API while it lives
// (`vik-host plugin serve` reports a served runtime's agents to the host this way).
class SpawnWatch {
  public:
    SpawnWatch();
    ~SpawnWatch();
    SpawnWatch(const SpawnWatch &) = delete;
    SpawnWatch &operator=(const SpawnWatch &) = delete;
    const std::vector<int64_t> &pids() const { return pids_; }

  private:
    friend void note_spawn(int64_t pid);
    std::vector<int64_t> pids_;
    SpawnWatch *previous_;
};

} // namespace vik::plugins
