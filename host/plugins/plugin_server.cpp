#include "plugins/plugin_server.hpp"

#include "plugins/host_api.hpp"
#include "plugins/instances.hpp"
#include "plugins/manifest.hpp"
#include "plugins/plugin_call.hpp"
#include "plugins/registry.hpp"
#include "process/process_service.hpp"

#include <boost/json.hpp>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

namespace vik::plugins {

namespace json = boost::json;

namespace {

// The protocol's output: whole lines on the descriptor stdout was, one writer at a time.
class ProtocolOut {
  public:
    explicit ProtocolOut(int fd) : fd_(fd) {}
    void send(const json::object &message) {
        std::string line = json::serialize(message);
        line += '\n';
        std::lock_guard lock(mu_);
        const char *p = line.data();
        size_t left = line.size();
        while (left > 0) {
            ssize_t n = ::write(fd_, p, left);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return; // the host is gone; the next read ends the loop
            p += n;
            left -= static_cast<size_t>(n);
        }
    }

  private:
    int fd_;
    std::mutex mu_;
};

// The library's log lines (through the host API's log, i.e. spdlog) as `log` notifications.
class NotificationSink : public spdlog::sinks::base_sink<std::mutex> {
  public:
    explicit NotificationSink(ProtocolOut &out) : out_(out) {}

  protected:
    void sink_it_(const spdlog::details::log_msg &msg) override {
        const char *level = msg.level <= spdlog::level::debug  ? "debug"
                            : msg.level == spdlog::level::info ? "info"
                            : msg.level == spdlog::level::warn ? "warn"
                                                               : "error";
        out_.send(json::object{{"jsonrpc", "2.0"},
                               {"method", "log"},
                               {"params", {{"level", level}, {"message", std::string(msg.payload.begin(), msg.payload.end())}}}});
    }
    void flush_() override {}

