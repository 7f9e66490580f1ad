#pragma once
// Loading plugins from directories and looking them up by what they provide.

#include "plugins/manifest.hpp"

#include <vik/plugin.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace vik::plugins {

struct HostContext;

// One plugin library that loaded and passed every check. The library stays mapped while any
// shared_ptr to this object lives; every instance created from it holds one. The library's
// `init` ran when it loaded; its `deinit` runs when this object goes, before the unmapping.
struct LoadedPlugin {
    LoadedPlugin() = default;
    ~LoadedPlugin();
    LoadedPlugin(const LoadedPlugin &) = delete;
    LoadedPlugin &operator=(const LoadedPlugin &) = delete;

    Manifest manifest;
    std::shared_ptr<void> library; // a boost::dll::shared_library, type-erased to keep Boost out of headers
    const vik_entry *entry = nullptr;
    const void *interface(Kind kind) const { return entry->get_interface(kind_interface_id(kind)); }

    // The library's own deinit (kept apart from `entry`, which isolate() swaps for the bridge's)
    // and the host context its init was given, which must outlive deinit.
    void (*deinit)() = nullptr;
    std::shared_ptr<HostContext> library_host;
};

// What `vik-host plugins` prints for each candidate, loaded or refused.
struct PluginRecord {
    std::filesystem::path path; // the library (or the manifest when the manifest itself is bad)
    std::string id, version, abi, description;
    std::vector<std::string> kinds;
    bool loaded = false;
    bool not_needed = false; // left unloaded on purpose: the workflow does not use it (LoadFilter)
    std::string error;       // why it was refused
    std::string note;        // loaded, with something its author or operator should know (a newer minor ABI)
};

class Registry {
  public:
    std::vector<std::shared_ptr<LoadedPlugin>> plugins;
    std::vector<PluginRecord> records;

    bool all_loaded() const;
    std::shared_ptr<LoadedPlugin> find_runtime(const std::string &runtime) const;
    std::shared_ptr<LoadedPlugin> find_tracker(const std::string &tracker) const;
    // Every loaded plugin serving this runtime / tracker name, in load order (more than one is
    // an error for a workflow that uses the name: plugin_checks says so).
    std::vector<std::shared_ptr<LoadedPlugin>> runtime_providers(const std::string &runtime) const;
    std::vector<std::shared_ptr<LoadedPlugin>> tracker_providers(const std::string &tracker) const;
    std::shared_ptr<LoadedPlugin> find_id(const std::string &id) const;
    std::vector<std::shared_ptr<LoadedPlugin>> with_kind(Kind kind) const;
    std::vector<std::string> runtime_names() const;
    std::vector<std::string> tracker_names() const;
};

// Which plugins to load, judged from the manifest before the library is opened. A plugin the
// filter passes over costs nothing: its library (and what it links, TLS for a network tracker)
// is never mapped.
using LoadFilter = std::function<bool(const Manifest &)>;

// Scans each directory (in order) for *.toml manifests and their libraries. A candidate that
// fails any check is recorded with its reason and skipped; the others still load. With a filter,
// candidates it refuses are recorded as not_needed and not loaded.
Registry load_plugins(const std::vector<std::filesystem::path> &dirs, const LoadFilter &wanted = {});

// Loads one manifest's library into this process and checks it against the manifest and the
// host (what load_plugins does for an in-process plugin; `vik-host plugin serve` for an isolated
// one). Returns the plugin, or nullptr with record.error set.
std::shared_ptr<LoadedPlugin> load_in_process(const Manifest &m, PluginRecord &record);

// Runs the loaded plugin `id` in a child process from now on, as its manifest's isolation =
// "process" would: instances created later go through the process bridge. Call before any
// instance of it exists. False when it is not loaded.
bool isolate(Registry &registry, const std::string &id);

// The default plugin directory: <dir of the executable>/../lib/vik-host/plugins.
std::filesystem::path default_plugin_dir();

} // namespace vik::plugins
