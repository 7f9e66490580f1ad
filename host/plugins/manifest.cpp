#include "plugins/manifest.hpp"

#include <toml++/toml.h>

#include <algorithm>
#include <cctype>
#include <optional>

namespace vik::plugins {

const char *kind_name(Kind kind) {
    switch (kind) {
    case Kind::tracker:
        return "tracker";
    case Kind::agent_runtime:
        return "agent-runtime";
    case Kind::hooks:
        return "hooks";
    }
    return "?";
}

const char *kind_interface_id(Kind kind) {
    switch (kind) {
    case Kind::tracker:
        return "vik.tracker/1";
    case Kind::agent_runtime:
        return "vik.agent-runtime/1";
    case Kind::hooks:
        return "vik.hooks/1";
    }
    return "?";
}

namespace {

const char *type_name(const toml::node &n) {
    switch (n.type()) {
    case toml::node_type::string:
        return "a string";
    case toml::node_type::integer:
        return "an integer";
    case toml::node_type::floating_point:
        return "a float";
    case toml::node_type::boolean:
        return "a boolean";
    case toml::node_type::array:
        return "an array";
    case toml::node_type::table:
        return "a table";
    case toml::node_type::date:
    case toml::node_type::time:
    case toml::node_type::date_time:
        return "a date/time";
    default:
        return "nothing";
    }
}

bool is_env_name(const std::string &s) {
    if (s.empty() || std::isdigit(static_cast<unsigned char>(s[0]))) return false;
    for (char ch : s)
        if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '_') return false;
    return true;
}

// Reads the manifest's keys; every failure names the file, the position of the offending value
// and its key (dotted, as in `settings.repo.required`).
class ManifestReader {
  public:
    explicit ManifestReader(const std::filesystem::path &path) : path_(path) {}

    std::string error(const toml::source_position &pos, const std::string &key, const std::string &what) const {
        std::string where = path_.string();
        if (pos) where += ":" + std::to_string(pos.line) + ":" + std::to_string(pos.column);
        return where + ": invalid manifest: " + (key.empty() ? "" : "'" + key + "' ") + what;
    }
    std::string error(const toml::node *at, const std::string &key, const std::string &what) const {
        return error(at != nullptr ? at->source().begin : toml::source_position{}, key, what);
    }

    std::expected<std::optional<std::string>, std::string> string(const toml::table &t, const char *key,
                                                                  const std::string &dotted) const {
        const toml::node *n = t.get(key);
        if (n == nullptr) return std::nullopt;
        if (n->is_string()) return std::optional<std::string>(*n->value<std::string>());
        return std::unexpected(error(n, dotted, std::string("must be a string, found ") + type_name(*n)));
    }

    std::expected<std::vector<std::string>, std::string> string_list(const toml::table &t, const char *key) const {
        std::vector<std::string> out;
        const toml::node *n = t.get(key);
        if (n == nullptr) return out;
        const toml::array *arr = n->as_array();
        if (arr == nullptr)
            return std::unexpected(error(n, key, std::string("must be an array of strings, found ") + type_name(*n)));
        for (const auto &item : *arr) {
            if (!item.is_string())
                return std::unexpected(
                    error(&item, key, std::string("must be an array of strings, found an element that is ") + type_name(item)));
            out.push_back(*item.value<std::string>());
        }
        return out;
    }

    // Refuses keys outside `known`: a host that ignored an unknown fact would act against it.
    std::expected<void, std::string> known_keys(const toml::table &t, std::initializer_list<std::string_view> known,
                                                const std::string &prefix) const {
        for (const auto &entry : t) {
            const toml::key &key = entry.first;
            bool ok = false;
            for (auto k : known)
                ok = ok || key.str() == k;
            if (ok) continue;
            std::string list;
            for (auto k : known)
                list += (list.empty() ? "" : ", ") + std::string(k);
            return std::unexpected(error(key.source().begin, prefix + std::string(key.str()),
                                         "is not a manifest key this host knows (known: " + list +
                                             "); fix its spelling, or use a vik-host that documents it"));
        }
        return {};
    }

  private:
    std::filesystem::path path_;
};

bool has_kind(const Manifest &m, Kind k) { return std::find(m.kinds.begin(), m.kinds.end(), k) != m.kinds.end(); }

} // namespace

