#include "plugins/process_bridge.hpp"

#include "plugins/host_api.hpp"
#include "plugins/manifest.hpp"
#include "process/read_gate.hpp"
#include "security/secret_environment.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstring>
#include <expected>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace vik::plugins {

namespace json = boost::json;
namespace fs = std::filesystem;
using SteadyClock = std::chrono::steady_clock;

constexpr size_t kMaxLogLine = 4000;                    // a stderr line or log message, as logged
constexpr std::chrono::milliseconds kAnswerGrace{1000}; // past the plugin's timeout_ms before it counts as hung

namespace {

struct CallError {
    vik_status status = VIK_ERROR;
    std::string message;
};

vik_status status_from_name(std::string_view s) {
    if (s == "unsupported") return VIK_UNSUPPORTED;
    if (s == "invalid_argument") return VIK_INVALID_ARGUMENT;
    if (s == "not_found") return VIK_NOT_FOUND;
    if (s == "timeout") return VIK_TIMEOUT;
    if (s == "cancelled") return VIK_CANCELLED;
    return VIK_ERROR;
}

std::string signal_text(int sig) {
    const char *abbrev = sigabbrev_np(sig);
    return abbrev ? std::string("SIG") + abbrev : std::to_string(sig);
}

std::string bounded(std::string_view text, size_t n = 300) {
    return text.size() <= n ? std::string(text) : std::string(text.substr(0, n)) + "...";
}

class PluginProcess;

// One child of a PluginProcess: the host API's handle and the state its callbacks touch (under
// the owner's mutex). Lives until its handle was released: no callback runs after that.
struct Child {
    PluginProcess *owner = nullptr;
    uint64_t generation = 0; // which start of the plugin this is (calls name it, never a pointer)
    vik_process *proc = nullptr;
    bool ended = false; // exited, or killed by the host (then it is never used again)
    std::string kill_reason;
};

class PluginProcess {
  public:
    PluginProcess(const vik_host_api *host, const Manifest &m, const char *kind, std::string settings)
        : host_(host), id_(m.id), kind_(kind), settings_(std::move(settings)) {
        if (!m.executable.empty())
            argv_ = {m.executable.string()};
        else // a library kept out of the host: the host's own binary serves it
            argv_ = {"/proc/self/exe", "plugin", "serve", m.path.string()}; // this very binary, even if replaced on disk
        cwd_ = m.path.parent_path().string();
    }

    ~PluginProcess() {
        std::unique_ptr<Child> last;
        {
            std::lock_guard lock(mu_);
            shutting_down_ = true;
            last = std::move(current_);
        }
        if (!last) return;
        if (!last->ended) { // ask it to stop, give it a moment, then the release kills the group
            std::string bye = R"({"jsonrpc":"2.0","method":"shutdown"})"
                              "\n";
            host_->process_write_stdin(last->proc, bye.data(), bye.size());
            host_->process_close_stdin(last->proc);
            host_->process_wait(last->proc, 2000, nullptr, nullptr);
        }
        host_->process_release(last->proc);
    }
    PluginProcess(const PluginProcess &) = delete;
    PluginProcess &operator=(const PluginProcess &) = delete;

    // What a runtime adds (RuntimeBridge), set before start(): notifications other than `log`,
    // on the process I/O thread; and the end of a child (which generation, how), after the calls
    // waiting on it failed.
    using NotificationHandler = std::function<void(std::string_view method, const json::object &params)>;
    using ChildEndHandler = std::function<void(uint64_t generation, const std::string &how)>;
    void on_notification(NotificationHandler h) { notification_ = std::move(h); }
    void on_child_end(ChildEndHandler h) { child_end_ = std::move(h); }

    // Sends a notification to the running child; false when none runs (nothing is started for it).
    bool notify(const std::string &method, json::object params) {
        std::string line = json::serialize(json::object{{"jsonrpc", "2.0"}, {"method", method}, {"params", std::move(params)}});
        line += '\n';
        std::lock_guard lock(mu_);
        if (!current_ || current_->ended) return false;
        host_->process_write_stdin(current_->proc, line.data(), line.size());
        return true;
    }

    // The gate the child's output is read through: a runtime shuts it while a session's consumer
    // is behind (the child then blocks in write, as an in-process runtime's agent would).
    const std::shared_ptr<process::ReadGate> &read_gate() const { return gate_; }
    const std::string &id() const { return id_; }

    // A host log line tagged with the plugin.
    void log(int level, const std::string &text) { host_->log(host_->host_ctx, level, text.c_str()); }
    const vik_host_api *host() const { return host_; }

