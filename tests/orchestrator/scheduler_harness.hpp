#pragma once
// The scheduler in-process, on a ManualClock, with the real plugin loader and the in-tree
// plugins (command tracker, scripted agent, shell hooks): a test drives the loop step by step
// and moves time by hand, so rules such as "a failure retries after 10 s" or "a session quiet for
// 5 minutes is stalled" run in milliseconds, with production-like numbers and no sleeps.
//
// Real time is only spent waiting for real things (a pull command, an agent process) and every
// such wait is bounded (run_until). Time is moved only when no blocking call is in flight
// (advance() waits for that), so that a deadline of a running hook or pull never fires because a
// test jumped ahead.
//
// Logs go to `log` (one string, as the host would print them) for assertions on log lines.

#include "e2e/e2e_support.hpp"

#include "daemon/scoped_root.hpp"
#include "orchestrator/orchestrator.hpp"
#include "orchestrator/scheduler_clock.hpp"
#include "plugins/host_api.hpp"
#include "plugins/registry.hpp"
#include "process/process_service.hpp"
#include "store/sqlite_store.hpp"
#include "store/store.hpp"
#include "workflow/loader.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <sstream>

namespace vik::test {

class SchedulerHarness {
  public:
    // The project (temp dir, workflow, scripts) may be shared by a second harness: a host that
    // starts again where the first one died.
    std::shared_ptr<Project> shared_project = std::make_shared<Project>();
    Project &project = *shared_project;
    std::shared_ptr<orchestrator::ManualClock> clock = std::make_shared<orchestrator::ManualClock>();
    std::vector<orchestrator::Change> changes; // every change the surface published, in order
    size_t session_events = 0;                 // agent events seen (not kept in `changes`)

    SchedulerHarness() { capture_logs(); }
    explicit SchedulerHarness(std::shared_ptr<Project> p) : shared_project(std::move(p)), project(*shared_project) {
        capture_logs();
    }

    // The captured text, read under the sink's own lock: workers (intake, plugin calls) log
    // while a test reads it.
    class CaptureSink : public spdlog::sinks::base_sink<std::mutex> {
      public:
        std::string text() {
            std::lock_guard lock(mutex_);
            return text_;
        }

      protected:
        void sink_it_(const spdlog::details::log_msg &msg) override {
            spdlog::memory_buf_t formatted;
            formatter_->format(msg, formatted);
            text_.append(formatted.data(), formatted.size());
        }
        void flush_() override {}

      private:
        std::string text_;
    };

    void capture_logs() {
        auto sink = std::make_shared<CaptureSink>();
        log_sink_ = sink;
        sink->set_pattern("[%l] %v");
        previous_logger_ = spdlog::default_logger();
        spdlog::set_default_logger(std::make_shared<spdlog::logger>("scheduler-test", sink));
        spdlog::set_level(spdlog::level::debug);
    }

    ~SchedulerHarness() {
        stop();
        orch_.reset();
        binding_.reset();
        spdlog::set_default_logger(previous_logger_);
        spdlog::set_level(spdlog::level::info);
    }

    SchedulerHarness(const SchedulerHarness &) = delete;
    SchedulerHarness &operator=(const SchedulerHarness &) = delete;

    // Loads `workflow_yaml` as the project's workflow.yml through the real loader and plugin
    // registry, builds the scheduler and queues its first intake.
    void start(const std::string &workflow_yaml, store::Store *store = nullptr,
               const std::vector<std::filesystem::path> &extra_plugin_dirs = {}) {
        write_file(project.workflow(), workflow_yaml);
        std::vector<std::filesystem::path> dirs{plugin_dir()};
        dirs.insert(dirs.end(), extra_plugin_dirs.begin(), extra_plugin_dirs.end());
        registry_ = plugins::load_plugins(dirs);
        auto loaded = workflow::load_workflow(project.workflow());
        if (!loaded) FAIL("workflow refused: " << loaded.error().message);
        loaded_.emplace(std::move(*loaded));
        auto root = daemon::prepare_scoped_root(loaded_->config);
        REQUIRE(root.has_value());
        binding_.emplace(processes_);
        orch_ = std::make_unique<orchestrator::Orchestrator>(
            loaded_->config, registry_, processes_,
            orchestrator::OrchestratorOptions{plugin_dir().string(), 2, 15, {}, clock, store});
        orch_->start();
        orch_->surface().subscribe(
            [this](const orchestrator::Change &c) {
                if (c.kind == "session_event")
                    ++session_events;
                else
                    changes.push_back(c);
            },
            true);
    }

    orchestrator::OperatorSurface &surface() { return orch_->surface(); }
    orchestrator::SchedulerView view() { return orch_->surface().view(); }
    std::string log() const { return log_sink_->text(); }
    boost::asio::io_context &io() { return orch_->io(); }

