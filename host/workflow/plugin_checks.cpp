#include "workflow/plugin_checks.hpp"

#include "plugins/registry.hpp"

#include <algorithm>
#include <optional>

namespace vik::workflow {

namespace {
// Settings the host itself gives every tracker (tracker_factory.cpp), and those it gives a tracker
// whose settings come from issues.pull.command. A manifest may list them; a workflow need not.
bool host_supplied(const std::string &key, plugins::SettingsSource from) {
    if (key == "workflow_dir" || key == "timeout_ms") return true;
    return from == plugins::SettingsSource::pull_command &&
           (key == plugins::kPullCommandSetting || key == plugins::kPullCwdSetting);
}

// Whether a value has the type a manifest declares for it (string | integer | boolean | array |
// table | any).
bool has_type(const boost::json::value &v, const std::string &type) {
    if (type == "string") return v.is_string();
    if (type == "integer") return v.is_int64() || v.is_uint64();
    if (type == "boolean") return v.is_bool();
    if (type == "array") return v.is_array();
    if (type == "table") return v.is_object();
    return true;
}

const char *json_type(const boost::json::value &v) {
    switch (v.kind()) {
    case boost::json::kind::string:
        return "a string";
    case boost::json::kind::int64:
    case boost::json::kind::uint64:
        return "an integer";
    case boost::json::kind::double_:
        return "a number";
    case boost::json::kind::bool_:
        return "a boolean";
    case boost::json::kind::array:
        return "a list";
    case boost::json::kind::object:
        return "a map";
    default:
        return "null";
    }
}

// `token_env` is the host's own tracker key (the secret kept out of agent environments). Keys the
// manifest does not declare are warnings; a declared key of the wrong type is an error (the
// plugin would refuse it at create, or worse, misread it).
void check_settings(const boost::json::object &settings, const plugins::Manifest &m, const std::string &prefix, Diagnostics &d,
                    bool tracker) {
    for (const auto &kv : settings) {
        std::string key(kv.key());
        if (tracker && key == "token_env") continue;
        auto spec = m.settings.find(key);
        if (spec == m.settings.end()) {
            d.unknown_field(prefix + "." + key);
        } else if (!has_type(kv.value(), spec->second.type)) {
            std::string expected = spec->second.type == "table"   ? "map"
                                   : spec->second.type == "array" ? "list"
                                                                  : spec->second.type;
            d.items.push_back({Severity::error, prefix + "." + key, "invalid_setting_type", key, false,
                               "'" + prefix + "." + key + "' is " + json_type(kv.value()) + ", but the plugin '" + m.id +
                                   "' expects a " + expected + " (its manifest, " + m.path.filename().string() + ": settings." +
                                   key + ".type)"});
        }
    }
}

void add_secrets(std::vector<std::string> &names, const std::vector<std::string> &more) {
    for (const auto &n : more)
        if (std::find(names.begin(), names.end(), n) == names.end()) names.push_back(n);
}

bool has_kind(const plugins::Manifest &m, plugins::Kind k) {
    return std::find(m.kinds.begin(), m.kinds.end(), k) != m.kinds.end();
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

std::vector<std::shared_ptr<plugins::LoadedPlugin>> selected_hooks(const Config &c, const plugins::Registry &reg) {
    if (!c.plugins.hooks) return reg.with_kind(plugins::Kind::hooks);
    std::vector<std::shared_ptr<plugins::LoadedPlugin>> out;
    for (const auto &id : *c.plugins.hooks)
        if (auto p = reg.find_id(id); p && has_kind(p->manifest, plugins::Kind::hooks)) out.push_back(p);
    return out;
}

namespace {

std::string loaded_ids(const plugins::Registry &reg, std::optional<plugins::Kind> kind) {
    std::string list;
    for (const auto &p : reg.plugins)
        if (!kind || has_kind(p->manifest, *kind)) list += (list.empty() ? "" : ", ") + p->manifest.id;
    return list.empty() ? "none" : list;
}

// `plugins:`: the hooks plugins named are loaded hooks plugins; settings go to a loaded plugin
// that takes plugin-wide settings, and are ones its manifest accepts.
void check_selection(const Config &c, const plugins::Registry &reg, Diagnostics &d) {
    if (c.plugins.hooks)
        for (const auto &id : *c.plugins.hooks) {
            auto p = reg.find_id(id);
            if (p && has_kind(p->manifest, plugins::Kind::hooks)) continue;
            d.items.push_back({Severity::error, "plugins.hooks", "unknown_plugin", id, false,
                               "'plugins.hooks' names '" + id + "', which " +
                                   (p ? std::string("is not a hooks plugin") : std::string("is not a loaded plugin")) +
                                   " (hooks plugins loaded: " + loaded_ids(reg, plugins::Kind::hooks) + ")"});
        }
    for (const auto &id : c.plugins.isolate) {
        auto p = reg.find_id(id);
        if (!p)
            d.items.push_back({Severity::error, "plugins.isolate", "unknown_plugin", id, false,
                               "'plugins.isolate' names '" + id +
                                   "', which is not a loaded plugin (loaded: " + loaded_ids(reg, std::nullopt) + ")"});
    }
    for (const auto &[id, settings] : c.plugins.settings) {
        std::string pointer = "plugins.settings." + id;
        auto p = reg.find_id(id);
        if (!p) {
            d.items.push_back({Severity::warning, pointer, "unknown_plugin", id, false,
                               "'" + pointer + "' names no loaded plugin, so it never applies (loaded: " +
                                   loaded_ids(reg, std::nullopt) + "); fix the id or remove it"});
            continue;
        }
        const auto &m = p->manifest;
        if (!has_kind(m, plugins::Kind::hooks) && !has_kind(m, plugins::Kind::agent_runtime)) {
            d.items.push_back({Severity::error, pointer, "misplaced_setting", id, false,
                               "'" + id + "' is a tracker plugin: its settings are the keys of issues.tracker, not " + pointer});
            continue;
        }
        check_settings(settings, m, pointer, d, false);
    }
    // A hooks plugin gets no other settings: what its manifest requires must be in
    // plugins.settings. (A runtime's manifest describes its profiles' settings, agents.X.settings.)
    static const boost::json::object none;
    for (const auto &p : selected_hooks(c, reg)) {
        const auto &m = p->manifest;
        if (has_kind(m, plugins::Kind::agent_runtime)) continue;
        auto given = c.plugins.settings.find(m.id);
        const boost::json::object &settings = given == c.plugins.settings.end() ? none : given->second;
        for (const auto &[key, spec] : m.settings)
            if (spec.required && !settings.contains(key))
                d.items.push_back({Severity::error, "plugins.settings." + m.id + "." + key, "missing_setting", key, false,
                                   "'plugins.settings." + m.id + "." + key + "' is required by the hooks plugin '" + m.id +
                                       "' (" + (spec.description.empty() ? spec.type : spec.description) + ")"});
    }
}

} // namespace

void check_plugins(Config &c, const plugins::Registry &reg, Diagnostics &d) {
    c.plugin_secret_env.clear();
    check_selection(c, reg, d);
    if (has_hook_scripts(c) && selected_hooks(c, reg).empty())
        d.items.push_back({Severity::error, "issue.hooks", "missing_plugin", "hooks", false,
                           c.plugins.hooks ? "the workflow has hook scripts but plugins.hooks selects no loaded hooks plugin "
                                             "(the built-in shell-hooks plugin runs them; list it)"
                                           : "the workflow has hook scripts but no hooks plugin is loaded (the built-in "
                                             "shell-hooks plugin runs them; check --plugins and --no-builtin-plugins)"});
    for (const auto &h : selected_hooks(c, reg))
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
