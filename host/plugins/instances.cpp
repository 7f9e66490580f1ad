#include "plugins/instances.hpp"

#include "plugins/plugin_call.hpp"
#include "process/read_gate.hpp"

#include <spdlog/spdlog.h>
#include <vik/event_text.hpp>
#include <vik/plugin.hpp>

#include <atomic>
#include <mutex>
#include <optional>

namespace vik::plugins {

std::string status_name(vik_status status) {
    switch (status) {
    case VIK_OK:
        return "ok";
    case VIK_ERROR:
        return "error";
    case VIK_UNSUPPORTED:
        return "unsupported";
    case VIK_INVALID_ARGUMENT:
        return "invalid_argument";
    case VIK_TIMEOUT:
        return "timeout";
    case VIK_CANCELLED:
        return "cancelled";
    case VIK_NOT_FOUND:
        return "not_found";
    }
    return "status " + std::to_string(status);
}
namespace {

constexpr size_t kErrCap = 4096;

struct ErrBuf {
    char data[kErrCap] = {0};
    vik_errbuf buf{data, kErrCap};
    PluginError error(vik_status st) const {
        return PluginError{st, data[0] ? std::string(data) : "failed with status " + std::to_string(st)};
    }
};

// One worker call (tracker, hooks): crash attribution for its thread and its deadline, or, when
// the plugin has an overdue call already, the refusal to make it. A plugin running out of the
// host is bounded by its bridge instead (which kills a child that overruns), so never refused.
struct WorkerCall {
    WorkerCall(const LoadedPlugin &p, const char *call, const std::string &subject, uint32_t timeout_ms)
        : refusal(p.manifest.isolation == Isolation::process ? std::string() : WorkerCallDeadline::refusal(p.manifest.id)),
          scope(p.manifest.id, call, subject), deadline(p.manifest.id, call, subject, timeout_ms) {}
    std::string refusal; // non-empty: do not call the plugin
    PluginCallScope scope;
    WorkerCallDeadline deadline;
};

// Checks an interface table's size before we read fields of version 1.
template <class Table> const Table *table_for(const LoadedPlugin &p, Kind kind) {
    auto *t = static_cast<const Table *>(p.interface(kind));
    if (t == nullptr || t->struct_size < sizeof(Table)) return nullptr;
    return t;
}

template <class Table>
Result<std::pair<const Table *, void *>> create_instance(const LoadedPlugin &p, Kind kind, HostContext &ctx,
                                                         const std::string &settings) {
    auto *t = table_for<Table>(p, kind);
    if (t == nullptr)
        return std::unexpected(
            PluginError{VIK_UNSUPPORTED, "plugin '" + p.manifest.id + "' does not provide " + kind_interface_id(kind)});
    ErrBuf e;
    void *inst = nullptr;
    PluginCallScope scope(p.manifest.id, "create");
    ctx.manifest = &p.manifest;
    vik_status st = t->create(&ctx.api, settings.c_str(), &inst, &e.buf);
    if (st != VIK_OK) return std::unexpected(e.error(st));
    return std::make_pair(t, inst);
}

} // namespace

// ---- tracker --------------------------------------------------------------------------------

Result<std::unique_ptr<TrackerInstance>> TrackerInstance::create(std::shared_ptr<LoadedPlugin> plugin,
                                                                 const std::string &settings) {
    std::unique_ptr<TrackerInstance> self(new TrackerInstance());
    self->ctx_ = make_host_context(plugin->manifest.id, settings);
    auto made = create_instance<vik_tracker_v1>(*plugin, Kind::tracker, *self->ctx_, settings);
    if (!made) return std::unexpected(made.error());
    self->api_ = made->first;
    self->instance_ = made->second;
    self->plugin_ = std::move(plugin);
    return self;
}

TrackerInstance::~TrackerInstance() {
    if (api_ && instance_) api_->destroy(instance_);
}

Result<std::string> TrackerInstance::pull(uint32_t timeout_ms) {
    ErrBuf e;
    sdk::StringSink out;
    auto sink = out.sink();
    WorkerCall scope(*plugin_, "tracker.pull", {}, timeout_ms);
    if (!scope.refusal.empty()) return std::unexpected(PluginError{VIK_ERROR, scope.refusal});
    vik_status st = api_->pull(instance_, timeout_ms, &sink, &e.buf);
    if (st != VIK_OK) return std::unexpected(e.error(st));
    return std::move(out.text);
}

Result<std::string> TrackerInstance::fetch(const std::string &ids_json, uint32_t timeout_ms) {
    ErrBuf e;
    sdk::StringSink out;
    auto sink = out.sink();
    WorkerCall scope(*plugin_, "tracker.fetch", "ids " + ids_json.substr(0, 120), timeout_ms);
    if (!scope.refusal.empty()) return std::unexpected(PluginError{VIK_ERROR, scope.refusal});
    vik_status st = api_->fetch(instance_, ids_json.c_str(), timeout_ms, &sink, &e.buf);
    if (st != VIK_OK) return std::unexpected(e.error(st));
    return std::move(out.text);
}

Result<void> TrackerInstance::set_state(const std::string &id, const std::string &state, uint32_t timeout_ms) {
    ErrBuf e;
    WorkerCall scope(*plugin_, "tracker.set_state", "issue " + id, timeout_ms);
    if (!scope.refusal.empty()) return std::unexpected(PluginError{VIK_ERROR, scope.refusal});
    vik_status st = api_->set_state(instance_, id.c_str(), state.c_str(), timeout_ms, &e.buf);
    if (st != VIK_OK) return std::unexpected(e.error(st));
    return {};
}

Result<void> TrackerInstance::comment(const std::string &id, const std::string &body, uint32_t timeout_ms) {
    ErrBuf e;
    WorkerCall scope(*plugin_, "tracker.comment", "issue " + id, timeout_ms);
    if (!scope.refusal.empty()) return std::unexpected(PluginError{VIK_ERROR, scope.refusal});
    vik_status st = api_->comment(instance_, id.c_str(), body.c_str(), timeout_ms, &e.buf);
    if (st != VIK_OK) return std::unexpected(e.error(st));
    return {};
}

// ---- hooks ----------------------------------------------------------------------------------

Result<std::unique_ptr<HooksInstance>> HooksInstance::create(std::shared_ptr<LoadedPlugin> plugin, const std::string &settings) {
    std::unique_ptr<HooksInstance> self(new HooksInstance());
    self->ctx_ = make_host_context(plugin->manifest.id, settings);
    auto made = create_instance<vik_hooks_v1>(*plugin, Kind::hooks, *self->ctx_, settings);
    if (!made) return std::unexpected(made.error());
    self->api_ = made->first;
    self->instance_ = made->second;
    self->plugin_ = std::move(plugin);
    return self;
}

HooksInstance::~HooksInstance() {
    if (api_ && instance_) api_->destroy(instance_);
}

Result<void> HooksInstance::on_event(const std::string &event, const std::string &context_json, uint32_t timeout_ms) {
    ErrBuf e;
    WorkerCall scope(*plugin_, "hooks.on_event", event, timeout_ms);
    if (!scope.refusal.empty()) return std::unexpected(PluginError{VIK_ERROR, scope.refusal});
    vik_status st = api_->on_event(instance_, event.c_str(), context_json.c_str(), timeout_ms, &e.buf);
    if (st != VIK_OK) return std::unexpected(e.error(st));
    return {};
}

// ---- agent runtime --------------------------------------------------------------------------

// What a session's queue buffers keep between bursts (a few hundred ordinary events).
constexpr size_t kKeptQueueBytes = 64 * 1024;

// The queue of one session's events between the plugin's sink (any thread) and the listener's
// dispatch (the consumer's thread). The read gate it shuts is given to the processes the
// plugin starts during `start` (process::ScopedSpawnGate).
class EventPump : public std::enable_shared_from_this<EventPump> {
  public:
    EventPump(SessionListener listener, EventFlowLimits limits) : listener_(std::move(listener)), limits_(limits) {}