    // One call: the result's JSON text, or why there is none.
    // `sent` runs (under the bridge's lock) with the generation of the child the request went to.
    std::expected<std::string, CallError> call(const std::string &method, json::object params, uint32_t timeout_ms,
                                               const std::function<void(uint64_t)> &sent = {}) {
        auto deadline = SteadyClock::now() + std::chrono::milliseconds(timeout_ms);
        {
            // Another call may be starting the process: wait for it within this call's time. A
            // start itself gets its full time (a slow interpreter on a loaded machine).
            StartTurn turn(*this);
            if (!turn.take(deadline))
                return std::unexpected(
                    CallError{VIK_TIMEOUT, "plugin '" + id_ + "': " + method + " ran out of time while its process started"});
            if (auto ok = ensure_running(kPluginStartTimeoutMs); !ok) return std::unexpected(ok.error());
        }
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now()).count();
        if (left <= 0) // nothing is sent: a healthy process is not killed for a call that had no time
            return std::unexpected(
                CallError{VIK_TIMEOUT, "plugin '" + id_ + "': " + method + " ran out of time while its process started"});
        params["timeout_ms"] = left;
        return request(method, std::move(params), static_cast<uint32_t>(left), sent);
    }

    // Starts the child now (create: a plugin that cannot start is refused at once).
    std::expected<void, CallError> start() {
        StartTurn turn(*this);
        turn.take(SteadyClock::now() + std::chrono::milliseconds(kPluginStartTimeoutMs));
        return ensure_running(kPluginStartTimeoutMs);
    }

    // ---- the child's callbacks, on the host's process I/O thread ----------------------------

    void on_line(Child &c, std::string_view line, bool truncated) {
        if (truncated) {
            log(VIK_LOG_ERROR, "sent a message larger than " + std::to_string(kMaxMessageBytes >> 20) +
                                   " MiB; it is dropped (the call it answers times out)");
            return;
        }
        boost::system::error_code ec;
        json::value v = json::parse(line, ec);
        const json::object *o = ec ? nullptr : v.if_object();
        if (!o) {
            log(VIK_LOG_WARN, "printed a line that is not a protocol message (stdout carries JSON-RPC messages only; log to "
                              "stderr or with a `log` notification): " +
                                  bounded(line));
            return;
        }
        if (const auto *m = o->if_contains("method"); m && !o->contains("id")) {
            if (m->is_string() && m->get_string() == "log") return on_log(o->if_contains("params"));
            const auto *params = o->if_contains("params");
            if (m->is_string() && notification_ && params && params->is_object())
                return notification_(m->get_string(), params->get_object());
            log(VIK_LOG_WARN, "sent an unknown notification: " + bounded(line));
            return;
        }
        const auto *idv = o->if_contains("id");
        if (!idv || !idv->is_int64()) {
            log(VIK_LOG_WARN, "sent a message without a numeric id: " + bounded(line));
            return;
        }
        std::lock_guard lock(mu_);
        auto it = pending_.find(idv->get_int64());
        if (it == pending_.end() || it->second->generation != c.generation) return; // an answer after its deadline
        Pending &p = *it->second;
        if (const auto *r = o->if_contains("result")) {
            p.result = json::serialize(*r);
        } else {
            p.error = CallError{VIK_ERROR, "the plugin answered neither a result nor an error"};
            if (const auto *e = o->if_contains("error"); e && e->is_object()) {
                const auto &eo = e->get_object();
                if (const auto *msg = eo.if_contains("message"); msg && msg->is_string())
                    p.error.message = std::string(msg->get_string());
                if (const auto *code = eo.if_contains("code"); code && code->is_int64()) {
                    if (code->get_int64() == -32601) p.error.status = VIK_UNSUPPORTED;
                    if (code->get_int64() == -32602) p.error.status = VIK_INVALID_ARGUMENT;
                }
                if (const auto *data = eo.if_contains("data"); data && data->is_object())
                    if (const auto *st = data->get_object().if_contains("status"); st && st->is_string())
                        p.error.status = status_from_name(st->get_string());
            }
        }
        p.done = true;
        p.answered = true;
        pending_.erase(it);
        cv_.notify_all();
    }

    void on_stderr(std::string_view line) { log(VIK_LOG_WARN, "stderr: " + bounded(line, kMaxLogLine)); }

