#pragma once
// The run loop: intake through the tracker plugin, dispatch of matching stages, workspace
// setup, hooks, agent sessions through runtime plugins, and an orderly stop. The scheduler
// (orchestrator.cpp) owns the claims and the slots and hands each job to a part:
// intake.hpp, stage_launcher.hpp, session_supervisor.hpp, blocking_runner.hpp (docs/architecture.md).
//
// Threading: one Asio io_context thread (the caller of run()) owns every piece of scheduling
// state. Blocking plugin calls (tracker pull, hooks, prompt commands) run on a worker pool and
// post their results back; plugin callbacks from other threads only copy and post.

#include "orchestrator/operator_surface.hpp"
#include "orchestrator/scheduler_clock.hpp"
#include "plugins/registry.hpp"
#include "process/process_service.hpp"
#include "process/run_command.hpp"
#include "workflow/config.hpp"

#include <chrono>
#include <functional>
#include <memory>
#include <string>

namespace boost::asio {
class io_context;
}

namespace vik::store {
class Store;
}

namespace vik::orchestrator {

struct OrchestratorOptions {
    std::string plugin_dirs; // colon-joined, exported to hooks/agents as VIK_HOST_PLUGINS
    int worker_threads = 4;
    int shutdown_grace_sec = 15; // how long a stop waits for cancelled sessions to end
    // Runs prompt `exec(...)` commands; empty: run_command on the orchestrator's process service.
    process::CommandRunner commands;
    // Scheduling time: observation times (the stale-observation rule, intake.hpp) and every
    // scheduling timer (scheduler_clock.hpp). Null: the system clock. Tests pass a ManualClock.
    std::shared_ptr<SchedulerClock> clock;
    // The durable store (store/store.hpp): claims and runs are mirrored into it and a start
    // resumes from it (durable_state.hpp). Null: nothing persists. It must outlive the
    // orchestrator.
    store::Store *store = nullptr;
    // `run --strict`: a runtime plugin's event outside the vocabulary fails its session.
    bool strict_events = false;
};

class Orchestrator {
  public:
    // `processes` is the service that starts this host's children (the one the plugins' host api
    // uses, bound by the composition root); a stop kills its children. It must outlive the
    // orchestrator.
    Orchestrator(const workflow::Config &config, const plugins::Registry &registry, process::ProcessService &processes,
                 OrchestratorOptions options);
    ~Orchestrator();
    // Creates the plugin instances (tracker, hooks, runtimes). Throws std::runtime_error naming a
    // plugin that refused to start. run() calls it when it was not called before.
    void prepare();
    // Runs until max_iterations drained or a signal stopped it. Returns the exit code
    // (0 on an orderly stop). Throws std::runtime_error for start-up failures (a plugin that
    // cannot be created), naming the plugin.
    int run();
    // What run() does before it runs the loop: prepare() and queue the first intake. A test
    // then drives io() itself, step by step (tests/orchestrator/scheduler_harness.hpp).
    void start();
    // Asks for an orderly stop as a first signal would (cancel sessions, drain, leave the loop).
    void stop();
    // The exit code run() would return once the loop ended.
    int exit_code() const;
    // True when a blocking plugin call is still in flight after run() returned (a stuck plugin).
    // Destroying the orchestrator would then wait for it; the caller should exit the process.
    bool has_stuck_work() const;

    // The loop everything scheduling runs on (valid from construction); operator surfaces such
    // as the HTTP server serve their clients on it.
    boost::asio::io_context &io();
    // What operator surfaces may see and ask (operator_surface.hpp). Valid after prepare().
    OperatorSurface &surface();

    struct Impl;

  private:
    std::unique_ptr<Impl> impl_;
};

} // namespace vik::orchestrator