    bool bounded() const { return static_cast<bool>(listener_.dispatch); }
    const std::shared_ptr<process::ReadGate> &gate() const { return gate_; }

    // The producer's side: one short lock per event, no wake-up unless the consumer is idle.
    void emit(std::string_view event) {
        if (!bounded()) {
            if (listener_.on_event) listener_.on_event(event);
            return;
        }
        bool schedule;
        {
            std::lock_guard lock(mutex_);
            if (closed_) return;
            bytes_ += event.size();
            incoming_.push_back(event);
            if (++count_ >= limits_.max_events || bytes_ >= limits_.max_bytes) gate_->shut();
            schedule = !scheduled_;
            scheduled_ = true;
        }
        // Woken once per pipe read on the process I/O thread (read_gate.hpp), not per event.
        if (schedule) process::run_after_read([self = shared_from_this()] { self->post_drain(); });
    }

    void finish(int32_t outcome, std::string detail) {
        if (!bounded()) {
            if (listener_.on_finish) listener_.on_finish(outcome, std::move(detail));
            return;
        }
        bool schedule;
        {
            std::lock_guard lock(mutex_);
            if (closed_ || finish_) return;
            finish_.emplace(outcome, std::move(detail));
            schedule = !scheduled_;
            scheduled_ = true;
        }
        if (schedule) post_drain();
    }

