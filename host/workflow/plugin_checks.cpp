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

// A name two loaded plugins serve: which one would run depends on directory order, so it is an
// error naming both (remove one from the plugin directories).
void check_unique(const std::vector<std::shared_ptr<plugins::LoadedPlugin>> &providers, const std::string &pointer,
                  const std::string &what, const std::string &name, Diagnostics &d) {
    if (providers.size() < 2) return;
    std::string list;
    for (const auto &p : providers)
        list += (list.empty() ? "" : ", ") + p->manifest.id + " (" + p->manifest.path.string() + ")";
    d.items.push_back({Severity::error, pointer, "ambiguous_plugin", name, false,
                       "the " + what + " '" + name + "' set for '" + pointer + "' is served by " +
                           std::to_string(providers.size()) + " plugins: " + list +
                           "; remove all but one from the plugin directories"});
}

bool has_hook_scripts(const Config &c) {
    if (c.after_create || c.before_remove || c.on_completed || c.on_failed || c.on_blocked) return true;
    return std::any_of(c.stages.begin(), c.stages.end(), [](const Stage &s) { return s.before_run || s.after_run; });
}

void check_plugins(Config &c, const plugins::Registry &reg, Diagnostics &d) {
    c.plugin_secret_env.clear();
    if (has_hook_scripts(c) && reg.with_kind(plugins::Kind::hooks).empty())
        d.items.push_back({Severity::error, "issue.hooks", "missing_plugin", "hooks", false,
                           "the workflow has hook scripts but no hooks plugin is loaded (the built-in shell-hooks plugin "
                           "runs them; check --plugins and --no-builtin-plugins)"});
    for (const auto &h : reg.with_kind(plugins::Kind::hooks))
        add_secrets(c.plugin_secret_env, h->manifest.secret_env);
    for (const auto &a : c.agents) {
        auto p = reg.find_runtime(a.runtime);
        if (!p) {
            d.unknown_plugin_name("agents." + a.name + ".runtime", "unknown_runtime", "runtime", a.runtime, reg.runtime_names());
            continue;
        }
        check_unique(reg.runtime_providers(a.runtime), "agents." + a.name + ".runtime", "runtime", a.runtime, d);
        check_settings(a.settings, p->manifest, "agents." + a.name + ".settings", d, false);
        if (a.resume && !p->manifest.resumes_conversations)
            d.items.push_back({Severity::warning, "agents." + a.name + ".resume", "resume_unsupported", a.runtime, false,
                               "the runtime '" + a.runtime + "' (" + p->manifest.id +
                                   ") cannot continue conversations: every run of this profile starts a fresh one with the "
                                   "stage's full prompt; remove `resume` or use a runtime that can"});
    }
    auto t = reg.find_tracker(c.tracker_kind);
    if (!t) {
        d.unknown_plugin_name("issues.tracker.kind", "unknown_tracker", "tracker", c.tracker_kind, reg.tracker_names());
        return;
    }
    check_unique(reg.tracker_providers(c.tracker_kind), "issues.tracker.kind", "tracker", c.tracker_kind, d);
    const plugins::Manifest &m = t->manifest;
    add_secrets(c.plugin_secret_env, m.secret_env);
    if (m.settings_from == plugins::SettingsSource::pull_command && !c.pull_command)
        d.items.push_back({Severity::error, "issues.pull.command", "missing_setting", plugins::kPullCommandSetting, false,
                           "'issues.pull.command' is required by the '" + c.tracker_kind + "' tracker (" + m.id +
                               " takes its settings from the pull command, " + m.path.string() + ")"});
    check_settings(c.tracker_settings, m, "issues.tracker", d, true);
    for (const auto &[key, spec] : m.settings)
        if (spec.required && !host_supplied(key, m.settings_from) && !c.tracker_settings.contains(key))
            d.items.push_back(
                {Severity::error, "issues.tracker." + key, "missing_setting", key, false,
                 "'issues.tracker." + key + "' is required by the '" + c.tracker_kind + "' tracker (" + spec.description + ")"});
}

} // namespace vik::workflow
