// scripted-agent: an agent runtime for demos and tests.
//
// Either `settings.command` (run with `sh -c` in the workspace, prompt on stdin) or
// `settings.script` (a JSONL file replayed through `cat`) produces stdout lines. Each line that is
// a JSON object with a "kind" is an event of vik-host's vocabulary and is passed on as is; other
// JSON becomes `unknown`; a line that is not JSON becomes `error` (and fails the session, as in
// vik). The first `completed` or `error` event decides the outcome; a process that exits without
// one has failed. Stderr lines are kept as `stderr` events.
#include <vik/plugin.hpp>

#include <boost/json.hpp>

#include <atomic>
#include <csignal>
#include <cstring>
#include <mutex>

namespace {

namespace json = boost::json;

struct Runtime {
    const vik_host_api *host;
};

struct Session {
    const vik_host_api *host = nullptr;
    vik_event_sink sink{};
    vik_process *proc = nullptr;
    std::mutex mutex; // guards the fields below (process thread vs. cancel from any thread)
    int terminal = -1; // -1 none yet, else VIK_SESSION_COMPLETED / FAILED
    std::string terminal_detail;
    bool cancelled = false;

    void emit(const std::string &event) { sink.emit(sink.ctx, event.data(), event.size()); }

    void on_stdout(std::string_view line, bool truncated) {
        if (line.find_first_not_of(" \t\r") == std::string_view::npos) return; // blank lines carry nothing
        boost::system::error_code ec;
        json::value v = truncated ? json::value() : json::parse(line, ec);
        if (truncated || ec || !v.is_object()) {
            if (!truncated && !ec) { // valid JSON but not an object
                emit(json::serialize(json::object{{"kind", "unknown"}, {"event_type", ""}, {"raw", v}}));
                return;
            }
            std::string shown(line.substr(0, 200));
            std::string detail = truncated ? "agent printed a line longer than the line cap: " + shown
                                           : "agent printed a line that is not JSON: " + shown;
            emit(json::serialize(json::object{{"kind", "error"}, {"detail", detail}}));
            set_terminal(VIK_SESSION_FAILED, detail);
            return;
        }
        auto &obj = v.as_object();
        auto *kind = obj.if_contains("kind");
        if (kind == nullptr || !kind->is_string()) {
            std::string type = obj.contains("type") && obj.at("type").is_string() ? std::string(obj.at("type").as_string()) : "";
            emit(json::serialize(json::object{{"kind", "unknown"}, {"event_type", type}, {"raw", v}}));
            return;
        }
        emit(std::string(line));
        if (kind->as_string() == "completed") set_terminal(VIK_SESSION_COMPLETED, "");
        else if (kind->as_string() == "error") {
            auto *d = obj.if_contains("detail");
            set_terminal(VIK_SESSION_FAILED, d && d->is_string() ? std::string(d->as_string()) : "agent reported an error");
        }
    }

    void set_terminal(int outcome, std::string detail) {
        std::lock_guard lock(mutex);
        if (terminal >= 0) return;
        terminal = outcome;
        terminal_detail = std::move(detail);
    }