    void on_exit(Child &c, int32_t code, int32_t sig) {
        std::string how;
        bool quiet; // a stop, or a kill the host made and reported itself
        {
            std::lock_guard lock(mu_);
            bool killed = c.ended; // the host killed it: counted then
            how = !c.kill_reason.empty() ? c.kill_reason
                  : sig > 0              ? "died of signal " + signal_text(sig)
                                         : "exited with code " + std::to_string(code);
            c.ended = true;
            fail_pending(c, how);
            quiet = shutting_down_ || killed;
            if (!quiet) count_failure(how);
        }
        if (child_end_) child_end_(c.generation, how);
        if (quiet) return;
        log(VIK_LOG_WARN, "process " + how + next_start_text());
    }

  private:
    struct Pending {
        uint64_t generation = 0; // the start of the plugin it was sent to
        std::string method;
        bool done = false;
        bool answered = false; // the child answered (a result or an error): it is healthy
        std::optional<std::string> result;
        CallError error;
    };

    // One thread at a time checks (and starts) the child: the holder of the start turn. (A flag
    // under mu_ rather than a timed mutex: ThreadSanitizer does not follow pthread's timed locks.)
    class StartTurn {
      public:
        explicit StartTurn(PluginProcess &p) : p_(p) {}
        ~StartTurn() {
            if (!held_) return;
            {
                std::lock_guard lock(p_.mu_);
                p_.starting_ = false;
            }
            p_.start_cv_.notify_all();
        }
        StartTurn(const StartTurn &) = delete;
        StartTurn &operator=(const StartTurn &) = delete;
        bool take(SteadyClock::time_point deadline) {
            std::unique_lock lock(p_.mu_);
            if (!p_.start_cv_.wait_until(lock, deadline, [&] { return !p_.starting_; })) return false;
            p_.starting_ = held_ = true;
            return true;
        }

      private:
        PluginProcess &p_;
        bool held_ = false;
    };

    // The start turn held. The child answers calls: it runs, or was started again now.
    std::expected<void, CallError> ensure_running(uint32_t timeout_ms) {
        std::unique_ptr<Child> old;
        {
            std::lock_guard lock(mu_);
            if (current_ && !current_->ended) return {};
            if (current_) fail_pending(*current_, current_->kill_reason.empty() ? "ended" : current_->kill_reason);
            if (failures_ >= kMaxConsecutiveFailures)
                return std::unexpected(CallError{
                    VIK_ERROR, "plugin '" + id_ + "': its process failed " + std::to_string(failures_) +
                                   " times in a row (last: " + last_failure_ +
                                   "); it is not started again: fix the plugin (its log lines say more), then restart vik-host"});
            if (failures_ > 0 && SteadyClock::now() < restart_after_) {
                auto s = std::chrono::duration_cast<std::chrono::seconds>(restart_after_ - SteadyClock::now()).count() + 1;
                return std::unexpected(CallError{VIK_ERROR, "plugin '" + id_ + "': its process " + last_failure_ +
                                                                "; it is started again in " + std::to_string(s) + " s"});
            }
            old = std::move(current_);
        }
        if (old) host_->process_release(old->proc); // ended: nothing of it runs any more
        return spawn_and_initialize(timeout_ms);
    }

