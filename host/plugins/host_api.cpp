#include "plugins/host_api.hpp"

#include "plugins/json_service.hpp"
#include "plugins/manifest.hpp"
#include "plugins/plugin_call.hpp"

#include "process/process_service.hpp"
#include "security/secret_environment.hpp"

#include <spdlog/spdlog.h>
#include <vik/plugin.hpp>

#include <cstring>
#include <map>
#include <mutex>

#ifndef VIK_HOST_VERSION
#define VIK_HOST_VERSION "0.0.0"
#endif

// The opaque process handle of the ABI is the host's ProcessHandle in a thin shell.
struct vik_process {
    std::unique_ptr<vik::process::ProcessHandle> handle;
};

namespace vik::plugins {

void note_spawn(int64_t pid); // SpawnWatch: a child this thread just spawned

namespace {

// Live processes spawned for an issue, by pid (spawned_process()).
struct SpawnRegistry {
    std::mutex mutex;
    std::map<int64_t, SpawnedProcess> by_pid;
};

// The service bound by the composition root (ProcessServiceBinding), if any.
process::ProcessService *bound_service = nullptr;

SpawnRegistry &spawn_registry() {
    static SpawnRegistry r;
    return r;
}

std::string env_value(const std::vector<std::string> &env, const std::string &name) {
    for (const auto &kv : env)
        if (kv.size() > name.size() && kv.compare(0, name.size(), name) == 0 && kv[name.size()] == '=')
            return kv.substr(name.size() + 1);
    return {};
}

spdlog::level::level_enum spdlog_level(int32_t level) {
    return level <= VIK_LOG_DEBUG  ? spdlog::level::debug
           : level == VIK_LOG_INFO ? spdlog::level::info
           : level == VIK_LOG_WARN ? spdlog::level::warn
                                   : spdlog::level::err;
}

void api_log(void *host_ctx, int32_t level, const char *message) {
    auto *ctx = static_cast<HostContext *>(host_ctx);
    if (message == nullptr) return;
    auto lvl = spdlog_level(level);
    // Tagged with the call the plugin is in, when it logs from inside one (the host's thread).
    std::string call = current_call_tag();
    spdlog::log(lvl, "[plugin {}{}{}] {}", ctx->plugin_id, call.empty() ? "" : " ", call, message);
}

vik_status api_get_settings(void *host_ctx, const vik_sink *out) {
    auto *ctx = static_cast<HostContext *>(host_ctx);
    sdk::write(out, ctx->settings_json);
    return VIK_OK;
}

vik_status api_spawn(void *host_ctx, const vik_process_spec *spec, const vik_process_callbacks *cb, vik_process **out,
                     vik_errbuf *err) {
    return sdk::guarded(err, [&]() -> vik_status {
        if (spec == nullptr || cb == nullptr || out == nullptr || spec->argv == nullptr || spec->argv[0] == nullptr)
            throw sdk::Error("process_spawn: spec, callbacks, out and argv[0] are required", VIK_INVALID_ARGUMENT);
        auto *ctx = static_cast<HostContext *>(host_ctx);
        if (ctx->processes == nullptr)
            throw sdk::Error("process_spawn: plugin '" + ctx->plugin_id +
                                 "' was created without a process service (the composition root binds one with "
                                 "ProcessServiceBinding before it creates plugin instances)",
                             VIK_UNSUPPORTED);
        process::SpawnSpec s;
        for (auto a = spec->argv; *a != nullptr; ++a)
            s.argv.emplace_back(*a);
        if (spec->env != nullptr) {
            s.env.emplace();
            for (auto e = spec->env; *e != nullptr; ++e)
                s.env->emplace_back(*e);
        } else if (auto secrets = security::withheld(); !secrets.empty()) {
            // "Inherit the host's environment" keeps meaning the environment the host was started
            // with: a tracker's pull command (`gh issue list`) still finds its token although the
            // host withheld it from its own process environment.
            s.env.emplace();
            for (auto &[k, v] : security::full_environment())
                s.env->push_back(k + "=" + v);
        }
        if (spec->cwd != nullptr) s.cwd = spec->cwd;
        if (spec->max_line_bytes != 0) s.max_line_bytes = spec->max_line_bytes;
        s.pipe_stdin = spec->pipe_stdin;
        // An isolated plugin's only children are its own server processes (process_bridge.cpp):
        // each is stopped by its instance (shutdown, then killed), not by the host's kill_all.
        s.spared_by_kill_all = ctx->manifest && ctx->manifest->isolation == Isolation::process;
        // Copy the C callbacks: the plugin's struct may be on its stack.
        vik_process_callbacks c{};
        std::memcpy(&c, cb, std::min<size_t>(sizeof c, cb->struct_size));
        process::ProcessCallbacks pc;
        if (c.on_stdout_line)
            pc.on_stdout = [c](std::string_view line, bool t) { c.on_stdout_line(c.ctx, line.data(), line.size(), t); };
        if (c.on_stderr_line)
            pc.on_stderr = [c](std::string_view line, bool t) { c.on_stderr_line(c.ctx, line.data(), line.size(), t); };
        // A process for an issue is recorded while it runs; `exited` settles an exit that comes
        // before the registration below.
        SpawnedProcess record;
        if (s.env)
            record = {static_cast<HostContext *>(host_ctx)->plugin_id, env_value(*s.env, "VIK_ISSUE_ID"),
                      env_value(*s.env, "VIK_ISSUE_STAGE")};
        auto pid = std::make_shared<int64_t>(-1);
        pc.on_exit = [c, pid](process::ExitStatus st) {
            {
                auto &r = spawn_registry();
                std::lock_guard lock(r.mutex);
                if (*pid > 0) r.by_pid.erase(*pid);
                *pid = 0; // exited
            }
            if (c.on_exit) c.on_exit(c.ctx, st.exit_code, st.term_signal);
        };
        auto handle = ctx->processes->spawn(s, std::move(pc));
        note_spawn(handle->pid());
        if (!record.issue_id.empty()) {
            auto &r = spawn_registry();
            std::lock_guard lock(r.mutex);
            if (*pid != 0) {
                *pid = handle->pid();
                r.by_pid[*pid] = std::move(record);
            }
        }
        *out = new vik_process{std::move(handle)};
        return VIK_OK;
    });
}

vik_status api_write_stdin(vik_process *proc, const char *data, size_t len) {
    if (proc == nullptr) return VIK_INVALID_ARGUMENT;
    proc->handle->write_stdin(std::string(data, len));
    return VIK_OK;
}

vik_status api_close_stdin(vik_process *proc) {
    if (proc == nullptr) return VIK_INVALID_ARGUMENT;
    proc->handle->close_stdin();
    return VIK_OK;
}

vik_status api_kill(vik_process *proc, int32_t signal) {
    if (proc == nullptr) return VIK_INVALID_ARGUMENT;
    proc->handle->kill(signal);
    return VIK_OK;
}

vik_status api_wait(vik_process *proc, uint32_t timeout_ms, int32_t *exit_code, int32_t *term_signal) {
    if (proc == nullptr) return VIK_INVALID_ARGUMENT;
    auto st = proc->handle->wait(timeout_ms);
    if (!st) return VIK_TIMEOUT;
    if (exit_code) *exit_code = st->exit_code;
    if (term_signal) *term_signal = st->term_signal;
    return VIK_OK;
}

int64_t api_pid(vik_process *proc) { return proc == nullptr ? -1 : proc->handle->pid(); }

void api_release(vik_process *proc) { delete proc; }

bool api_log_enabled(void *, int32_t level) { return spdlog::should_log(spdlog_level(level)); }

// Host services by id (ABI 1.2): later services are added here, never as vik_host_api fields.
const void *api_get_service(void *host_ctx, const char *service_id) {
    if (host_ctx == nullptr || service_id == nullptr) return nullptr;
    if (std::strcmp(service_id, VIK_SERVICE_JSON_V1) == 0) return json_service();
    if (std::strcmp(service_id, VIK_SERVICE_HOST_INFO_V1) == 0) return &static_cast<HostContext *>(host_ctx)->info;
    return nullptr;
}

} // namespace

namespace {
thread_local SpawnWatch *spawn_watch = nullptr;
}

SpawnWatch::SpawnWatch() : previous_(spawn_watch) { spawn_watch = this; }
SpawnWatch::~SpawnWatch() { spawn_watch = previous_; }

void note_spawn(int64_t pid) {
    if (spawn_watch) spawn_watch->pids_.push_back(pid);
}

void record_spawned_process(int64_t pid, SpawnedProcess process) {
    auto &r = spawn_registry();
    std::lock_guard lock(r.mutex);
    r.by_pid[pid] = std::move(process);
}

void forget_spawned_process(int64_t pid) {
    auto &r = spawn_registry();
    std::lock_guard lock(r.mutex);
    r.by_pid.erase(pid);
}

std::optional<SpawnedProcess> spawned_process(int64_t pid) {
    auto &r = spawn_registry();
    std::lock_guard lock(r.mutex);
    auto it = r.by_pid.find(pid);
    if (it == r.by_pid.end()) return std::nullopt;
    return it->second;
}

ProcessServiceBinding::ProcessServiceBinding(process::ProcessService &service) : previous_(bound_service) {
    bound_service = &service;
}

ProcessServiceBinding::~ProcessServiceBinding() { bound_service = previous_; }

std::unique_ptr<HostContext> make_host_context(std::string plugin_id, std::string settings_json) {
    auto ctx = std::make_unique<HostContext>();
    ctx->plugin_id = std::move(plugin_id);
    ctx->settings_json = std::move(settings_json);
    ctx->processes = bound_service; // null: this plugin may not start processes (spawn says why)
    auto &a = ctx->api;
    a.struct_size = sizeof(vik_host_api);
    a.abi_major = VIK_ABI_MAJOR;
    a.abi_minor = VIK_ABI_MINOR;
    a.host_ctx = ctx.get();
    a.log = api_log;
    a.get_settings = api_get_settings;
    a.process_spawn = api_spawn;
    a.process_write_stdin = api_write_stdin;
    a.process_close_stdin = api_close_stdin;
    a.process_kill = api_kill;
    a.process_wait = api_wait;
    a.process_pid = api_pid;
    a.process_release = api_release;
    a.get_service = api_get_service;
    auto &info = ctx->info;
    info.struct_size = sizeof(vik_host_info_v1);
    info.host_version = VIK_HOST_VERSION;
    info.plugin_id = ctx->plugin_id.c_str();
    info.log_enabled = api_log_enabled;
    return ctx;
}

} // namespace vik::plugins
