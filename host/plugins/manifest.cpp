#include "plugins/manifest.hpp"

#include <toml++/toml.h>

namespace vik::plugins {

const char *kind_name(Kind kind) {
    switch (kind) {
    case Kind::tracker: return "tracker";
    case Kind::agent_runtime: return "agent-runtime";
    case Kind::hooks: return "hooks";
    }
    return "?";
}

const char *kind_interface_id(Kind kind) {
    switch (kind) {
    case Kind::tracker: return "vik.tracker/1";
    case Kind::agent_runtime: return "vik.agent-runtime/1";
    case Kind::hooks: return "vik.hooks/1";
    }
    return "?";
}

namespace {
std::expected<std::vector<std::string>, std::string> string_list(const toml::table &t, const char *key) {
    std::vector<std::string> out;
    auto node = t[key];
    if (!node) return out;
    auto *arr = node.as_array();
    if (arr == nullptr) return std::unexpected(std::string("'") + key + "' must be an array of strings");
    for (auto &item : *arr) {
        auto s = item.value<std::string>();
        if (!s) return std::unexpected(std::string("'") + key + "' must be an array of strings");
        out.push_back(*s);
    }
    return out;
}
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
    auto fail = [&](const std::string &msg) { return std::unexpected(path.string() + ": invalid manifest: " + msg); };
    Manifest m;
    m.path = path;
    auto id = t["id"].value<std::string>();
    if (!id || id->empty()) return fail("'id' (a non-empty string) is required");
    m.id = *id;
    m.version = t["version"].value_or(std::string("0.0.0"));
    auto abi = t["abi_major"].value<int64_t>();
    if (!abi || *abi < 0) return fail("'abi_major' (an integer) is required");
    m.abi_major = static_cast<unsigned>(*abi);
    m.description = t["description"].value_or(std::string());
    auto kinds = string_list(t, "kinds");
    if (!kinds) return fail(kinds.error());
    if (kinds->empty()) return fail("'kinds' must list at least one of tracker, agent-runtime, hooks");
    for (const auto &k : *kinds) {
        if (k == "tracker") m.kinds.push_back(Kind::tracker);
        else if (k == "agent-runtime") m.kinds.push_back(Kind::agent_runtime);
        else if (k == "hooks") m.kinds.push_back(Kind::hooks);
        else return fail("unknown kind '" + k + "' (expected tracker, agent-runtime or hooks)");
    }
    auto runtimes = string_list(t, "runtimes");
    if (!runtimes) return fail(runtimes.error());
    m.runtimes = *runtimes;
    auto trackers = string_list(t, "trackers");
    if (!trackers) return fail(trackers.error());
    m.trackers = *trackers;
    std::string library = t["library"].value_or("lib" + path.stem().string() + ".so");
    m.library = path.parent_path() / library;
    if (auto *settings = t["settings"].as_table()) {
        for (auto &[key, node] : *settings) {
            SettingSpec spec;
            if (auto *st = node.as_table()) {
                spec.type = (*st)["type"].value_or(std::string("any"));
                spec.description = (*st)["description"].value_or(std::string());
                spec.required = (*st)["required"].value_or(false);
            }
            m.settings[std::string(key.str())] = spec;
        }
    }
    return m;
}

} // namespace vik::plugins
