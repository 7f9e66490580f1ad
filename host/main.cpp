// vik-host: argv -> command -> exit code.
#include "cli/commands.hpp"
#include "cli/options.hpp"
#include "logging/logging.hpp"
#include "plugins/plugin_call.hpp"
#include "process/process_service.hpp"
#include "security/process_hardening.hpp"
#include "security/secret_environment.hpp"

#include <csignal>
#include <iostream>
#include <malloc.h>

#include <spdlog/spdlog.h>

#ifndef VIK_HOST_VERSION
#define VIK_HOST_VERSION "0.0.0"
#endif

int main(int argc, char **argv, char **envp) {
    // First, before any secret is read: same-user processes (agents) may not read our memory or
    // /proc/<pid>/environ, and cmd_run can later erase withheld secrets from the initial block.
    vik::security::remember_initial_environment(envp);
    try {
        vik::security::make_non_dumpable();
    } catch (const std::exception &e) {
        std::cerr << "error: " << e.what() << "\n";
        return 1;
    }
    std::signal(SIGPIPE, SIG_IGN);
    // Each agent session holds a few descriptors: the usual soft limit of 1024 would cap a run
    // at a few hundred sessions (children get the original limit back).
    vik::process::raise_open_file_limit();
    // Large buffers (a 10 MB pull, its parsed document) are mapped and unmapped, not carved from
    // the heap: glibc's adaptive threshold would otherwise keep each thread's freed megabytes
    // resident for the life of the daemon.
    mallopt(M_MMAP_THRESHOLD, 256 * 1024);
    // A plugin that crashes the process is named before it dies (plugins/plugin_call.hpp).
    vik::plugins::install_fatal_signal_report();
    auto parsed = vik::cli::parse_options(argc, argv);
    if (!parsed) {
        std::cerr << "error: " << parsed.error();
        if (parsed.error().empty() || parsed.error().back() != '\n') std::cerr << "\n";
        return 2;
    }
    const auto &o = *parsed;
    if (o.help) {
        std::cout << vik::cli::usage_text();
        return 0;
    }
    if (o.version) {
        std::cout << "vik-host " VIK_HOST_VERSION "\n";
        return 0;
    }
    // Commands that log through the default logger honour --log-level too (run and issue set
    // up their own, with the same level).
    spdlog::set_level(*vik::logging::parse_level(o.log_level));
    try {
        if (o.command == "plugins") return vik::cli::cmd_plugins(o);
        if (o.command == "doctor") return vik::cli::cmd_doctor(o);
        if (o.command == "run") return vik::cli::cmd_run(o);
        if (o.command == "issue") return vik::cli::cmd_issue(o);
        if (o.command == "gate") return vik::cli::cmd_gate(o);
        if (o.command == "status") return vik::cli::cmd_status(o);
        if (o.command == "stop") return vik::cli::cmd_stop(o);
        if (o.command == "restart") return vik::cli::cmd_restart(o);
        if (o.command == "uninstall") return vik::cli::cmd_uninstall(o);
        if (o.command == "history") return vik::cli::cmd_history(o);
        if (o.command == "stats") return vik::cli::cmd_stats(o);
        if (o.command == "tracker") return vik::cli::cmd_tracker(o);
        if (o.command == "plugin") return vik::cli::cmd_plugin(o);
        if (o.command == "refresh") return vik::cli::cmd_refresh(o);
    } catch (const std::exception &e) {
        std::cerr << o.command << " failed: " << e.what() << "\n";
        return 1;
    }
    std::cerr << "error: unknown command '" << o.command << "'\n";
    return 2;
}
