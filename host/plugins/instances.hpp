#pragma once
// C++ owners for plugin instances. Each holds the plugin (so its library stays mapped) and the
// host context the plugin was given, and turns status + error buffer into results.

#include "plugins/host_api.hpp"
#include "plugins/registry.hpp"

#include <expected>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace vik::plugins {

struct PluginError {
    vik_status status = VIK_ERROR;
    std::string message;
};

template <class T>
using Result = std::expected<T, PluginError>;

class TrackerInstance {
public:
    static Result<std::unique_ptr<TrackerInstance>> create(std::shared_ptr<LoadedPlugin> plugin, const std::string &settings_json);
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

private:
    HooksInstance() = default;
    std::shared_ptr<LoadedPlugin> plugin_;
    std::unique_ptr<HostContext> ctx_;
    const vik_hooks_v1 *api_ = nullptr;
    void *instance_ = nullptr;
};

// Receives a session's events and its single finish; both may be called on any thread.
struct SessionListener {
    std::function<void(std::string event_json)> on_event;
    std::function<void(int32_t outcome, std::string detail)> on_finish;
};

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
    std::unique_ptr<SessionListener> listener_;
};

struct SessionStart {
    std::string session_id;
    std::string profile_json;
    std::string prompt;
    std::string workdir;
    std::vector<std::string> env;
};

class RuntimeInstance {
public:
    static Result<std::unique_ptr<RuntimeInstance>> create(std::shared_ptr<LoadedPlugin> plugin, const std::string &settings_json);
    ~RuntimeInstance();
    Result<std::unique_ptr<AgentSession>> start(const SessionStart &request, SessionListener listener);
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