    void on_exit(int32_t code, int32_t sig) {
        int outcome;
        std::string detail;
        {
            std::lock_guard lock(mutex);
            if (terminal == VIK_SESSION_COMPLETED) {
                outcome = VIK_SESSION_COMPLETED;
            } else if (cancelled) {
                outcome = VIK_SESSION_CANCELLED;
                detail = "cancelled";
            } else if (terminal == VIK_SESSION_FAILED) {
                outcome = VIK_SESSION_FAILED;
                detail = terminal_detail;
            } else {
                outcome = VIK_SESSION_FAILED;
                detail = sig != 0    ? "agent was killed by signal " + std::to_string(sig) + " before a terminal event"
                         : code != 0 ? "agent exited with code " + std::to_string(code) + " before a terminal event"
                                     : "agent exited without a terminal event";
            }
        }
        sink.finish(sink.ctx, outcome, detail.c_str());
    }
};

vik_status create(const vik_host_api *host, const char *, void **out, vik_errbuf *err) {
    return vik::sdk::guarded(err, [&] {
        *out = new Runtime{host};
        return VIK_OK;
    });
}

void destroy(void *instance) { delete static_cast<Runtime *>(instance); }

vik_status start(void *instance, const vik_session_request *req, const vik_event_sink *sink, void **out_session, vik_errbuf *err) {
    return vik::sdk::guarded(err, [&]() -> vik_status {
        auto *rt = static_cast<Runtime *>(instance);
        json::value profile = json::parse(req->profile_json);
        const auto &p = profile.as_object();
        const json::object empty;
        const json::object &settings = p.contains("settings") && p.at("settings").is_object() ? p.at("settings").as_object() : empty;
        std::vector<std::string> argv;
        if (auto *cmd = settings.if_contains("command"); cmd && cmd->is_string()) {
            argv = {"sh", "-c", std::string(cmd->as_string())};
        } else if (auto *script = settings.if_contains("script"); script && script->is_string()) {
            std::string path(script->as_string());
            if (!path.empty() && path[0] != '/' && p.contains("workflow_dir") && p.at("workflow_dir").is_string())
                path = std::string(p.at("workflow_dir").as_string()) + "/" + path;
            argv = {"cat", "--", path};
        } else {
            std::string name = p.contains("name") && p.at("name").is_string() ? std::string(p.at("name").as_string()) : "?";
            throw vik::sdk::Error("scripted-agent: agent profile '" + name + "' needs settings.command or settings.script",
                                  VIK_INVALID_ARGUMENT);
        }
        auto session = std::make_unique<Session>();
        session->host = rt->host;
        session->sink = *sink;
        std::vector<const char *> cargv;
        for (auto &a : argv) cargv.push_back(a.c_str());
        cargv.push_back(nullptr);
        vik_process_spec spec{};
        spec.struct_size = sizeof spec;
        spec.argv = cargv.data();
        spec.env = req->env;
        spec.cwd = req->workdir;
        spec.pipe_stdin = true;
        vik_process_callbacks cb{};
        cb.struct_size = sizeof cb;
        cb.ctx = session.get();
        cb.on_stdout_line = [](void *ctx, const char *line, size_t len, bool truncated) {
            static_cast<Session *>(ctx)->on_stdout(std::string_view(line, len), truncated);
        };
        cb.on_stderr_line = [](void *ctx, const char *line, size_t len, bool) {
            static_cast<Session *>(ctx)->emit(json::serialize(json::object{{"kind", "stderr"}, {"line", std::string_view(line, len)}}));
        };
        cb.on_exit = [](void *ctx, int32_t code, int32_t sig) { static_cast<Session *>(ctx)->on_exit(code, sig); };
        if (rt->host->process_spawn(rt->host->host_ctx, &spec, &cb, &session->proc, err) != VIK_OK) return VIK_ERROR;
        rt->host->process_write_stdin(session->proc, req->prompt, req->prompt_len);
        rt->host->process_close_stdin(session->proc);
        *out_session = session.release();
        return VIK_OK;
    });
}

vik_status cancel(void *, void *session) {
    auto *s = static_cast<Session *>(session);
    {
        std::lock_guard lock(s->mutex);
        s->cancelled = true;
    }
    s->host->process_kill(s->proc, SIGKILL);
    return VIK_OK;
}

void release(void *, void *session) {
    auto *s = static_cast<Session *>(session);
    s->host->process_release(s->proc);
    delete s;
}

const vik_agent_runtime_v1 runtime = {sizeof(vik_agent_runtime_v1), create, destroy, start, cancel, release};

const void *get_interface(const char *id) { return std::strcmp(id, VIK_AGENT_RUNTIME_V1) == 0 ? &runtime : nullptr; }

} // namespace

VIK_PLUGIN("scripted-agent", "0.1.0",
           "A stand-in agent for demos and tests: runs a shell command or replays a JSONL script of events", get_interface);