    // Runs the loop until `done` holds; false when `limit` of real time passed first (the
    // failure says what was awaited and shows the log).
    bool run_until(const std::function<bool()> &done, std::chrono::milliseconds limit = std::chrono::seconds(30)) {
        auto deadline = std::chrono::steady_clock::now() + limit;
        while (!done()) {
            if (std::chrono::steady_clock::now() > deadline || io().stopped()) return done();
            io().run_one_for(std::chrono::milliseconds(20));
        }
        return true;
    }

    // Runs what is ready now and waits for the blocking calls in flight (pulls, hooks, prompt
    // commands) to answer: the loop is quiet apart from timers and running agents.
    void settle() {
        REQUIRE(run_until([this] { return !orch_->has_stuck_work(); }));
        io().poll();
    }

    // Moves scheduling time forward, after settle(), and runs what fell due.
    void advance(std::chrono::milliseconds by) {
        settle();
        clock->advance(by);
        io().poll();
    }

    // A pull completes: waits for intake cycle number `n` (1-based) to be processed.
    bool wait_intakes(int64_t n) {
        return run_until([&] { return view().totals.intake_cycles >= n; });
    }

    // The next intake: moves time by idle_sec and waits for the pull to be processed.
    void next_intake(std::chrono::milliseconds idle) {
        int64_t before = view().totals.intake_cycles;
        advance(idle);
        REQUIRE(wait_intakes(before + 1));
        settle();
    }

    // The host dies: nothing is stopped in order (no session ends, no claim is released); its
    // processes go with it, as with SIGKILL (the orphan guard's job in the real host).
    void crash() { orch_.reset(); }

    // An orderly stop (as SIGTERM): sessions cancelled, loop left.
    void stop() {
        if (!orch_ || io().stopped()) return;
        orch_->stop();
        run_until([this] { return io().stopped(); }, std::chrono::seconds(20));
    }

  private:
    std::shared_ptr<CaptureSink> log_sink_;
    std::shared_ptr<spdlog::logger> previous_logger_;
    process::ProcessService processes_;
    std::optional<plugins::ProcessServiceBinding> binding_;
    plugins::Registry registry_;
    std::optional<workflow::Loaded> loaded_;
    std::unique_ptr<orchestrator::Orchestrator> orch_;
};

// A workflow with the scripted agent running `agent_script` (an absolute path), the command
// tracker running `pull_script` (absolute), and the given stages and extra top-level text.
inline std::string harness_workflow(const Project &p, const std::string &stages, const std::string &rest,
                                    const std::string &agent_extra = "") {
    return "agents:\n  bot:\n    runtime: scripted\n    model: none\n" + agent_extra +
           "    settings: {command: " + (p.dir / "agent.sh").string() +
           "}\nissues:\n  pull:\n    command: " + (p.dir / "pull.sh").string() + "\n    idle_sec: 60\nissue:\n" + stages + rest;
}

// A workflow with the scripted agent `bot` running agent.sh (plus `more_agents`, profile entries
// under `agents:`), the file tracker on issues.json, the given stages (under issue.stages) and
// extra top-level text: the set-up of the gate and outcome tests.
inline std::string file_tracker_workflow(const Project &p, const std::string &stages, const std::string &rest = "",
                                         const std::string &more_agents = "") {
    return "agents:\n  bot:\n    runtime: scripted\n    model: none\n    settings: {command: " + (p.dir / "agent.sh").string() +
           "}\n" + more_agents +
           "issues:\n  tracker: {kind: file, path: issues.json}\n  pull: {idle_sec: 60}\nissue:\n  stages:\n" + stages + rest;
}

// The project's SQLite store (state.db), as a host restarted on the same project finds it.
inline std::unique_ptr<store::SqliteStore> open_store(const Project &p) {
    auto s = store::SqliteStore::open(p.dir / "state.db");
    REQUIRE(s.has_value());
    return std::move(*s);
}

// Lines in a file (0 when it does not exist): how many runs an agent that logs one line per run made.
inline size_t lines(const std::filesystem::path &file) {
    std::error_code ec;
    if (!std::filesystem::exists(file, ec)) return 0;
    return count(read_file(file), "\n");
}

// The state of the first issue in the project's issues.json (the file tracker's file, which
// set-state rewrites).
inline std::string first_issue_state(const Project &p) {
    return std::string(boost::json::parse(read_file(p.dir / "issues.json")).at(0).at("state").as_string());
}

// The pull prints issues.json (the test rewrites it between cycles).
inline void pull_from_file(Project &p, const std::string &issues_json) {
    p.issues(issues_json);
    p.agent("pull.sh", "#!/bin/sh\ncat " + shell_quote((p.dir / "issues.json").string()) + "\n");
}

} // namespace vik::test
