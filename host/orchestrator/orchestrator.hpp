#pragma once
// The run loop: intake through the tracker plugin, dispatch of matching stages, workspace
// setup, hooks, agent sessions through runtime plugins, and an orderly stop.
//
// Threading: one Asio io_context thread (the caller of run()) owns every piece of scheduling
// state. Blocking plugin calls (tracker pull, hooks, prompt commands) run on a worker pool and
// post their results back; plugin callbacks from other threads only copy and post.

#include "plugins/registry.hpp"
#include "workflow/config.hpp"

#include <memory>
#include <string>

namespace vik::orchestrator {

struct OrchestratorOptions {
    std::string plugin_dirs; // colon-joined, exported to hooks/agents as VIK_HOST_PLUGINS
    int worker_threads = 4;
    int shutdown_grace_sec = 15; // how long a stop waits for cancelled sessions to end
};

class Orchestrator {
public:
    Orchestrator(const workflow::Config &config, const plugins::Registry &registry, OrchestratorOptions options);
    ~Orchestrator();
    // Creates the plugin instances (tracker, hooks, runtimes). Throws std::runtime_error naming a
    // plugin that refused to start. run() calls it when it was not called before.
    void prepare();
    // Runs until max_iterations drained or a signal stopped it. Returns the exit code
    // (0 on an orderly stop). Throws std::runtime_error for start-up failures (a plugin that
    // cannot be created), naming the plugin.
    int run();
    // True when a blocking plugin call is still in flight after run() returned (a stuck plugin).
    // Destroying the orchestrator would then wait for it; the caller should exit the process.
    bool has_stuck_work() const;

    struct Impl;

private:
    std::unique_ptr<Impl> impl_;
};

} // namespace vik::orchestrator