    std::expected<void, CallError> spawn_and_initialize(uint32_t timeout_ms) {
        auto child = std::make_unique<Child>();
        child->owner = this;
        child->generation = ++generations_;
        std::vector<const char *> argv;
        for (const auto &a : argv_)
            argv.push_back(a.c_str());
        argv.push_back(nullptr);
        // A trusted child, like a hook: the host's environment with the withheld secrets, which
        // a tracker plugin reads its token from.
        std::vector<std::string> env_text;
        for (const auto &[k, v] : security::full_environment())
            env_text.push_back(k + "=" + v);
        std::vector<const char *> env;
        for (const auto &e : env_text)
            env.push_back(e.c_str());
        env.push_back(nullptr);
        vik_process_spec spec{};
        spec.struct_size = sizeof spec;
        spec.argv = argv.data();
        spec.env = env.data();
        spec.cwd = cwd_.c_str();
        spec.max_line_bytes = kMaxMessageBytes;
        spec.pipe_stdin = true;
        vik_process_callbacks cb{};
        cb.struct_size = sizeof cb;
        cb.ctx = child.get();
        cb.on_stdout_line = [](void *ctx, const char *line, size_t len, bool truncated) {
            auto *c = static_cast<Child *>(ctx);
            c->owner->on_line(*c, std::string_view(line, len), truncated);
        };
        cb.on_stderr_line = [](void *ctx, const char *line, size_t len, bool) {
            static_cast<Child *>(ctx)->owner->on_stderr(std::string_view(line, len));
        };
        cb.on_exit = [](void *ctx, int32_t code, int32_t sig) {
            auto *c = static_cast<Child *>(ctx);
            c->owner->on_exit(*c, code, sig);
        };
        char errtext[1024] = {0};
        vik_errbuf err{errtext, sizeof errtext};
        vik_process *proc = nullptr;
        vik_status spawned;
        {
            process::ScopedSpawnGate gate(gate_);
            gate_->open(); // a new child starts unpaused
            spawned = host_->process_spawn(host_->host_ctx, &spec, &cb, &proc, &err);
        }
        if (spawned != VIK_OK) {
            std::string why = "could not start " + argv_[0] + ": " + errtext;
            std::lock_guard lock(mu_);
            count_failure(why);
            return std::unexpected(CallError{VIK_ERROR, "plugin '" + id_ + "': " + why});
        }
        child->proc = proc;
        {
            std::lock_guard lock(mu_);
            current_ = std::move(child);
        }
        boost::system::error_code ec;
        json::value settings = json::parse(settings_, ec);
        if (ec || !settings.is_object()) settings = json::object{};
        json::object params{{"kind", kind_},
                            {"plugin_id", id_},
                            {"abi_major", VIK_ABI_MAJOR},
                            {"abi_minor", VIK_ABI_MINOR},
                            {"settings", std::move(settings)},
                            {"timeout_ms", timeout_ms}};
        auto answered = request("initialize", std::move(params), timeout_ms);
        if (answered) return {};
        // A child that does not initialize is not used: stopped, and counted as a failure.
        {
            std::lock_guard lock(mu_);
            if (current_ && !current_->ended) {
                current_->ended = true;
                current_->kill_reason = "killed: it did not initialize";
                count_failure("did not initialize: " + answered.error().message);
                host_->process_kill(current_->proc, SIGKILL);
                fail_pending(*current_, current_->kill_reason);
            }
        }
        return std::unexpected(CallError{answered.error().status, "plugin '" + id_ + "' did not initialize as a " + kind_ +
                                                                      " plugin: " + answered.error().message});
    }

