#pragma once
// C++ owners for plugin instances. Each holds the plugin (so its library stays mapped) and the
// host context the plugin was given, and turns status + error buffer into results.

#include "plugins/host_api.hpp"
#include "plugins/registry.hpp"

#include <expected>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace vik::plugins {

struct PluginError {
    vik_status status = VIK_ERROR;
    std::string message;
};

template <class T> using Result = std::expected<T, PluginError>;

// A status by its name: "ok", "error", "unsupported", "invalid_argument", "timeout",
// "cancelled", "not_found" (or "status N" for one the ABI does not define).
std::string status_name(vik_status status);

class TrackerInstance {
  public:
    static Result<std::unique_ptr<TrackerInstance>> create(std::shared_ptr<LoadedPlugin> plugin,
                                                           const std::string &settings_json);
    ~TrackerInstance();
    // All blocking: call from a worker thread.
    Result<std::string> pull(uint32_t timeout_ms);
    Result<std::string> fetch(const std::string &ids_json, uint32_t timeout_ms);
    Result<void> set_state(const std::string &id, const std::string &state, uint32_t timeout_ms);
    Result<void> comment(const std::string &id, const std::string &body, uint32_t timeout_ms);
    const std::string &plugin_id() const { return plugin_->manifest.id; }

  private:
    TrackerInstance() = default;
    std::shared_ptr<LoadedPlugin> plugin_;
    std::unique_ptr<HostContext> ctx_;
    const vik_tracker_v1 *api_ = nullptr;
    void *instance_ = nullptr;
};

class HooksInstance {
  public:
    static Result<std::unique_ptr<HooksInstance>> create(std::shared_ptr<LoadedPlugin> plugin, const std::string &settings_json);
    ~HooksInstance();
    Result<void> on_event(const std::string &event, const std::string &context_json, uint32_t timeout_ms);
    const std::string &plugin_id() const { return plugin_->manifest.id; }
    // The manifest's `scripted_only`: calls for points without a script may be skipped.
    bool scripted_only() const { return plugin_->manifest.scripted_only; }

  private:
    HooksInstance() = default;
    std::shared_ptr<LoadedPlugin> plugin_;
    std::unique_ptr<HostContext> ctx_;
    const vik_hooks_v1 *api_ = nullptr;
    void *instance_ = nullptr;
};

// Receives a session's events and its single finish.
//
// Without `dispatch`, on_event and on_finish are called on the plugin's thread (the process I/O
// thread for process runtimes) as events come, with no bound: a consumer that posts them on
// lets a flooding agent grow the host's memory without limit.
//
// With `dispatch` (recommended: the orchestrator's loop, `[&io](auto f) { asio::post(io, f); }`),
// the host itself runs on_event and on_finish through it, in batches (EventFlowLimits), with
// every event delivered in order and on_finish last; on_event and on_finish must then handle
// the event directly (not post it again). At most EventFlowLimits::max_events / max_bytes wait
// per session (plus what one pipe read holds); past that the agent's pipes are not read until
// the loop caught up, so the agent blocks in write. Nothing is dropped, and because every batch
// is a separate handler, timers on the loop (timeout, stall) still fire during a flood.
struct SessionListener {
    std::function<void(std::string_view event_json)> on_event; // the text is valid during the call only
    std::function<void(int32_t outcome, std::string detail)> on_finish;
    std::function<void(std::function<void()>)> dispatch;
    // With dispatch: after each batch of on_event calls, before on_finish (a recorder flushes
    // its buffered lines here: one write per batch, not per event).
    std::function<void()> on_batch_end;
};

struct EventFlowLimits {
    size_t max_events = 4096;    // queued per session before its pipes stop being read
    size_t max_bytes = 8u << 20; // same, in bytes of event JSON
    size_t batch_events = 1024;  // handled per dispatched handler before yielding (well under a ms)
    size_t batch_bytes = 1u << 20;
};

class EventPump; // internal: the per-session queue between the plugin's sink and dispatch

class RuntimeInstance;

// One running agent session. Destroying it releases the plugin's session (only do that after
// on_finish was delivered, or after cancel + finish).
class AgentSession {
  public:
    ~AgentSession();
    void cancel();

  private:
    friend class RuntimeInstance;
    AgentSession() = default;
    RuntimeInstance *runtime_ = nullptr;
    void *session_ = nullptr;
    std::shared_ptr<EventPump> pump_;
};

struct SessionStart {
    std::string session_id;
    std::string profile_json;
    std::string prompt;
    std::string workdir;
    std::vector<std::string> env;
    std::string resume_conversation; // the agent's own conversation id to continue; empty: a fresh one
};

class RuntimeInstance {
  public:
    static Result<std::unique_ptr<RuntimeInstance>> create(std::shared_ptr<LoadedPlugin> plugin,
                                                           const std::string &settings_json);
    ~RuntimeInstance();
    Result<std::unique_ptr<AgentSession>> start(const SessionStart &request, SessionListener listener,
                                                EventFlowLimits limits = {});
    const std::string &plugin_id() const { return plugin_->manifest.id; }

  private:
    friend class AgentSession;
    RuntimeInstance() = default;
    std::shared_ptr<LoadedPlugin> plugin_;
    std::unique_ptr<HostContext> ctx_;
    const vik_agent_runtime_v1 *api_ = nullptr;
    void *instance_ = nullptr;
};

} // namespace vik::plugins