  private:
    ProtocolOut &out_;
};

json::object error_reply(const json::value &id, vik_status status, const std::string &message) {
    return json::object{{"jsonrpc", "2.0"},
                        {"id", id},
                        {"error", {{"code", -32000}, {"message", message}, {"data", {{"status", status_name(status)}}}}}};
}

json::object result_reply(const json::value &id, json::value result) {
    return json::object{{"jsonrpc", "2.0"}, {"id", id}, {"result", std::move(result)}};
}

uint32_t timeout_of(const json::object &params) {
    if (const auto *t = params.if_contains("timeout_ms"); t && t->is_int64() && t->get_int64() >= 0)
        return static_cast<uint32_t>(std::min<int64_t>(t->get_int64(), UINT32_MAX));
    return 30'000;
}

std::string string_param(const json::object &params, const char *name) {
    const auto *v = params.if_contains(name);
    return v && v->is_string() ? std::string(v->get_string()) : std::string();
}

// One instance of the library's kind, created by `initialize`.
struct Served {
    std::shared_ptr<LoadedPlugin> plugin;
    std::unique_ptr<TrackerInstance> tracker;
    std::unique_ptr<HooksInstance> hooks;
    std::unique_ptr<RuntimeInstance> runtime;
    std::map<std::string, std::unique_ptr<AgentSession>> sessions; // by session id; the main thread's
    // Sessions whose finish was sent (from the I/O thread): at shutdown, a session is released
    // only after its finish, as the ABI requires.
    struct Finished {
        std::mutex mu;
        std::condition_variable cv;
        std::set<std::string> ids;
    };
    std::shared_ptr<Finished> finished = std::make_shared<Finished>();
};

// `runtime.start`, on the main thread (a runtime's start does not block). The session's events and
// its finish go to the host as notifications from the process I/O thread, in order.
json::object start_session(Served &s, ProtocolOut &out, const json::object &params, const json::value &id) {
    SessionStart req;
    req.session_id = string_param(params, "session_id");
    if (req.session_id.empty() || s.sessions.count(req.session_id))
        return error_reply(id, VIK_INVALID_ARGUMENT, "runtime.start needs a new session_id");
    const json::value *profile = params.if_contains("profile");
    req.profile_json = profile ? json::serialize(*profile) : "{}";
    req.prompt = string_param(params, "prompt");
    req.workdir = string_param(params, "workdir");
    req.resume_conversation = string_param(params, "resume_conversation");
    if (const auto *env = params.if_contains("env"); env && env->is_array())
        for (const auto &kv : env->get_array())
            if (kv.is_string()) req.env.emplace_back(kv.get_string());
    SessionListener listener;
    std::string session_id = req.session_id;
    listener.on_event = [&out, session_id](std::string_view event) {
        boost::system::error_code ec;
        json::value v = json::parse(event, ec);
        if (ec) v = json::object{{"kind", "error"}, {"detail", "the runtime emitted an event that is not JSON"}};
        out.send(json::object{
            {"jsonrpc", "2.0"}, {"method", "session.event"}, {"params", {{"session_id", session_id}, {"event", std::move(v)}}}});
    };
    listener.on_finish = [&out, session_id, finished = s.finished](int32_t outcome, std::string detail) {
        const char *name = outcome == VIK_SESSION_COMPLETED   ? "completed"
                           : outcome == VIK_SESSION_CANCELLED ? "cancelled"
                                                              : "failed";
        out.send(json::object{{"jsonrpc", "2.0"},
                              {"method", "session.finish"},
                              {"params", {{"session_id", session_id}, {"outcome", name}, {"detail", detail}}}});
        std::lock_guard lock(finished->mu);
        finished->ids.insert(session_id);
        finished->cv.notify_all();
    };
    // Handled where they arrive, in batches after each read: the host's pipe is the queue, and
    // a host that reads slowly makes this process stop reading the agent (its write blocks).
    listener.dispatch = [](std::function<void()> f) { f(); };
    SpawnWatch spawned;
    auto session = s.runtime->start(req, std::move(listener));
    if (!session) return error_reply(id, session.error().status, session.error().message);
    s.sessions[session_id] = std::move(*session);
    for (int64_t pid : spawned.pids()) // the agent: the host's control channel knows it by this pid
        out.send(json::object{
            {"jsonrpc", "2.0"}, {"method", "session.process"}, {"params", {{"session_id", session_id}, {"pid", pid}}}});
    return result_reply(id, json::object{});
}

json::object handle(Served &s, const Manifest &m, const std::string &method, const json::object &params, const json::value &id) {
    auto fail = [&](const PluginError &e) { return error_reply(id, e.status, e.message); };
    if (method == "initialize") {
        if (s.tracker || s.hooks || s.runtime) return error_reply(id, VIK_INVALID_ARGUMENT, "already initialized");
        PluginRecord record;
        s.plugin = load_in_process(m, record);
        if (!s.plugin) return error_reply(id, VIK_ERROR, record.error);
        std::string kind = string_param(params, "kind");
        const json::value *settings = params.if_contains("settings");
        std::string settings_text = settings ? json::serialize(*settings) : "{}";
        if (kind == "tracker") {
            auto t = TrackerInstance::create(s.plugin, settings_text);
            if (!t) return fail(t.error());
            s.tracker = std::move(*t);
        } else if (kind == "hooks") {
            auto h = HooksInstance::create(s.plugin, settings_text);
            if (!h) return fail(h.error());
            s.hooks = std::move(*h);
        } else if (kind == "runtime") {
            auto r = RuntimeInstance::create(s.plugin, settings_text);
            if (!r) return fail(r.error());
            s.runtime = std::move(*r);
        } else {
            return error_reply(id, VIK_UNSUPPORTED, "a served library is a tracker, hooks or runtime plugin, not '" + kind + "'");
        }
        return result_reply(id, json::object{{"plugin_id", m.id}});
    }
    uint32_t timeout = timeout_of(params);
    auto array_result = [&](const Result<std::string> &r) {
        if (!r) return fail(r.error());
        boost::system::error_code ec;
        json::value v = json::parse(*r, ec);
        if (ec) return error_reply(id, VIK_ERROR, "the plugin's answer is not JSON: " + ec.message());
        return result_reply(id, std::move(v));
    };
    if (method.rfind("tracker.", 0) == 0 && !s.tracker)
        return error_reply(id, VIK_UNSUPPORTED, "not initialized as a tracker plugin");
    if (method == "tracker.pull") return array_result(s.tracker->pull(timeout));
    if (method == "tracker.fetch") {
        const json::value *ids = params.if_contains("ids");
        return array_result(s.tracker->fetch(ids ? json::serialize(*ids) : "[]", timeout));
    }
    if (method == "tracker.set_state") {
        auto r = s.tracker->set_state(string_param(params, "id"), string_param(params, "state"), timeout);
        return r ? result_reply(id, nullptr) : fail(r.error());
    }
    if (method == "tracker.comment") {
        auto r = s.tracker->comment(string_param(params, "id"), string_param(params, "body"), timeout);
        return r ? result_reply(id, nullptr) : fail(r.error());
    }
    if (method == "hooks.on_event") {
        if (!s.hooks) return error_reply(id, VIK_UNSUPPORTED, "not initialized as a hooks plugin");
        const json::value *ctx = params.if_contains("context");
        auto r = s.hooks->on_event(string_param(params, "event"), ctx ? json::serialize(*ctx) : "{}", timeout);
        return r ? result_reply(id, nullptr) : fail(r.error());
    }
    return json::object{{"jsonrpc", "2.0"}, {"id", id}, {"error", {{"code", -32601}, {"message", "unknown method " + method}}}};
}

} // namespace

int serve_plugin(const std::filesystem::path &manifest_path) {
    // The protocol keeps the real stdout; whatever the library prints to fd 1 goes to stderr.
    int protocol_fd = ::dup(STDOUT_FILENO);
    if (protocol_fd < 0 || ::dup2(STDERR_FILENO, STDOUT_FILENO) < 0) {
        std::cerr << "plugin serve: cannot set up its output: " << std::strerror(errno) << "\n";
        return 1;
    }
    ProtocolOut out(protocol_fd);
    set_fatal_signal_consequence("this isolated plugin process stops; the host goes on and starts it again. Report it to "
                                 "the plugin's authors");
    auto logger = std::make_shared<spdlog::logger>("vik", std::make_shared<NotificationSink>(out));
    logger->set_level(spdlog::level::debug); // the host filters by its own level
    spdlog::set_default_logger(logger);
    auto manifest = read_manifest(manifest_path);
    if (!manifest) {
        std::cerr << "plugin serve: " << manifest.error() << "\n";
        return 1;
    }
    process::ProcessService processes; // the library's children (a pull command, a hook script)
    ProcessServiceBinding bind_processes(processes);
    Served served;
    struct Call {
        std::thread thread;
        std::shared_ptr<std::atomic<bool>> done;
    };
    std::vector<Call> calls;
    std::string line;
    while (std::getline(std::cin, line)) {
        boost::system::error_code ec;
        json::value v = json::parse(line, ec);
        const json::object *msg = ec ? nullptr : v.if_object();
        const json::value *method = msg ? msg->if_contains("method") : nullptr;
        if (!method || !method->is_string()) {
            out.send(
                json::object{{"jsonrpc", "2.0"}, {"id", nullptr}, {"error", {{"code", -32700}, {"message", "not a request"}}}});
            continue;
        }
        std::string name(method->get_string());
        if (name == "shutdown") break;
        const json::value *id = msg->if_contains("id");
        const json::value *params = msg->if_contains("params");
        json::object p = params && params->is_object() ? params->get_object() : json::object{};
        if (!id) { // a notification: nothing to answer
            auto session = served.sessions.find(string_param(p, "session_id"));
            if (session == served.sessions.end()) continue;
            if (name == "runtime.cancel") session->second->cancel();
            if (name == "runtime.release") { // the host has its finish
                std::lock_guard lock(served.finished->mu);
                served.finished->ids.erase(session->first);
                served.sessions.erase(session);
            }
            continue;
        }
        if (name == "initialize") { // before anything else can be answered
            out.send(handle(served, *manifest, name, p, *id));
            continue;
        }
        if (name == "runtime.start") {
            out.send(served.runtime ? start_session(served, out, p, *id)
                                    : error_reply(*id, VIK_UNSUPPORTED, "not initialized as a runtime plugin"));
            continue;
        }
        // Calls run side by side, as the host's workers would make them in process (the ABI lets
        // a plugin's worker calls overlap): a slow pull does not hold a set_state.
        std::erase_if(calls, [](Call &c) { // finished calls give their thread back
            if (!c.done->load()) return false;
            c.thread.join();
            return true;
        });
        auto done = std::make_shared<std::atomic<bool>>(false);
        calls.push_back(Call{std::thread([&served, &manifest, &out, name, p = std::move(p), id = *id, done] {
                                 out.send(handle(served, *manifest, name, p, id));
                                 done->store(true);
                             }),
                             done});
    }
    for (auto &c : calls)
        c.thread.join();
    for (auto &[id, session] : served.sessions) // the host is gone or stops: its agents stop too
        session->cancel();
    {
        // Released after their finish (a cancel's finish follows the agent's exit), within a bound.
        std::unique_lock lock(served.finished->mu);
        served.finished->cv.wait_for(lock, std::chrono::seconds(5), [&] {
            for (const auto &[id, session] : served.sessions)
                if (!served.finished->ids.count(id)) return false;
            return true;
        });
    }
    served.sessions.clear();
    served.runtime.reset();
    served.tracker.reset();
    served.hooks.reset();
    spdlog::set_default_logger(std::make_shared<spdlog::logger>("vik")); // nothing logs into a closed protocol
    return 0;
}

} // namespace vik::plugins