    // No callback after this returns (when called on the dispatch thread); readers are let go.
    void close() {
        {
            std::lock_guard lock(mutex_);
            closed_ = true;
            incoming_.clear();
            count_ = 0;
            bytes_ = 0;
        }
        draining_.clear();
        gate_->open();
    }

  private:
    void post_drain() {
        listener_.dispatch([self = shared_from_this()] { self->drain(); });
    }

    // One batch on the consumer's thread, then yield (post again) so other handlers run. What
    // the producer queued is taken in one swap under the lock; the batch is handled outside it.
    void drain() {
        if (closed_) return;
        if (next_ == draining_.size()) {
            draining_.clear();
            draining_.shrink_if_over(kKeptQueueBytes); // a burst's buffer is not kept
            next_ = 0;
            std::lock_guard lock(mutex_);
            draining_.swap(incoming_);
        }
        size_t end = std::min(draining_.size(), next_ + limits_.batch_events);
        size_t handled_bytes = 0, handled = 0;
        for (; next_ < end && handled_bytes < limits_.batch_bytes; ++next_, ++handled) {
            if (closed_) return;
            handled_bytes += draining_[next_].size();
            if (listener_.on_event) listener_.on_event(draining_[next_]);
        }
        if (handled > 0 && !closed_ && listener_.on_batch_end) listener_.on_batch_end();
        std::optional<std::pair<int32_t, std::string>> fin;
        bool reopen, again;
        {
            std::lock_guard lock(mutex_);
            if (closed_) return;
            count_ -= handled;
            bytes_ -= handled_bytes;
            reopen = count_ <= limits_.max_events / 2 && bytes_ <= limits_.max_bytes / 2;
            bool more = next_ < draining_.size() || !incoming_.empty();
            if (!more && finish_ && !finish_taken_) {
                fin = std::move(finish_);
                finish_taken_ = true;
            }
            again = more;
            if (!again) scheduled_ = false;
        }
        if (reopen) gate_->open();
        if (fin && !closed_ && listener_.on_finish) listener_.on_finish(fin->first, std::move(fin->second));
        if (again) post_drain();
    }

