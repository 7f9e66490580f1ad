// shell-hooks: runs the workflow's hook snippets with `sh -c` in the issue workspace.
//
// The host renders each snippet (escaping untrusted values for the shell) and passes it as
// context.script; this plugin only runs it, with the environment the host prepared (which carries
// VIK_ISSUE_* variables), under the given timeout. On timeout the host's process service kills
// the whole process group. Error texts follow vik: "hook `<name>` exited with non-zero status N: <tail>".
#include <vik/plugin.hpp>

#include <boost/json.hpp>

#include <cstring>

namespace {

namespace json = boost::json;

struct Hooks {
    const vik_host_api *host;
};

vik_status create(const vik_host_api *host, const char *, void **out, vik_errbuf *err) {
    return vik::sdk::guarded(err, [&] {
        *out = new Hooks{host};
        return VIK_OK;
    });
}

void destroy(void *instance) { delete static_cast<Hooks *>(instance); }

vik_status on_event(void *instance, const char *event, const char *context_json, uint32_t timeout_ms, vik_errbuf *err) {
    return vik::sdk::guarded(err, [&]() -> vik_status {
        auto *self = static_cast<Hooks *>(instance);
        json::value ctx = json::parse(context_json);
        const auto &obj = ctx.as_object();
        const json::value *script = obj.if_contains("script");
        if (script == nullptr || !script->is_string() || script->as_string().empty()) return VIK_OK; // nothing configured
        std::string name = obj.contains("hook") && obj.at("hook").is_string() ? std::string(obj.at("hook").as_string()) : event;
        std::vector<std::string> env;
        if (auto *e = obj.if_contains("env"); e && e->is_object())
            for (auto &[k, v] : e->as_object())
                if (v.is_string()) env.push_back(std::string(k) + "=" + std::string(v.as_string()));
        vik::sdk::RunOptions run;
        run.argv = {"sh", "-c", std::string(script->as_string())};
        run.env = &env;
        if (auto *w = obj.if_contains("workdir"); w && w->is_string()) run.cwd = std::string(w->as_string());
        run.timeout_ms = timeout_ms;
        auto r = vik::sdk::run_process(self->host, run);
        if (r.timed_out)
            throw vik::sdk::Error(
                "hook `" + name + "` timed out after " + std::to_string(timeout_ms) +
                    " ms (its process group was killed): " + vik::sdk::tail(r.err.empty() ? r.out : r.err, 2048),
                VIK_TIMEOUT);
        if (r.term_signal != 0)
            throw vik::sdk::Error("hook `" + name + "` was killed by signal " + std::to_string(r.term_signal) + ": " +
                                  vik::sdk::tail(r.err, 2048));
        if (r.exit_code != 0)
            throw vik::sdk::Error("hook `" + name + "` exited with non-zero status " + std::to_string(r.exit_code) + ": " +
                                  vik::sdk::tail(r.err.empty() ? r.out : r.err, 2048));
        return VIK_OK;
    });
}

const vik_hooks_v1 hooks = {sizeof(vik_hooks_v1), create, destroy, on_event};

const void *get_interface(const char *id) { return std::strcmp(id, VIK_HOOKS_V1) == 0 ? &hooks : nullptr; }

} // namespace

VIK_PLUGIN("shell-hooks", "0.1.0",
           "Runs the workflow's hook snippets (after_create, before_run, after_run, before_remove) with sh -c", get_interface);
