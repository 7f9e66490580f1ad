// vik/process_session.hpp: header-only helper for agent runtimes that run one child process per
// session (a CLI reading the prompt on stdin and printing one JSON event per line).
//
// Derive from ProcessSession, map each stdout line to events in on_stdout_line() (call emit()
// and settle()), decide the outcome in outcome() once the process exited, and expose the
// runtime with `process_runtime<YourSession>()`. Process supervision (own process group, stdin,
// line caps, kill on cancel, no orphans) is the host's; this class only wires it up and
// guarantees exactly one `finish` per started session.
#ifndef VIK_PROCESS_SESSION_HPP
#define VIK_PROCESS_SESSION_HPP

#include <vik/plugin.hpp>

#include <csignal>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace vik::sdk {

class ProcessSession {
  public:
    virtual ~ProcessSession() = default;

    // The command to run. Called once, before start.
    virtual std::vector<std::string> argv() const = 0;
    // One stdout line (without its newline). [process] thread.
    virtual void on_stdout_line(std::string_view line, bool truncated) = 0;
    // The outcome after the process exited: VIK_SESSION_* and a reason. [process] thread.
    // `cancelled` is true when cancel() was called; settled()/detail() tell what the output said.
    virtual int32_t outcome(int32_t exit_code, int32_t term_signal, bool cancelled, std::string &detail) = 0;
    // "KEY=VALUE" entries added to the environment the host gave; they replace the host's entry
    // of the same name. Called once, before start.
    virtual std::vector<std::string> extra_env() const { return {}; }

    // For subclasses: report one event (a JSON object with "kind").
    void emit(std::string_view event_json) { sink_.emit(sink_.ctx, event_json.data(), event_json.size()); }
    // For subclasses: the first terminal word of the output (completed or failed) wins.
    void settle(int32_t outcome, const std::string &detail) {
        std::lock_guard lock(mutex_);
        if (settled_ >= 0) return;
        settled_ = outcome;
        settled_detail_ = detail;
    }
    int32_t settled() const {
        std::lock_guard lock(mutex_);
        return settled_;
    }
    std::string settled_detail() const {
        std::lock_guard lock(mutex_);
        return settled_detail_;
    }
    // The last stderr lines (kept for failure messages; also emitted as `stderr` events).
    std::string stderr_tail() const {
        std::lock_guard lock(mutex_);
        return stderr_tail_;
    }

    // ---- plumbing used by process_runtime -------------------------------------------------

    vik_status start(const vik_host_api *host, const vik_session_request *req, const vik_event_sink *sink, vik_errbuf *err) {
        host_ = host;
        sink_ = *sink;
        std::vector<std::string> args = argv();
        std::vector<const char *> cargv;
        for (const auto &a : args)
            cargv.push_back(a.c_str());
        cargv.push_back(nullptr);
        std::vector<std::string> added = extra_env();
        std::vector<const char *> cenv;
        if (!added.empty()) {
            auto replaced = [&](const char *e) {
                for (const auto &a : added)
                    if (size_t eq = a.find('='); eq != std::string::npos && std::strncmp(e, a.c_str(), eq + 1) == 0) return true;
                return false;
            };
            for (const char *const *e = req->env; e && *e; ++e)
                if (!replaced(*e)) cenv.push_back(*e);
            for (const auto &e : added)
                cenv.push_back(e.c_str());
            cenv.push_back(nullptr);
        }
        vik_process_spec spec{};
        spec.struct_size = sizeof spec;
        spec.argv = cargv.data();
        spec.env = added.empty() ? req->env : cenv.data();
        spec.cwd = req->workdir;
        spec.pipe_stdin = true;
        vik_process_callbacks cb{};
        cb.struct_size = sizeof cb;
        cb.ctx = this;
        cb.on_stdout_line = [](void *ctx, const char *line, size_t len, bool truncated) {
            static_cast<ProcessSession *>(ctx)->on_stdout_line(std::string_view(line, len), truncated);
        };
        cb.on_stderr_line = [](void *ctx, const char *line, size_t len, bool) {
            static_cast<ProcessSession *>(ctx)->on_stderr(std::string_view(line, len));
        };
        cb.on_exit = [](void *ctx, int32_t code, int32_t sig) { static_cast<ProcessSession *>(ctx)->exited(code, sig); };
        if (host->process_spawn(host->host_ctx, &spec, &cb, &proc_, err) != VIK_OK) return VIK_ERROR;
        host->process_write_stdin(proc_, req->prompt, req->prompt_len);
        host->process_close_stdin(proc_);
        return VIK_OK;
    }

    void cancel() {
        {
            std::lock_guard lock(mutex_);
            cancelled_ = true;
        }
        if (proc_) host_->process_kill(proc_, SIGKILL);
    }

    void release() {
        if (proc_) host_->process_release(proc_);
        proc_ = nullptr;
    }

  private:
    void on_stderr(std::string_view line) {
        {
            std::lock_guard lock(mutex_);
            stderr_tail_.append(line);
            stderr_tail_.push_back('\n');
            if (stderr_tail_.size() > 2048) stderr_tail_.erase(0, stderr_tail_.size() - 2048);
        }
        std::string escaped;
        for (char c : line) {
            if (c == '"' || c == '\\')
                escaped += '\\', escaped += c;
            else if (static_cast<unsigned char>(c) < 0x20) {
                char buf[8];
                std::snprintf(buf, sizeof buf, "\\u%04x", c);
                escaped += buf;
            } else
                escaped += c;
        }
        emit("{\"kind\":\"stderr\",\"line\":\"" + escaped + "\"}");
    }

    void exited(int32_t code, int32_t sig) {
        bool cancelled;
        {
            std::lock_guard lock(mutex_);
            cancelled = cancelled_;
        }
        std::string detail;
        int32_t o = outcome(code, sig, cancelled, detail);
        sink_.finish(sink_.ctx, o, detail.c_str());
    }

    const vik_host_api *host_ = nullptr;
    vik_event_sink sink_{};
    vik_process *proc_ = nullptr;
    mutable std::mutex mutex_;
    int32_t settled_ = -1;
    std::string settled_detail_, stderr_tail_;
    bool cancelled_ = false;
};

// The agent-runtime table for a session factory. Factory must provide
// `static std::unique_ptr<S> make(const vik_host_api *host, const vik_session_request *req)` for
// some S derived from ProcessSession; it may throw vik::sdk::Error for a bad profile.
template <class Session> const vik_agent_runtime_v1 *process_runtime() {
    static const vik_agent_runtime_v1 table = {
        sizeof(vik_agent_runtime_v1),
        [](const vik_host_api *host, const char *, void **out, vik_errbuf *) -> vik_status {
            *out = const_cast<vik_host_api *>(host);
            return VIK_OK;
        },
        [](void *) {},
        [](void *instance, const vik_session_request *req, const vik_event_sink *sink, void **out, vik_errbuf *err) {
            return guarded(err, [&]() -> vik_status {
                auto *host = static_cast<const vik_host_api *>(instance);
                std::unique_ptr<ProcessSession> s = Session::make(host, req);
                if (s->start(host, req, sink, err) != VIK_OK) return VIK_ERROR;
                *out = s.release();
                return VIK_OK;
            });
        },
        [](void *, void *session) -> vik_status {
            static_cast<ProcessSession *>(session)->cancel();
            return VIK_OK;
        },
        [](void *, void *session) {
            auto *s = static_cast<ProcessSession *>(session);
            s->release();
            delete s;
        }};
    return &table;
}

} // namespace vik::sdk

#endif // VIK_PROCESS_SESSION_HPP
