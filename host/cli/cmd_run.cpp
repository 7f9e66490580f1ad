#include "cli/commands.hpp"
#include "cli/workflow_loading.hpp"
#include "daemon/state_file.hpp"
#include "logging/logging.hpp"
#include "orchestrator/orchestrator.hpp"
#include "process/orphan_guard.hpp"
#include "util/ids_and_time.hpp"

#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <unistd.h>

namespace vik::cli {

namespace fs = std::filesystem;

// `vik-host run [WORKFLOW]` in the foreground: load, check, set up logs and state.json, run the
// loop, clean up. The daemon form (-d) wraps the same path.
int cmd_run(const Options &opts) {
    if (opts.detach) {
        std::cerr << "run failed: `run -d` (daemon mode) is not available in this build yet; run in the foreground "
                     "under a supervisor such as systemd\n";
        return 1;
    }
    // Before any thread exists: the guard that kills our children if we die.
    process::start_orphan_guard();
    auto registry = load_registry(opts);
    auto loaded = load_valid_workflow(opts, registry);
    if (!loaded) {
        std::cerr << loaded.error() << "\n";
        return 1;
    }
    const auto &cfg = loaded->config;
    std::error_code ec;
    for (const auto &dir : {cfg.logs_dir(), cfg.sessions_dir(), cfg.issues_dir(), cfg.service_dir()}) {
        fs::create_directories(dir, ec);
        if (ec) {
            std::cerr << "run failed: cannot create " << dir.string() << ": " << ec.message() << "\n";
            return 1;
        }
    }
    logging::setup({cfg.logs_dir(), true, 7});
    for (const auto &r : registry.records)
        if (!r.loaded) spdlog::warn("plugin refused path={}: {}", r.path.string(), r.error);
    for (const auto &d : loaded->diagnostics.items) spdlog::warn("workflow: {}", d.message);

    std::string dirs;
    for (const auto &d : plugin_dirs(opts)) dirs += (dirs.empty() ? "" : ":") + d.string();
    daemon::ServiceState state;
    state.workflow_path = cfg.workflow_path.string();
    state.cwd = fs::current_path(ec).string();
    state.pid = static_cast<long>(getpid());
    state.port = opts.port.value_or(0);
    state.bind_address = opts.bind_address.empty() ? "127.0.0.1" : opts.bind_address;
    state.started_at = util::now_rfc3339();
    state.log_dir = cfg.logs_dir().string();
    state.sessions_dir = cfg.sessions_dir().string();
    for (const auto &a : opts.argv) state.command += (state.command.empty() ? "" : " ") + a;
    fs::path state_file = cfg.service_dir() / "state.json";
    if (auto w = daemon::write_state(state_file, state); !w) spdlog::warn("{}", w.error());

    int code;
    try {
        auto loop = std::make_unique<orchestrator::Orchestrator>(cfg, registry, orchestrator::OrchestratorOptions{dirs, 4, 15});
        code = loop->run();
        if (loop->has_stuck_work()) {
            // A plugin call is still blocked on a worker thread: joining it could take forever.
            // Every child process is already killed; leave without waiting for the thread.
            spdlog::warn("a plugin call is still blocked; exiting without waiting for it");
            fs::remove(state_file, ec);
            spdlog::shutdown();
            std::fflush(stdout);
            std::_Exit(code);
        }
    } catch (const std::exception &e) {
        spdlog::error("run failed: {}", e.what());
        std::cerr << "run failed: " << e.what() << "\n";
        code = 1;
    }
    fs::remove(state_file, ec);
    std::cout << "sessions: " << cfg.sessions_dir().string() << "\nlogs: " << cfg.logs_dir().string() << "\n";
    return code;
}

} // namespace vik::cli
