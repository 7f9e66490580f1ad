// vik's daemon commands (vik-compat §1): status, stop, restart, uninstall.
#include "cli/commands.hpp"
#include "cli/live_status.hpp"
#include "cli/workflow_loading.hpp"
#include "daemon/daemon_status.hpp"
#include "daemon/instance_lock.hpp"
#include "daemon/scoped_root.hpp"
#include "store/open_store.hpp"
#include "workflow/loader.hpp"

#include <fmt/format.h>

#include <chrono>
#include <csignal>
#include <iostream>
#include <thread>

namespace vik::cli {

namespace fs = std::filesystem;

namespace {

std::optional<workflow::Config> load_config(const Options &opts, const char *cmd) {
    auto loaded = load_workflow_file(opts.workflow);
    if (!loaded) {
        std::cerr << cmd << " failed: " << loaded.error().message << "\n";
        return std::nullopt;
    }
    // Another workflow's root (a key collision) or one this user may not read: say so, rather
    // than report or stop the other workflow's daemon, or call a private root "not installed".
    if (auto refused = daemon::check_scoped_root(loaded->config)) {
        std::cerr << cmd << " failed: " << *refused << "\n";
        return std::nullopt;
    }
    return loaded->config;
}

// inspect() that refuses when this user may not read the daemon's files.
std::optional<daemon::DaemonStatus> inspect(const workflow::Config &cfg, const char *cmd) {
    auto s = daemon::inspect(cfg.service_dir());
    if (!s.access_error.empty()) {
        std::cerr << cmd << " failed: " << s.access_error << "\n";
        return std::nullopt;
    }
    return s;
}

// Stops a running daemon: SIGTERM, then wait for it to let go of its lock.
// Returns 0, or 1 with the reason printed.
int stop_running(const daemon::DaemonStatus &s, int grace_sec, const char *cmd) {
    long pid = s.state ? s.state->pid : 0;
    if (pid <= 0) {
        std::cerr << cmd << " failed: " << s.state_file.string()
                  << " names no pid, yet the workflow is locked by a running vik-host\n";
        return 1;
    }
    ::kill(static_cast<pid_t>(pid), SIGTERM);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(grace_sec);
    while (daemon::InstanceLock::held_by_other(s.lock_file)) {
        if (std::chrono::steady_clock::now() > deadline) {
            // vik's text (daemon/lifecycle.rs).
            std::cerr << cmd << " failed: daemon pid " << pid << " did not exit within " << grace_sec * 1000L << " ms\n";
            return 1;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    std::error_code ec;
    fs::remove(s.state_file, ec);
    return 0;
}

} // namespace

namespace {

// Several hosts on one workflow (a postgres store): every host the database knows, with its
// heartbeat, and who holds which lease (docs/scale-out.md).
void print_cluster(const workflow::Config &cfg) {
    if (cfg.store.kind != "postgres") return;
    auto view = store::read_cluster(store_choice(cfg));
    if (!view) {
        std::cout << "cluster: unavailable: " << view.error().message << "\n";
        return;
    }
    std::cout << "cluster: workflow_id=" << cfg.store.workflow_id << " hosts=" << view->hosts.size()
              << " leases=" << view->leases.size() << "\n";
    for (const auto &h : view->hosts)
        std::cout << fmt::format(
            "host: {} address={} pid={} running={} heartbeat={:.1f}s ago{}\n", h.host_id, h.address, h.pid, h.running,
            h.heartbeat_age, h.heartbeat_age > static_cast<double>(cfg.store.lease_ttl_sec) ? " (stale: its leases lapse)" : "");
    for (const auto &l : view->leases)
        std::cout << fmt::format("lease: issue={} stage={} host={} generation={} {}\n", l.issue_id, l.stage, l.host_id,
                                 l.generation,
                                 l.expires_in > 0 ? fmt::format("expires_in={:.1f}s", l.expires_in)
                                                  : fmt::format("expired {:.1f}s ago (a take-over is due)", -l.expires_in));
}

} // namespace

int cmd_status(const Options &opts) {
    auto cfg = load_config(opts, "status");
    if (!cfg) return 1;
    auto found = inspect(*cfg, "status");
    if (!found) return 1;
    const auto &s = *found;
    std::cout << "status: " << daemon::liveness_name(s.liveness) << "\n";
    std::cout << "state_file: " << s.state_file.string() << "\n";
    if (s.state) {
        const auto &st = *s.state;
        std::cout << "pid: " << st.pid << "\n"
                  << "bind_address: " << st.bind_address << ":" << st.port << "\n"
                  << "started_at: " << daemon::started_at_display(st.started_at) << "\n"
                  << "log_dir: " << st.log_dir << "\n"
                  << "sessions_dir: " << st.sessions_dir << "\n"
                  << "workflow_path: " << st.workflow_path << "\n"
                  << "command: " << st.command << "\n";
        if (!st.database.empty()) std::cout << "database: " << st.database << "\n";
        // vik's lines above stay as they are; what the host is doing follows them.
        if (s.liveness == daemon::Liveness::running) print_live_status(*cfg, st);
    }
    print_cluster(*cfg);
    return 0;
}

int cmd_stop(const Options &opts) {
    auto cfg = load_config(opts, "stop");
    if (!cfg) return 1;
    auto found = inspect(*cfg, "stop");
    if (!found) return 1;
    const auto &s = *found;
    if (s.liveness == daemon::Liveness::not_installed) {
        std::cerr << "stop failed: no daemon state file for " << s.state_file.string() << "\n";
        return 1;
    }
    if (s.liveness == daemon::Liveness::running && stop_running(s, opts.timeout_sec, "stop") != 0) return 1;
    std::error_code ec;
    fs::remove(s.state_file, ec);
    std::cout << "daemon stopped\n";
    return 0;
}

int cmd_restart(const Options &opts) {
    auto cfg = load_config(opts, "restart");
    if (!cfg) return 1;
    auto found = inspect(*cfg, "restart");
    if (!found) return 1;
    const auto &s = *found;
    if (s.liveness == daemon::Liveness::running) {
        if (stop_running(s, opts.timeout_sec, "restart") != 0) return 1;
        std::cout << "daemon stopped; starting a fresh one\n";
    } else {
        std::error_code ec;
        fs::remove(s.state_file, ec);
        std::cout << "no daemon was running; starting one\n";
    }
    Options run = opts;
    run.command = "run";
    run.detach = true;
    return cmd_run(run);
}

int cmd_uninstall(const Options &opts) {
    auto cfg = load_config(opts, "uninstall");
    if (!cfg) return 1;
    auto found = inspect(*cfg, "uninstall");
    if (!found) return 1;
    const auto &s = *found;
    if (s.liveness == daemon::Liveness::running && stop_running(s, opts.timeout_sec, "uninstall") != 0) return 1;
    std::error_code ec;
    fs::remove(s.state_file, ec);
    std::cout << "daemon uninstalled (state file removed if present)\n";
    return 0;
}

} // namespace vik::cli