    // Sends one request; the plugin is told `timeout_ms`, and the host waits that long plus a
    // grace for the answer (a plugin that answers "timeout" at its deadline is not hung).
    std::expected<std::string, CallError> request(const std::string &method, json::object params, uint32_t timeout_ms,
                                                  const std::function<void(uint64_t)> &sent = {}) {
        auto p = std::make_shared<Pending>();
        p->method = method;
        int64_t id = 0;
        vik_process *proc = nullptr;
        {
            std::lock_guard lock(mu_);
            if (!current_ || current_->ended)
                return std::unexpected(CallError{VIK_ERROR, "plugin '" + id_ + "': its process " +
                                                                (last_failure_.empty() ? "is not running" : last_failure_)});
            id = next_id_++;
            p->generation = current_->generation;
            pending_[id] = p;
            proc = current_->proc;
            std::string line =
                json::serialize(json::object{{"jsonrpc", "2.0"}, {"id", id}, {"method", method}, {"params", params}});
            line += '\n';
            // Written under the lock: a notification about this request (a cancel) follows it.
            host_->process_write_stdin(proc, line.data(), line.size());
            if (sent) sent(p->generation);
        }
        std::unique_lock lock(mu_);
        if (!cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms) + kAnswerGrace, [&] { return p->done; })) {
            pending_.erase(id);
            std::string why = "did not answer " + method + " within " + std::to_string(timeout_ms) + " ms";
            if (current_ && p->generation == current_->generation && !current_->ended) { // hung: stopped, started again
                current_->ended = true;
                current_->kill_reason = "killed: it " + why;
                count_failure(current_->kill_reason);
                host_->process_kill(current_->proc, SIGKILL);
                fail_pending(*current_, current_->kill_reason);
            }
            lock.unlock();
            log(VIK_LOG_WARN, why + "; its process is stopped" + next_start_text());
            return std::unexpected(CallError{VIK_TIMEOUT, "plugin '" + id_ + "' " + why});
        }
        // It answers a call: whatever failed before is behind it (starting again is not enough: a
        // plugin that initializes and then crashes on every call must reach the limit).
        if (p->answered && method != "initialize") failures_ = 0;
        if (!p->result) return std::unexpected(p->error);
        return *p->result;
    }

    // mu_ held: the calls waiting on `c` fail with how it ended.
    void fail_pending(Child &c, const std::string &how) {
        for (auto it = pending_.begin(); it != pending_.end();) {
            if (it->second->generation != c.generation) {
                ++it;
                continue;
            }
            it->second->error =
                CallError{VIK_ERROR, "plugin '" + id_ + "': its process " + how + " during " + it->second->method};
            it->second->done = true;
            it = pending_.erase(it);
        }
        cv_.notify_all();
    }

    // mu_ held.
    void count_failure(const std::string &how) {
        ++failures_;
        last_failure_ = how;
        auto backoff = std::chrono::seconds(std::min<int64_t>(30, int64_t{1} << std::min(failures_ - 1, 5)));
        restart_after_ = SteadyClock::now() + backoff;
    }

    std::string next_start_text() {
        std::lock_guard lock(mu_);
        if (failures_ >= kMaxConsecutiveFailures)
            return "; it failed " + std::to_string(failures_) + " times in a row and is not started again (restart vik-host)";
        auto s = std::chrono::duration_cast<std::chrono::seconds>(restart_after_ - SteadyClock::now()).count() + 1;
        return "; it is started again on the next call, in " + std::to_string(std::max<int64_t>(s, 1)) + " s at the earliest";
    }

    void on_log(const json::value *params) {
        const json::object *o = params ? params->if_object() : nullptr;
        const json::value *msg = o ? o->if_contains("message") : nullptr;
        if (!msg || !msg->is_string()) return log(VIK_LOG_WARN, "sent a log notification without a message");
        std::string text = bounded(msg->get_string(), kMaxLogLine);
        int level = VIK_LOG_INFO;
        if (const auto *l = o->if_contains("level"); l && l->is_string()) {
            std::string_view s = l->get_string();
            level = s == "debug"                    ? VIK_LOG_DEBUG
                    : s == "warn" || s == "warning" ? VIK_LOG_WARN
                    : s == "error"                  ? VIK_LOG_ERROR
                                                    : level;
        }
        host_->log(host_->host_ctx, level, text.c_str());
    }

    const vik_host_api *host_;
    std::string id_, kind_, settings_, cwd_;
    std::vector<std::string> argv_;
    NotificationHandler notification_;
    ChildEndHandler child_end_;
    std::shared_ptr<process::ReadGate> gate_ = std::make_shared<process::ReadGate>();
    std::mutex mu_; // everything below; the callbacks take it
    std::condition_variable cv_;
    bool starting_ = false; // a thread holds the start turn (StartTurn)
    std::condition_variable start_cv_;
    std::unique_ptr<Child> current_;
    std::map<int64_t, std::shared_ptr<Pending>> pending_;
    int64_t next_id_ = 1;
    uint64_t generations_ = 0;
    int failures_ = 0; // child failures (exit, crash, hang, no initialize) since the last answer
    std::string last_failure_;
    SteadyClock::time_point restart_after_{};
    bool shutting_down_ = false;
};

void write_error(vik_errbuf *err, const std::string &msg) {
    if (!err || !err->data || err->capacity == 0) return;
    size_t n = std::min(msg.size(), err->capacity - 1);
    std::memcpy(err->data, msg.data(), n);
    err->data[n] = '\0';
}

vik_status finish(const std::expected<std::string, CallError> &r, const vik_sink *out, vik_errbuf *err) {
    if (!r) {
        write_error(err, r.error().message);
        return r.error().status;
    }
    if (out) out->write(out->ctx, r->data(), r->size());
    return VIK_OK;
}

json::value parse_or_null(const char *text) {
    boost::system::error_code ec;
    json::value v = json::parse(text ? text : "", ec);
    return ec ? json::value(nullptr) : v;
}

// The plugin's process for one instance, not started yet; null (with err) without a manifest.
std::unique_ptr<PluginProcess> make_process(const char *kind, const vik_host_api *host, const char *settings, vik_errbuf *err) {
    auto *ctx = static_cast<HostContext *>(host->host_ctx);
    if (!ctx->manifest) {
        write_error(err, "an out-of-process plugin needs its manifest (a host bug)");
        return nullptr;
    }
    return std::make_unique<PluginProcess>(host, *ctx->manifest, kind, settings ? settings : "{}");
}

// Starts the child now: a plugin that cannot start is refused at `create`.
vik_status start_process(PluginProcess &p, vik_errbuf *err) {
    if (auto ok = p.start(); !ok) {
        write_error(err, ok.error().message);
        return ok.error().status;
    }
    return VIK_OK;
}

vik_status create(const char *kind, const vik_host_api *host, const char *settings, void **out, vik_errbuf *err) {
    auto p = make_process(kind, host, settings, err);
    if (!p) return VIK_ERROR;
    if (vik_status st = start_process(*p, err); st != VIK_OK) return st;
    *out = p.release();
    return VIK_OK;
}

