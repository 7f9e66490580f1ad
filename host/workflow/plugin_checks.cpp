#include "workflow/plugin_checks.hpp"

#include "plugins/registry.hpp"

namespace vik::workflow {

namespace {
// `token_env` is the host's own tracker key (the secret kept out of agent environments).
void check_settings(const boost::json::object &settings, const plugins::Manifest &m, const std::string &prefix, Diagnostics &d,
                    bool tracker) {
    for (const auto &kv : settings) {
        std::string key(kv.key());
        if (tracker && key == "token_env") continue;
        if (!m.settings.count(key)) d.unknown_field(prefix + "." + key);
    }
}
} // namespace

void check_plugins(const Config &c, const plugins::Registry &reg, Diagnostics &d) {
    for (const auto &a : c.agents) {
        auto p = reg.find_runtime(a.runtime);
        if (!p) {
            d.unknown_plugin_name("agents." + a.name + ".runtime", "unknown_runtime", "runtime", a.runtime, reg.runtime_names());
            continue;
        }
        check_settings(a.settings, p->manifest, "agents." + a.name + ".settings", d, false);
    }
    auto t = reg.find_tracker(c.tracker_kind);
    if (!t) {
        d.unknown_plugin_name("issues.tracker.kind", "unknown_tracker", "tracker", c.tracker_kind, reg.tracker_names());
        return;
    }
    if (c.tracker_kind == "command") return; // its settings come from issues.pull
    check_settings(c.tracker_settings, t->manifest, "issues.tracker", d, true);
    for (const auto &[key, spec] : t->manifest.settings)
        if (spec.required && !c.tracker_settings.contains(key))
            d.items.push_back({Severity::error, "issues.tracker." + key, "missing_setting", key, false,
                               "'issues.tracker." + key + "' is required by the '" + c.tracker_kind + "' tracker (" +
                                   spec.description + ")"});
}

} // namespace vik::workflow
