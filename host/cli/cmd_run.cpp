#include "cli/commands.hpp"
#include "cli/workflow_loading.hpp"
#include "daemon/daemon_status.hpp"
#include "daemon/daemonize.hpp"
#include "daemon/instance_lock.hpp"
#include "daemon/scoped_root.hpp"
#include "daemon/state_file.hpp"
#include "http/operator_http.hpp"
#include "http/server_config.hpp"
#include "logging/logging.hpp"
#include "notify/webhook_notifier.hpp"
#include "orchestrator/dry_run.hpp"
#include "orchestrator/issue.hpp"
#include "orchestrator/orchestrator.hpp"
#include "orchestrator/template_context.hpp"
#include "orchestrator/tracker_factory.hpp"
#include "plugins/host_api.hpp"
#include "plugins/plugin_call.hpp"
#include "process/orphan_guard.hpp"
#include "process/process_service.hpp"
#include "security/secret_environment.hpp"
#include "store/open_store.hpp"
#include "util/ids_and_time.hpp"
#include "workspace/layout.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sys/resource.h>
#include <thread>
#include <unistd.h>

namespace vik::cli {

namespace fs = std::filesystem;

namespace {

std::string already_running(const fs::path &service_dir) {
    // The winner of a simultaneous start may not have written its state file yet.
    for (int i = 0; i < 20; ++i) {
        auto s = daemon::inspect(service_dir);
        if (s.state && s.state->pid > 0)
            return "daemon already running (pid " + std::to_string(s.state->pid) + ", state file " + s.state_file.string() + ")";
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return "daemon already running (state file " + (service_dir / "state.json").string() + " is locked by another vik-host)";
}

// `run --dry-run`: one pull and the report of what would happen (orchestrator/dry_run.hpp).
// Reads the store's claims when there is a store; creates nothing.
int dry_run(const workflow::Config &cfg, const plugins::Registry &registry) {
    process::ProcessService processes; // the tracker's pull command runs here
    plugins::ProcessServiceBinding bind_processes(processes);
    auto tracker = orchestrator::create_tracker(cfg, registry);
    auto pulled = tracker->pull(orchestrator::seconds_to_ms(cfg.pull_timeout_sec));
    if (!pulled) {
        std::cerr << "dry run failed: the pull failed: " << pulled.error().message << "\n";
        return 1;
    }
    auto parsed = orchestrator::parse_issues(*pulled);
    if (!parsed) {
        std::cerr << "dry run failed: " << parsed.error() << "\n";
        return 1;
    }
    std::vector<store::ClaimRecord> claims;
    if (auto where = store_choice(cfg); store::store_exists(where)) {
        auto s = store::open_store(where);
        if (!s) {
            std::cerr << "dry run failed: " << s.error().message << "\n";
            return 1;
        }
        auto c = (*s)->claims();
        if (!c) {
            std::cerr << "dry run failed: " << c.error().message << "\n";
            return 1;
        }
        claims = std::move(*c);
    }
    workspace::Layout layout(cfg.issues_dir(), cfg.sessions_dir());
    std::cout << orchestrator::dry_run_report({cfg, layout, std::move(parsed->issues), std::move(claims), parsed->warnings});
    return 0;
}

// The peak resident memory of the host's own address space (VmHWM), in KiB. Not ru_maxrss: that
// is also at least what the process that started the host had resident when it forked (the kernel
// carries the pre-exec copy's peak over exec), so a large parent (a Python harness, a shell with
// much loaded) would show as the host's peak.
long peak_rss_kib(long fallback) {
    std::ifstream status("/proc/self/status");
    std::string line;
    while (std::getline(status, line))
        if (line.rfind("VmHWM:", 0) == 0) return std::atol(line.c_str() + 6);
    return fallback;
}

// What the host itself used (its agents and hooks not counted): for operators sizing a machine,
// and read by bench/host_bench.py.
void log_resources_used() {
    struct rusage self {};
    if (::getrusage(RUSAGE_SELF, &self) != 0) return;
    auto ms = [](const timeval &t) { return static_cast<int64_t>(t.tv_sec) * 1000 + t.tv_usec / 1000; };
    spdlog::info("host resources cpu_user_ms={} cpu_system_ms={} peak_rss_kib={}", ms(self.ru_utime), ms(self.ru_stime),
                 peak_rss_kib(self.ru_maxrss));
}

// This machine's name (for the host list operators see).
std::string machine_name() {
    char name[256] = {};
    if (gethostname(name, sizeof name - 1) != 0 || !*name) return "localhost";
    return name;
}

// The id this host has among the hosts of a shared workflow (docs/scale-out.md): VIK_HOST_ID
// when set (several hosts on one machine, or a name that survives a new machine), else the
// machine's name.
std::string host_identity() {
    const char *id = std::getenv("VIK_HOST_ID");
    return id && *id ? std::string(id) : machine_name();
}

} // namespace

// `vik-host run [-d] [WORKFLOW]`: load and check, take the workflow's instance lock, set up logs
// and state.json, run the loop, clean up. With -d the same path runs in a detached daemon that
// reports back to the starting command once it is up.
int cmd_run(const Options &opts) {
    plugins::Registry registry;
    auto loaded = load_workflow_and_its_plugins(opts, registry);
    if (!loaded) {
        std::cerr << loaded.error() << "\n";
        return 1;
    }
    const auto &cfg = loaded->config;
    if (opts.dry_run) return dry_run(cfg, registry);
    fs::path service_dir = cfg.service_dir();
    fs::path state_file = service_dir / "state.json";
    // Where the HTTP surface listens, decided before anything starts: a refusal (an open address
    // without a token) must reach the operator, not a daemon's log.
    auto listen_plan = http::plan_listen(cfg.server, opts.port, opts.bind_address, [](const char *n) { return std::getenv(n); });
    if (!listen_plan) {
        std::cerr << "run refused: " << listen_plan.error() << "\n";
        return 1;
    }
    auto webhooks = notify::targets_from(cfg.notify, [](const char *n) { return std::getenv(n); });
    if (!webhooks) {
        std::cerr << "run refused: " << webhooks.error() << "\n";
        return 1;
    }

    if (opts.detach) {
        auto s = daemon::inspect(service_dir);
        if (s.liveness == daemon::Liveness::running) {
            std::cerr << already_running(service_dir) << "\n";
            return 1;
        }
        if (s.liveness == daemon::Liveness::stale)
            std::cerr << "warning: overwriting stale state file " << state_file.string()
                      << (s.state ? " (pid " + std::to_string(s.state->pid) + " is gone)" : "") << "\n";
        // No thread exists yet: fork is safe here.
        auto d = daemon::detach(state_file.string(), 60);
        if (!d.is_daemon) return d.parent_exit;
    }
    // Every failure from here on must reach the starting command when detached.
    auto fail = [&](const std::string &reason) {
        daemon::report_failed(reason);
        std::cerr << reason << "\n";
        return 1;
    };

    // Private, writable and this workflow's (scoped_root.hpp), before the lock: an unwritable
    // root must not read as "daemon already running".
    if (auto prepared = daemon::prepare_scoped_root(cfg); !prepared) return fail(prepared.error());
    auto lock = daemon::InstanceLock::try_acquire(service_dir / "run.lock");
    if (!lock) return fail(already_running(service_dir));

    // Before any thread exists: the guard that kills our children if we die.
    process::start_orphan_guard();
    // The durable store of claims and runs (docs/store.md): the workflow's SQLite file (the
    // instance lock is held, so no other vik-host writes it) or its share of a PostgreSQL
    // database. A store that cannot be opened (locked by a sqlite3 shell, corrupt, newer schema,
    // unreachable) stops the start with its reason: running without it would forget blocks and
    // retries.
    // With PostgreSQL several hosts may run the workflow: this one takes part under its id.
    auto choice = store_choice(cfg);
    choice.host_id = host_identity();
    choice.address = choice.host_id == machine_name() ? machine_name() : machine_name() + " (" + choice.host_id + ")";
    choice.lease_ttl = std::chrono::seconds(cfg.store.lease_ttl_sec);
    auto db = store::open_store(choice);
    if (!db) return fail("run failed: " + db.error().message);
    std::error_code ec;
    logging::setup({cfg.logs_dir(), !opts.detach, 7, *logging::parse_level(opts.log_level)});
    std::string unused;
    for (const auto &r : registry.records)
        if (r.not_needed)
            unused += (unused.empty() ? "" : ",") + r.id;
        else if (!r.loaded)
            spdlog::warn("plugin refused path={}: {}", r.path.string(), r.error);
        else if (!r.note.empty())
            spdlog::warn("plugin {}: {}", r.id, r.note);
    if (!unused.empty()) spdlog::debug("plugins not loaded, this workflow does not use them: {}", unused);
    for (const auto &d : loaded->diagnostics.items)
        spdlog::warn("workflow: {}", d.message);
    // The process service now, before plugins run: the host becomes a child subreaper and picks
    // its containment mechanism (logged with the first child it starts; docs/security.md). It is
    // handed down: to the plugins' host api (bound while the loop exists) and to the loop, whose
    // stop kills its children. It outlives both.
    auto processes = std::make_unique<process::ProcessService>();
    auto bind_processes = std::make_unique<plugins::ProcessServiceBinding>(*processes);

    std::string dirs;
    for (const auto &d : plugin_dirs(opts))
        dirs += (dirs.empty() ? "" : ":") + d.string();
    daemon::ServiceState state;
    state.workflow_path = cfg.workflow_path.string();
    state.cwd = fs::current_path(ec).string();
    state.pid = static_cast<long>(getpid());
    state.port = listen_plan->enabled ? listen_plan->port : 0;
    state.bind_address = listen_plan->enabled ? listen_plan->address : "127.0.0.1";
    state.started_at = util::now_rfc3339();
    state.log_dir = cfg.logs_dir().string();
    state.sessions_dir = cfg.sessions_dir().string();
    state.database = (*db)->location();
    for (const auto &a : opts.argv)
        state.command += (state.command.empty() ? "" : " ") + a;
    if (auto w = daemon::write_state(state_file, state); !w) return fail("run failed: " + w.error());
    // A plugin that crashes the process must not leave a state file naming a dead pid.
    plugins::remove_on_fatal_signal(state_file.string());
    if (opts.detach) spdlog::info("daemon started pid={} state_file={}", state.pid, state_file.string());

    int code;
    try {
        auto loop = std::make_unique<orchestrator::Orchestrator>(
            cfg, registry, *processes, orchestrator::OrchestratorOptions{dirs, 4, 15, {}, nullptr, db->get(), opts.strict});
        loop->prepare();
        // The HTTP surface on the loop, before the first intake: a daemon that cannot listen fails
        // its start. Destroyed before the orchestrator (declared after it): no route outlives
        // the surface it reads.
        std::unique_ptr<http::OperatorHttp> operator_http;
        if (listen_plan->enabled) {
            operator_http = std::make_unique<http::OperatorHttp>(loop->io(), loop->surface(), *listen_plan, db->get());
            auto port = operator_http->listen();
            if (!port) throw std::runtime_error(port.error());
            spdlog::info("http surface listening url=http://{}:{}/ token={}",
                         listen_plan->address.find(':') != std::string::npos ? "[" + listen_plan->address + "]"
                                                                             : listen_plan->address,
                         *port, listen_plan->token.empty() ? "none" : "from " + listen_plan->token_env);
            // The port actually bound (--port 0 picks a free one): state.json tells clients.
            state.port = *port;
            if (auto w = daemon::write_state(state_file, state); !w) spdlog::warn("state file not updated: {}", w.error());
        }
        // Notices of blocked, failed and completed stages, delivered on the loop without blocking it.
        std::unique_ptr<notify::WebhookNotifier> notifier;
        if (!webhooks->empty()) {
            notifier =
                std::make_unique<notify::WebhookNotifier>(loop->io(), loop->surface(), *webhooks, cfg.workflow_path.string());
            spdlog::info("webhook notifier started webhooks={}", webhooks->size());
        }
        // The plugins have read their settings and credentials: the tracker's token, the HTTP
        // bearer token and the webhook and store URLs leave the process environment (hooks still
        // get them from the host's private copy; agents never see them).
        auto secret_names = orchestrator::secret_names(cfg);
        if (!listen_plan->token_env.empty() &&
            std::find(secret_names.begin(), secret_names.end(), listen_plan->token_env) == secret_names.end())
            secret_names.push_back(listen_plan->token_env);
        std::string withheld;
        for (const auto &n : security::withhold(secret_names))
            withheld += (withheld.empty() ? "" : ",") + n;
        if (!withheld.empty()) spdlog::info("secrets withheld from the process environment names={}", withheld);
        daemon::report_started();
        code = loop->run();
        if (loop->has_stuck_work()) {
            // A plugin call is still blocked on a worker thread: joining it could take forever.
            // Every child process is already killed; leave without waiting for the thread.
            spdlog::warn("a plugin call is still blocked; exiting without waiting for it");
            if (auto f = (*db)->flush(std::chrono::seconds(5)); !f) spdlog::error("store not flushed: {}", f.error().message);
            fs::remove(state_file, ec);
            spdlog::shutdown();
            std::fflush(stdout);
            std::_Exit(code);
        }
    } catch (const std::exception &e) {
        spdlog::error("run failed: {}", e.what());
        fs::remove(state_file, ec);
        return fail(std::string("run failed: ") + e.what());
    }
    // The process service's own clean-up (its cgroups) counts in the figures logged next.
    bind_processes.reset();
    processes.reset();
    log_resources_used();
    fs::remove(state_file, ec);
    if (!opts.detach) std::cout << "sessions: " << cfg.sessions_dir().string() << "\nlogs: " << cfg.logs_dir().string() << "\n";
    return code;
}

} // namespace vik::cli