PluginProcess &self(void *instance) { return *static_cast<PluginProcess *>(instance); }

const vik_tracker_v1 kTracker{
    sizeof(vik_tracker_v1),
    [](const vik_host_api *host, const char *settings, void **out, vik_errbuf *err) {
        return create("tracker", host, settings, out, err);
    },
    [](void *instance) { delete static_cast<PluginProcess *>(instance); },
    [](void *instance, uint32_t timeout_ms, const vik_sink *out, vik_errbuf *err) {
        return finish(self(instance).call("tracker.pull", {}, timeout_ms), out, err);
    },
    [](void *instance, const char *ids, uint32_t timeout_ms, const vik_sink *out, vik_errbuf *err) {
        return finish(self(instance).call("tracker.fetch", {{"ids", parse_or_null(ids)}}, timeout_ms), out, err);
    },
    [](void *instance, const char *id, const char *state, uint32_t timeout_ms, vik_errbuf *err) {
        return finish(self(instance).call("tracker.set_state", {{"id", id}, {"state", state}}, timeout_ms), nullptr, err);
    },
    [](void *instance, const char *id, const char *body, uint32_t timeout_ms, vik_errbuf *err) {
        return finish(self(instance).call("tracker.comment", {{"id", id}, {"body", body}}, timeout_ms), nullptr, err);
    },
};

const vik_hooks_v1 kHooks{
    sizeof(vik_hooks_v1),
    [](const vik_host_api *host, const char *settings, void **out, vik_errbuf *err) {
        return create("hooks", host, settings, out, err);
    },
    [](void *instance) { delete static_cast<PluginProcess *>(instance); },
    [](void *instance, const char *event, const char *context, uint32_t timeout_ms, vik_errbuf *err) {
        return finish(self(instance).call("hooks.on_event", {{"event", event}, {"context", parse_or_null(context)}}, timeout_ms),
                      nullptr, err);
    },
};

// ---- agent runtimes ----------------------------------------------------------------------------
//
// A session is `runtime.start` (a request: its answer says only whether the plugin took it),
// then the plugin's notifications `session.event` {session_id, event}, `session.process`
// {session_id, pid} (the agent's pid, so that the control channel knows it as an agent) and one
// `session.finish` {session_id, outcome, detail}; the host sends `runtime.cancel` and, once it
// has the finish, `runtime.release` (both notifications with {session_id}). A child that ends
// finishes every session it ran as failed.

struct BridgeSession {
    std::string id;
    std::string issue_id, stage; // from the agent's environment: what its pid is recorded as
    vik_event_sink sink{};
    std::shared_ptr<process::ReadGate> consumer; // the session's consumer (EventPump); null: unbounded
    std::optional<uint64_t> generation;          // the child its start went to, once sent
    bool finished = false, cancelled = false, cancel_sent = false;
    std::vector<int64_t> pids;
};

class RuntimeBridge {
  public:
    // The I/O thread's callbacks use only copies (id, host, gate) and the sessions: they may run
    // while ~PluginProcess waits for the child, when process_ is already null.
    explicit RuntimeBridge(std::unique_ptr<PluginProcess> process)
        : process_(std::move(process)), id_(process_->id()), host_(process_->host()), gate_(process_->read_gate()) {
        process_->on_notification(
            [this](std::string_view method, const json::object &params) { on_notification(method, params); });
        process_->on_child_end([this](uint64_t generation, const std::string &how) { on_child_end(generation, how); });
    }
    ~RuntimeBridge() {
        // The host released every session. Starters still sending a start end with the call
        // (bounded by its deadline); then the child is told to shut down, and stopped.
        std::vector<std::thread> starters;
        {
            std::lock_guard lock(mu_);
            for (auto &[id, t] : starters_)
                starters.push_back(std::move(t));
            starters_.clear();
        }
        for (auto &t : starters)
            t.join();
        process_.reset();
    }
    RuntimeBridge(const RuntimeBridge &) = delete;
    RuntimeBridge &operator=(const RuntimeBridge &) = delete;

    PluginProcess &process() { return *process_; }

