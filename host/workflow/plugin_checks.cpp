#include "workflow/plugin_checks.hpp"

#include "plugins/registry.hpp"

#include <algorithm>

namespace vik::workflow {

namespace {
// Settings the host itself gives every tracker (tracker_factory.cpp), and those it gives a tracker
// whose settings come from issues.pull.command. A manifest may list them; a workflow need not.
bool host_supplied(const std::string &key, plugins::SettingsSource from) {
    if (key == "workflow_dir" || key == "timeout_ms") return true;
    return from == plugins::SettingsSource::pull_command &&
           (key == plugins::kPullCommandSetting || key == plugins::kPullCwdSetting);
}

// `token_env` is the host's own tracker key (the secret kept out of agent environments).
void check_settings(const boost::json::object &settings, const plugins::Manifest &m, const std::string &prefix, Diagnostics &d,
                    bool tracker) {
    for (const auto &kv : settings) {
        std::string key(kv.key());
        if (tracker && key == "token_env") continue;
        if (!m.settings.count(key)) d.unknown_field(prefix + "." + key);
    }
}

void add_secrets(std::vector<std::string> &names, const std::vector<std::string> &more) {
    for (const auto &n : more)
        if (std::find(names.begin(), names.end(), n) == names.end()) names.push_back(n);
}
} // namespace

void check_plugins(Config &c, const plugins::Registry &reg, Diagnostics &d) {
    c.plugin_secret_env.clear();
    for (const auto &h : reg.with_kind(plugins::Kind::hooks))
        add_secrets(c.plugin_secret_env, h->manifest.secret_env);
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
    const plugins::Manifest &m = t->manifest;
    add_secrets(c.plugin_secret_env, m.secret_env);
    if (m.settings_from == plugins::SettingsSource::pull_command && !c.pull_command)
        d.items.push_back({Severity::error, "issues.pull.command", "missing_setting", plugins::kPullCommandSetting, false,
                           "'issues.pull.command' is required by the '" + c.tracker_kind + "' tracker (" + m.id +
                               " takes its settings from the pull command, " + m.path.string() + ")"});
    check_settings(c.tracker_settings, m, "issues.tracker", d, true);
    for (const auto &[key, spec] : m.settings)
        if (spec.required && !host_supplied(key, m.settings_from) && !c.tracker_settings.contains(key))
            d.items.push_back({Severity::error, "issues.tracker." + key, "missing_setting", key, false,
                               "'issues.tracker." + key + "' is required by the '" + c.tracker_kind + "' tracker (" +
                                   spec.description + ")"});
}

} // namespace vik::workflow