    SessionListener listener_;
    EventFlowLimits limits_;
    std::shared_ptr<process::ReadGate> gate_ = std::make_shared<process::ReadGate>();
    std::mutex mutex_;
    // Events in one buffer each (no allocation per event once it has grown: a flood is hundreds
    // of thousands of events a second).
    vik::sdk::EventList incoming_; // the producer's side, under mutex_
    size_t count_ = 0, bytes_ = 0; // queued and not handled yet (both sides), under mutex_
    bool scheduled_ = false, finish_taken_ = false;
    std::atomic<bool> closed_{false};
    std::optional<std::pair<int32_t, std::string>> finish_;
    // The consumer's side (the dispatch thread only): the batch taken, handled up to next_.
    vik::sdk::EventList draining_;
    size_t next_ = 0;
};

Result<std::unique_ptr<RuntimeInstance>> RuntimeInstance::create(std::shared_ptr<LoadedPlugin> plugin,
                                                                 const std::string &settings) {
    std::unique_ptr<RuntimeInstance> self(new RuntimeInstance());
    self->ctx_ = make_host_context(plugin->manifest.id, settings);
    auto made = create_instance<vik_agent_runtime_v1>(*plugin, Kind::agent_runtime, *self->ctx_, settings);
    if (!made) return std::unexpected(made.error());
    self->api_ = made->first;
    self->instance_ = made->second;
    self->plugin_ = std::move(plugin);
    return self;
}

RuntimeInstance::~RuntimeInstance() {
    if (api_ && instance_) api_->destroy(instance_);
}

Result<std::unique_ptr<AgentSession>> RuntimeInstance::start(const SessionStart &req, SessionListener listener,
                                                             EventFlowLimits limits) {
    std::unique_ptr<AgentSession> session(new AgentSession());
    session->runtime_ = this;
    session->pump_ = std::make_shared<EventPump>(std::move(listener), limits);
    if (!session->pump_->bounded()) {
        static std::once_flag warned;
        std::call_once(warned, [] {
            spdlog::warn("agent events are delivered without flow control: the session listener has no dispatch "
                         "(see SessionListener in host/plugins/instances.hpp)");
        });
    }
    std::vector<const char *> env;
    for (const auto &kv : req.env)
        env.push_back(kv.c_str());
    env.push_back(nullptr);
    vik_session_request r{};
    r.struct_size = sizeof r;
    r.session_id = req.session_id.c_str();
    r.profile_json = req.profile_json.c_str();
    r.prompt = req.prompt.data();
    r.prompt_len = req.prompt.size();
    r.workdir = req.workdir.c_str();
    r.env = env.data();
    r.resume_conversation = req.resume_conversation.empty() ? nullptr : req.resume_conversation.c_str();
    vik_event_sink sink{};
    sink.ctx = session->pump_.get();
    sink.emit = [](void *ctx, const char *json, size_t len) { static_cast<EventPump *>(ctx)->emit(std::string_view(json, len)); };
    sink.finish = [](void *ctx, int32_t outcome, const char *detail) {
        static_cast<EventPump *>(ctx)->finish(outcome, detail ? detail : "");
    };
    ErrBuf e;
    vik_status st;
    {
        // Processes the plugin starts now are read only as fast as the session's events are handled.
        std::optional<process::ScopedSpawnGate> scope;
        if (session->pump_->bounded()) scope.emplace(session->pump_->gate());
        PluginCallScope call(plugin_id(), "runtime.start", "session " + req.session_id);
        st = api_->start(instance_, &r, &sink, &session->session_, &e.buf);
    }
    if (st != VIK_OK) {
        session->runtime_ = nullptr; // nothing to release
        return std::unexpected(e.error(st));
    }
    return session;
}

AgentSession::~AgentSession() {
    if (runtime_ && session_) {
        PluginCallScope call(runtime_->plugin_id(), "runtime.release");
        runtime_->api_->release(runtime_->instance_, session_);
    }
    if (pump_) pump_->close();
}

void AgentSession::cancel() {
    if (runtime_ && session_) {
        PluginCallScope call(runtime_->plugin_id(), "runtime.cancel");
        runtime_->api_->cancel(runtime_->instance_, session_);
    }
}

} // namespace vik::plugins