    vik_status start(const vik_session_request *req, const vik_event_sink *sink, void **out) {
        auto s = std::make_shared<BridgeSession>();
        s->id = req->session_id ? req->session_id : "";
        s->sink = *sink;
        s->consumer = process::current_spawn_gate();
        json::array env;
        for (auto e = req->env; e && *e; ++e) {
            std::string_view kv(*e);
            env.emplace_back(kv);
            if (kv.rfind("VIK_ISSUE_ID=", 0) == 0) s->issue_id = kv.substr(13);
            if (kv.rfind("VIK_ISSUE_STAGE=", 0) == 0) s->stage = kv.substr(16);
        }
        json::object params{{"session_id", s->id},
                            {"profile", parse_or_null(req->profile_json)},
                            {"prompt", std::string_view(req->prompt ? req->prompt : "", req->prompt ? req->prompt_len : 0)},
                            {"workdir", req->workdir ? req->workdir : ""},
                            {"env", std::move(env)}};
        if (VIK_SESSION_RESUMES(req)) params["resume_conversation"] = req->resume_conversation;
        // The start is sent from a thread of its own (starting the child may take seconds; start
        // may not block). Starters that ended are joined here; release never waits for one.
        std::vector<std::thread> ended;
        uint64_t serial;
        {
            std::lock_guard lock(mu_);
            sessions_[s->id] = s;
            for (auto id : ended_starters_) {
                auto it = starters_.find(id);
                if (it == starters_.end()) continue;
                ended.push_back(std::move(it->second));
                starters_.erase(it);
            }
            ended_starters_.clear();
            serial = ++starter_serial_;
        }
        for (auto &t : ended)
            t.join();
        std::thread starter([this, s, serial, params = std::move(params)]() mutable {
            send_start(s, std::move(params));
            std::lock_guard lock(mu_);
            ended_starters_.push_back(serial);
        });
        {
            std::lock_guard lock(mu_);
            starters_[serial] = std::move(starter);
        }
        *out = s.get();
        return VIK_OK;
    }

    vik_status cancel(void *session) {
        std::string id;
        {
            std::lock_guard lock(mu_);
            auto *s = static_cast<BridgeSession *>(session);
            if (s->finished || s->cancelled) return VIK_OK;
            s->cancelled = true;
            if (!s->generation) return VIK_OK; // the starter sees the flag before or after it sends
            s->cancel_sent = true;
            id = s->id;
        }
        process_->notify("runtime.cancel", {{"session_id", id}});
        return VIK_OK;
    }

    void release(void *session) {
        std::shared_ptr<BridgeSession> s;
        {
            std::lock_guard lock(mu_);
            auto it = sessions_.find(static_cast<BridgeSession *>(session)->id);
            if (it == sessions_.end()) return;
            s = it->second;
            sessions_.erase(it);
            for (int64_t pid : s->pids)
                forget_spawned_process(pid);
        }
        process_->notify("runtime.release", {{"session_id", s->id}});
    }

  private:
    // On a starter thread.
    void send_start(const std::shared_ptr<BridgeSession> &s, json::object params) {
        {
            std::lock_guard lock(mu_);
            if (s->cancelled) return finish(*s, VIK_SESSION_CANCELLED, "cancelled before the plugin started it");
        }
        auto answered = process_->call("runtime.start", std::move(params), kPluginStartTimeoutMs, [&](uint64_t g) {
            std::lock_guard lock(mu_);
            s->generation = g;
        });
        bool cancel_now;
        {
            std::lock_guard lock(mu_);
            if (!answered)
                return s->cancelled
                           ? finish(*s, VIK_SESSION_CANCELLED, "cancelled while the plugin started it")
                           : finish(*s, VIK_SESSION_FAILED, "the runtime did not start the session: " + answered.error().message);
            // A cancel that came while the start was on its way (before its generation was known).
            cancel_now = s->cancelled && !s->cancel_sent && !s->finished;
            if (cancel_now) s->cancel_sent = true;
        }
        if (cancel_now) process_->notify("runtime.cancel", {{"session_id", s->id}});
    }

    // mu_ held. Exactly once per session; nothing is emitted after it.
    void finish(BridgeSession &s, int32_t outcome, const std::string &detail) {
        if (s.finished) return;
        s.finished = true;
        s.sink.finish(s.sink.ctx, outcome, detail.c_str());
    }

