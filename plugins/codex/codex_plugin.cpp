// The codex agent runtime. Its session handling lands with the agent-runtime work; until then
// every operation says plainly that it is unsupported instead of pretending to succeed.
#include <vik/plugin.hpp>

#include <cstring>

namespace {

constexpr const char *kId = "codex";

vik_status create(const vik_host_api *, const char *, void **out, vik_errbuf *) {
    *out = nullptr;
    return VIK_OK;
}
void destroy(void *) {}
vik_status start(void *, const vik_session_request *, const vik_event_sink *, void **, vik_errbuf *err) {
    return vik::sdk::unsupported(err, kId, "start (codex sessions are not implemented yet)");
}
vik_status cancel(void *, void *) { return VIK_UNSUPPORTED; }
void release(void *, void *) {}

const vik_agent_runtime_v1 runtime = {sizeof(vik_agent_runtime_v1), create, destroy, start, cancel, release};

const void *get_interface(const char *id) {
    return std::strcmp(id, VIK_AGENT_RUNTIME_V1) == 0 ? &runtime : nullptr;
}

} // namespace

VIK_PLUGIN("codex", "0.1.0", "Runs OpenAI Codex CLI sessions (codex exec --json)", get_interface);
