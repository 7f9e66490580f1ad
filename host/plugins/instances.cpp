#include "plugins/instances.hpp"

#include <vik/plugin.hpp>

namespace vik::plugins {
namespace {

constexpr size_t kErrCap = 4096;

struct ErrBuf {
    char data[kErrCap] = {0};
    vik_errbuf buf{data, kErrCap};
    PluginError error(vik_status st) const {
        return PluginError{st, data[0] ? std::string(data) : "failed with status " + std::to_string(st)};
    }
};

// Checks an interface table's size before we read fields of version 1.
template <class Table>
const Table *table_for(const LoadedPlugin &p, Kind kind) {
    auto *t = static_cast<const Table *>(p.interface(kind));
    if (t == nullptr || t->struct_size < sizeof(Table)) return nullptr;
    return t;
}

template <class Table>
Result<std::pair<const Table *, void *>> create_instance(const LoadedPlugin &p, Kind kind, HostContext &ctx,
                                                         const std::string &settings) {
    auto *t = table_for<Table>(p, kind);
    if (t == nullptr)
        return std::unexpected(PluginError{VIK_UNSUPPORTED, "plugin '" + p.manifest.id + "' does not provide " + kind_interface_id(kind)});
    ErrBuf e;
    void *inst = nullptr;
    vik_status st = t->create(&ctx.api, settings.c_str(), &inst, &e.buf);
    if (st != VIK_OK) return std::unexpected(e.error(st));
    return std::make_pair(t, inst);
}

} // namespace

// ---- tracker --------------------------------------------------------------------------------

Result<std::unique_ptr<TrackerInstance>> TrackerInstance::create(std::shared_ptr<LoadedPlugin> plugin, const std::string &settings) {
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
    vik_status st = api_->pull(instance_, timeout_ms, &sink, &e.buf);
    if (st != VIK_OK) return std::unexpected(e.error(st));
    return std::move(out.text);
}

Result<std::string> TrackerInstance::fetch(const std::string &ids_json, uint32_t timeout_ms) {
    ErrBuf e;
    sdk::StringSink out;
    auto sink = out.sink();
    vik_status st = api_->fetch(instance_, ids_json.c_str(), timeout_ms, &sink, &e.buf);
    if (st != VIK_OK) return std::unexpected(e.error(st));
    return std::move(out.text);
}

Result<void> TrackerInstance::set_state(const std::string &id, const std::string &state, uint32_t timeout_ms) {
    ErrBuf e;
    vik_status st = api_->set_state(instance_, id.c_str(), state.c_str(), timeout_ms, &e.buf);
    if (st != VIK_OK) return std::unexpected(e.error(st));
    return {};
}

Result<void> TrackerInstance::comment(const std::string &id, const std::string &body, uint32_t timeout_ms) {
    ErrBuf e;
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
    vik_status st = api_->on_event(instance_, event.c_str(), context_json.c_str(), timeout_ms, &e.buf);
    if (st != VIK_OK) return std::unexpected(e.error(st));
    return {};
}

// ---- agent runtime --------------------------------------------------------------------------

Result<std::unique_ptr<RuntimeInstance>> RuntimeInstance::create(std::shared_ptr<LoadedPlugin> plugin, const std::string &settings) {
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

Result<std::unique_ptr<AgentSession>> RuntimeInstance::start(const SessionStart &req, SessionListener listener) {
    std::unique_ptr<AgentSession> session(new AgentSession());
    session->runtime_ = this;
    session->listener_ = std::make_unique<SessionListener>(std::move(listener));
    std::vector<const char *> env;
    for (const auto &kv : req.env) env.push_back(kv.c_str());
    env.push_back(nullptr);
    vik_session_request r{};
    r.struct_size = sizeof r;
    r.session_id = req.session_id.c_str();
    r.profile_json = req.profile_json.c_str();
    r.prompt = req.prompt.data();
    r.prompt_len = req.prompt.size();
    r.workdir = req.workdir.c_str();
    r.env = env.data();
    vik_event_sink sink{};
    sink.ctx = session->listener_.get();
    sink.emit = [](void *ctx, const char *json, size_t len) {
        auto *l = static_cast<SessionListener *>(ctx);
        if (l->on_event) l->on_event(std::string(json, len));
    };
    sink.finish = [](void *ctx, int32_t outcome, const char *detail) {
        auto *l = static_cast<SessionListener *>(ctx);
        if (l->on_finish) l->on_finish(outcome, detail ? detail : "");
    };
    ErrBuf e;
    vik_status st = api_->start(instance_, &r, &sink, &session->session_, &e.buf);
    if (st != VIK_OK) {
        session->runtime_ = nullptr; // nothing to release
        return std::unexpected(e.error(st));
    }
    return session;
}

AgentSession::~AgentSession() {
    if (runtime_ && session_) runtime_->api_->release(runtime_->instance_, session_);
}

void AgentSession::cancel() {
    if (runtime_ && session_) runtime_->api_->cancel(runtime_->instance_, session_);
}

} // namespace vik::plugins