    // On the process I/O thread.
    void on_notification(std::string_view method, const json::object &params) {
        const auto *idv = params.if_contains("session_id");
        std::string id = idv && idv->is_string() ? std::string(idv->get_string()) : "";
        std::unique_lock lock(mu_);
        auto it = sessions_.find(id);
        if (it == sessions_.end() || it->second->finished) {
            lock.unlock();
            if (method != "session.event" && method != "session.finish" && method != "session.process")
                log(VIK_LOG_WARN, "sent an unknown notification: " + std::string(method));
            else if (id.empty())
                log(VIK_LOG_WARN, "sent " + std::string(method) + " without a session_id");
            return; // a session that ended (or was released) already
        }
        BridgeSession &s = *it->second;
        if (method == "session.event") {
            const auto *event = params.if_contains("event");
            if (!event || !event->is_object()) {
                lock.unlock();
                return log(VIK_LOG_WARN, "sent session.event without an event object (session " + id + ")");
            }
            std::string text = json::serialize(*event);
            s.sink.emit(s.sink.ctx, text.data(), text.size());
            // The consumer is behind: the plugin's whole stream waits (its pipe fills) until it
            // caught up; one session's flood cannot grow the host's memory.
            if (s.consumer && !s.consumer->is_open()) {
                auto gate = gate_;
                gate->shut();
                if (s.consumer->admit([gate] { gate->open(); })) gate->open();
            }
        } else if (method == "session.finish") {
            const auto *o = params.if_contains("outcome");
            std::string outcome = o && o->is_string() ? std::string(o->get_string()) : "failed";
            const auto *d = params.if_contains("detail");
            std::string detail = d && d->is_string() ? std::string(d->get_string()) : "";
            finish(s,
                   outcome == "completed"   ? VIK_SESSION_COMPLETED
                   : outcome == "cancelled" ? VIK_SESSION_CANCELLED
                                            : VIK_SESSION_FAILED,
                   detail);
        } else if (method == "session.process") {
            const auto *pid = params.if_contains("pid");
            if (pid && pid->is_int64() && pid->get_int64() > 0 && !s.issue_id.empty()) {
                s.pids.push_back(pid->get_int64());
                record_spawned_process(pid->get_int64(), SpawnedProcess{id_, s.issue_id, s.stage});
            }
        } else {
            lock.unlock();
            log(VIK_LOG_WARN, "sent an unknown notification: " + std::string(method));
        }
    }

    // On the process I/O thread: what ran on the child that ended has failed.
    void on_child_end(uint64_t generation, const std::string &how) {
        std::lock_guard lock(mu_);
        for (auto &[id, s] : sessions_)
            if (s->generation == generation)
                finish(*s, VIK_SESSION_FAILED, "plugin '" + id_ + "': its process " + how + " while the session ran");
    }

    void log(int level, const std::string &text) { host_->log(host_->host_ctx, level, text.c_str()); }

    std::unique_ptr<PluginProcess> process_;
    const std::string id_;
    const vik_host_api *host_;
    const std::shared_ptr<process::ReadGate> gate_;
    std::mutex mu_; // what follows, and every BridgeSession's fields
    std::map<std::string, std::shared_ptr<BridgeSession>> sessions_;
    std::map<uint64_t, std::thread> starters_; // by serial; joined once ended (start) or at destruction
    std::vector<uint64_t> ended_starters_;
    uint64_t starter_serial_ = 0;
};

RuntimeBridge &runtime(void *instance) { return *static_cast<RuntimeBridge *>(instance); }

const vik_agent_runtime_v1 kRuntime{
    sizeof(vik_agent_runtime_v1),
    [](const vik_host_api *host, const char *settings, void **out, vik_errbuf *err) {
        auto p = make_process("runtime", host, settings, err);
        if (!p) return VIK_ERROR;
        auto bridge = std::make_unique<RuntimeBridge>(std::move(p)); // its handlers are set before the child runs
        if (vik_status st = start_process(bridge->process(), err); st != VIK_OK) return st;
        *out = bridge.release();
        return VIK_OK;
    },
    [](void *instance) { delete static_cast<RuntimeBridge *>(instance); },
    [](void *instance, const vik_session_request *request, const vik_event_sink *sink, void **out_session, vik_errbuf *) {
        return runtime(instance).start(request, sink, out_session);
    },
    [](void *instance, void *session) { return runtime(instance).cancel(session); },
    [](void *instance, void *session) { runtime(instance).release(session); },
};

const void *bridge_interface(const char *id) {
    if (std::strcmp(id, VIK_TRACKER_V1) == 0) return &kTracker;
    if (std::strcmp(id, VIK_HOOKS_V1) == 0) return &kHooks;
    if (std::strcmp(id, VIK_AGENT_RUNTIME_V1) == 0) return &kRuntime;
    return nullptr;
}

const vik_entry kBridgeEntry{VIK_ABI_MAJOR,    VIK_ABI_MINOR, sizeof(vik_entry),
                             "process-bridge", "1",           "out-of-process plugins over stdio",
                             bridge_interface, nullptr,       nullptr};

} // namespace

const vik_entry *process_bridge_entry() { return &kBridgeEntry; }

} // namespace vik::plugins