std::expected<Manifest, std::string> read_manifest(const std::filesystem::path &path) {
    toml::table t;
    try {
        t = toml::parse_file(path.string());
    } catch (const toml::parse_error &e) {
        const auto &where = e.source().begin;
        return std::unexpected(path.string() + ":" + std::to_string(where.line) + ":" + std::to_string(where.column) +
                               ": invalid manifest: " + std::string(e.description()));
    }
    ManifestReader r(path);
    auto fail = [&](const std::string &key, const std::string &msg) { return std::unexpected(r.error(t.get(key), key, msg)); };
    if (auto ok =
            r.known_keys(t,
                         {"id", "version", "abi_major", "kinds", "trackers", "runtimes", "library", "executable", "isolation",
                          "description", "settings", "secret_env", "settings_from", "resumes_conversations", "scripted_only"},
                         "");
        !ok)
        return std::unexpected(ok.error());
    Manifest m;
    m.path = path;

    auto id = r.string(t, "id", "id");
    if (!id) return std::unexpected(id.error());
    if (!*id || (*id)->empty()) return fail("id", "(a non-empty string, equal to vik_entry.id) is required");
    m.id = **id;
    auto version = r.string(t, "version", "version");
    if (!version) return std::unexpected(version.error());
    m.version = version->value_or("0.0.0");
    const toml::node *abi = t.get("abi_major");
    if (abi == nullptr) return fail("abi_major", "(an integer, equal to vik_entry.abi_major) is required");
    if (!abi->is_integer() || *abi->value<int64_t>() < 0)
        return fail("abi_major", std::string("must be a non-negative integer, found ") +
                                     (abi->is_integer() ? "a negative one" : type_name(*abi)));
    m.abi_major = static_cast<unsigned>(*abi->value<int64_t>());
    auto description = r.string(t, "description", "description");
    if (!description) return std::unexpected(description.error());
    m.description = description->value_or("");

    auto kinds = r.string_list(t, "kinds");
    if (!kinds) return std::unexpected(kinds.error());
    if (kinds->empty()) return fail("kinds", "must list at least one of tracker, agent-runtime, hooks");
    for (const auto &k : *kinds) {
        if (k == "tracker")
            m.kinds.push_back(Kind::tracker);
        else if (k == "agent-runtime")
            m.kinds.push_back(Kind::agent_runtime);
        else if (k == "hooks")
            m.kinds.push_back(Kind::hooks);
        else
            return fail("kinds", "names unknown kind '" + k + "' (expected tracker, agent-runtime or hooks)");
    }
    auto runtimes = r.string_list(t, "runtimes");
    if (!runtimes) return std::unexpected(runtimes.error());
    m.runtimes = *runtimes;
    if (!m.runtimes.empty() && !has_kind(m, Kind::agent_runtime))
        return fail("runtimes", "is only for agent-runtime plugins; add \"agent-runtime\" to 'kinds' or remove it");
    auto trackers = r.string_list(t, "trackers");
    if (!trackers) return std::unexpected(trackers.error());
    m.trackers = *trackers;
    if (!m.trackers.empty() && !has_kind(m, Kind::tracker))
        return fail("trackers", "is only for tracker plugins; add \"tracker\" to 'kinds' or remove it");
    auto library = r.string(t, "library", "library");
    if (!library) return std::unexpected(library.error());
    if (*library && (*library)->empty())
        return fail("library", "must name the shared library file (or be left out for lib<manifest stem>.so)");
    auto executable = r.string(t, "executable", "executable");
    if (!executable) return std::unexpected(executable.error());
    auto isolation = r.string(t, "isolation", "isolation");
    if (!isolation) return std::unexpected(isolation.error());
    if (*executable) {
        // An out-of-process plugin: a program speaking the stdio protocol (docs/plugin-sdk.md).
        if (*library) return fail("executable", "and 'library' exclude each other: a plugin is a library or a program");
        if ((*executable)->empty()) return fail("executable", "must name the plugin's program (relative to the manifest)");
        m.executable = path.parent_path() / **executable;
        m.isolation = Isolation::process;
        if (*isolation && **isolation != "process")
            return fail("isolation", "of a program is always \"process\"; remove it or set it to \"process\"");
    } else {
        m.library = path.parent_path() / library->value_or("lib" + path.stem().string() + ".so");
        if (*isolation) {
            if (**isolation == "process")
                m.isolation = Isolation::process;
            else if (**isolation != "in-process")
                return fail("isolation", "is '" + **isolation + "' (expected \"in-process\" or \"process\")");
        }
    }

    if (const toml::node *settings = t.get("settings")) {
        const toml::table *st = settings->as_table();
        if (st == nullptr)
            return fail("settings", std::string("must be a table of [settings.NAME] tables, found ") + type_name(*settings));
        for (const auto &[key, node] : *st) {
            std::string prefix = "settings." + std::string(key.str());
            const toml::table *spec_table = node.as_table();
            if (spec_table == nullptr)
                return std::unexpected(r.error(
                    &node, prefix, std::string("must be a table (type, description, required), found ") + type_name(node)));
            if (auto ok = r.known_keys(*spec_table, {"type", "description", "required"}, prefix + "."); !ok)
                return std::unexpected(ok.error());
            SettingSpec spec;
            auto type = r.string(*spec_table, "type", prefix + ".type");
            if (!type) return std::unexpected(type.error());
            spec.type = type->value_or("any");
            if (spec.type != "string" && spec.type != "integer" && spec.type != "boolean" && spec.type != "array" &&
                spec.type != "table" && spec.type != "any")
                return std::unexpected(
                    r.error(spec_table->get("type"), prefix + ".type",
                            "is '" + spec.type + "' (expected string, integer, boolean, array, table or any)"));
            auto desc = r.string(*spec_table, "description", prefix + ".description");
            if (!desc) return std::unexpected(desc.error());
            spec.description = desc->value_or("");
            if (const toml::node *req = spec_table->get("required")) {
                if (!req->is_boolean())
                    return std::unexpected(
                        r.error(req, prefix + ".required", std::string("must be true or false, found ") + type_name(*req)));
                spec.required = *req->value<bool>();
            }
            m.settings[std::string(key.str())] = spec;
        }
    }

    // Facts. Each is refused where the host would never act on it, so a manifest cannot believe
    // it declared something the host ignores.
    auto secrets = r.string_list(t, "secret_env");
    if (!secrets) return std::unexpected(secrets.error());
    for (const auto &name : *secrets)
        if (!is_env_name(name))
            return fail("secret_env",
                        "names '" + name +
                            "', which is not an environment variable name (letters, digits, _; not starting with a digit)");
    if (!secrets->empty() && !has_kind(m, Kind::tracker) && !has_kind(m, Kind::hooks))
        return fail("secret_env",
                    "is only for tracker and hooks plugins: an agent runtime's credentials must reach the agents it runs");
    m.secret_env = *secrets;
    auto from = r.string(t, "settings_from", "settings_from");
    if (!from) return std::unexpected(from.error());
    if (*from) {
        if (!has_kind(m, Kind::tracker)) return fail("settings_from", "is only for tracker plugins");
        if (**from == "tracker")
            m.settings_from = SettingsSource::tracker_section;
        else if (**from == "pull_command")
            m.settings_from = SettingsSource::pull_command;
        else
            return fail("settings_from",
                        "is '" + **from +
                            "' (expected \"tracker\", the issues.tracker keys, or \"pull_command\", vik's issues.pull.command)");
    }
    if (const toml::node *resumes = t.get("resumes_conversations")) {
        if (!resumes->is_boolean())
            return fail("resumes_conversations", std::string("must be true or false, found ") + type_name(*resumes));
        if (!has_kind(m, Kind::agent_runtime)) return fail("resumes_conversations", "is only for agent-runtime plugins");
        m.resumes_conversations = *resumes->value<bool>();
    }
    if (const toml::node *scripted = t.get("scripted_only")) {
        if (!scripted->is_boolean())
            return fail("scripted_only", std::string("must be true or false, found ") + type_name(*scripted));
        if (!has_kind(m, Kind::hooks)) return fail("scripted_only", "is only for hooks plugins");
        m.scripted_only = *scripted->value<bool>();
    }
    return m;
}

} // namespace vik::plugins
