#include "plugins/registry.hpp"

#include "plugins/host_api.hpp"
#include "plugins/instances.hpp"
#include "plugins/process_bridge.hpp"

#include <boost/dll/runtime_symbol_info.hpp>
#include <boost/dll/shared_library.hpp>
#include <unistd.h>

#include <algorithm>
#include <set>
#include <utility>

namespace vik::plugins {

namespace fs = std::filesystem;

LoadedPlugin::~LoadedPlugin() {
    if (deinit) deinit(); // the library is still mapped: members go after this body
}

bool Registry::all_loaded() const {
    return std::all_of(records.begin(), records.end(), [](const PluginRecord &r) { return r.loaded || r.not_needed; });
}

namespace {
bool contains(const std::vector<std::string> &v, const std::string &s) { return std::find(v.begin(), v.end(), s) != v.end(); }
} // namespace

std::shared_ptr<LoadedPlugin> Registry::find_runtime(const std::string &runtime) const {
    for (auto &p : plugins)
        if (contains(p->manifest.runtimes, runtime) && p->interface(Kind::agent_runtime)) return p;
    return nullptr;
}

std::shared_ptr<LoadedPlugin> Registry::find_tracker(const std::string &tracker) const {
    for (auto &p : plugins)
        if (contains(p->manifest.trackers, tracker) && p->interface(Kind::tracker)) return p;
    return nullptr;
}

std::vector<std::shared_ptr<LoadedPlugin>> Registry::runtime_providers(const std::string &runtime) const {
    std::vector<std::shared_ptr<LoadedPlugin>> out;
    for (auto &p : plugins)
        if (contains(p->manifest.runtimes, runtime) && p->interface(Kind::agent_runtime)) out.push_back(p);
    return out;
}

std::vector<std::shared_ptr<LoadedPlugin>> Registry::tracker_providers(const std::string &tracker) const {
    std::vector<std::shared_ptr<LoadedPlugin>> out;
    for (auto &p : plugins)
        if (contains(p->manifest.trackers, tracker) && p->interface(Kind::tracker)) out.push_back(p);
    return out;
}

std::shared_ptr<LoadedPlugin> Registry::find_id(const std::string &id) const {
    for (auto &p : plugins)
        if (p->manifest.id == id) return p;
    return nullptr;
}

std::vector<std::shared_ptr<LoadedPlugin>> Registry::with_kind(Kind kind) const {
    std::vector<std::shared_ptr<LoadedPlugin>> out;
    for (auto &p : plugins)
        if (std::find(p->manifest.kinds.begin(), p->manifest.kinds.end(), kind) != p->manifest.kinds.end()) out.push_back(p);
    return out;
}

std::vector<std::string> Registry::runtime_names() const {
    std::vector<std::string> out;
    for (auto &p : plugins)
        for (auto &r : p->manifest.runtimes)
            out.push_back(r);
    return out;
}

std::vector<std::string> Registry::tracker_names() const {
    std::vector<std::string> out;
    for (auto &p : plugins)
        for (auto &t : p->manifest.trackers)
            out.push_back(t);
    return out;
}

fs::path default_plugin_dir() {
    boost::system::error_code ec;
    auto exe = boost::dll::program_location(ec);
    if (ec) return fs::path("lib/vik-host/plugins");
    return fs::path(exe.parent_path().string()) / ".." / "lib" / "vik-host" / "plugins";
}

namespace {

std::string abi_text(unsigned major, unsigned minor) { return std::to_string(major) + "." + std::to_string(minor); }

// A plugin whose code runs in a child process (process_bridge.hpp): nothing is loaded into the
// host; the program (or the library the child loads) must be there, and the manifest must speak
// this host's ABI. The child checks the rest when it starts.
std::shared_ptr<LoadedPlugin> load_out_of_process(const Manifest &m, PluginRecord &record) {
    std::error_code ec;
    record.abi = std::to_string(m.abi_major);
    if (!m.executable.empty()) {
        if (!fs::is_regular_file(m.executable, ec) || ::access(m.executable.c_str(), X_OK) != 0) {
            record.error = "program " + m.executable.string() + " (named by " + m.path.filename().string() +
                           ") is not an executable file; check its path and `chmod +x` it";
            return nullptr;
        }
    } else if (!fs::is_regular_file(m.library, ec)) {
        record.error = "library file not found (named by " + m.path.filename().string() + ")";
        return nullptr;
    }
    if (m.abi_major != VIK_ABI_MAJOR) {
        record.error = "manifest says abi_major " + std::to_string(m.abi_major) + ", this host speaks ABI " +
                       abi_text(VIK_ABI_MAJOR, VIK_ABI_MINOR);
        return nullptr;
    }
    auto loaded = std::make_shared<LoadedPlugin>();
    loaded->manifest = m;
    loaded->entry = process_bridge_entry();
    return loaded;
}

// Runs the library's init (ABI 1.2) once, now that it passed every check, and arms its deinit.
// False, with record.error, when init refused.
bool initialize_library(const vik_entry &entry, LoadedPlugin &loaded, PluginRecord &record) {
    constexpr size_t has_init = offsetof(vik_entry, init) + sizeof entry.init;
    constexpr size_t has_deinit = offsetof(vik_entry, deinit) + sizeof entry.deinit;
    if (entry.struct_size < has_init) return true; // built for ABI 1.0/1.1: nothing to run
    void (*deinit)() = entry.struct_size >= has_deinit ? entry.deinit : nullptr;
    if (entry.init == nullptr) {
        loaded.deinit = deinit;
        return true;
    }
    // The library's own context: the plugin id for its log lines, no settings, no processes.
    std::shared_ptr<HostContext> ctx = make_host_context(loaded.manifest.id);
    ctx->processes = nullptr;
    char text[1024] = {0};
    vik_errbuf err{text, sizeof text};
    vik_status status = entry.init(&ctx->api, &err);
    if (status != VIK_OK) {
        record.error = "its init failed (" + status_name(status) + "): " + (text[0] ? text : "no message");
        return false; // deinit is not run after a failed init
    }
    loaded.library_host = std::move(ctx);
    loaded.deinit = deinit;
    return true;
}

} // namespace

bool isolate(Registry &registry, const std::string &id) {
    auto p = registry.find_id(id);
    if (!p) return false;
    p->manifest.isolation = Isolation::process; // the library stays mapped (it was checked), unused
    p->entry = process_bridge_entry();
    // Its init ran in the host when it was checked: its deinit runs now, so nothing of it stays
    // set up here (the child runs its own init and deinit).
    if (auto deinit = std::exchange(p->deinit, nullptr)) deinit();
    p->library_host.reset();
    return true;
}

// Loads one manifest's library and checks it against the manifest and the host. Returns the
// loaded plugin, or fills record.error.
std::shared_ptr<LoadedPlugin> load_in_process(const Manifest &m, PluginRecord &record) {
    auto lib = std::make_shared<boost::dll::shared_library>();
    try {
        lib->load(boost::dll::fs::path(m.library.string()), boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local);
    } catch (const std::exception &e) {
        std::error_code ec;
        record.error = fs::exists(m.library, ec) ? std::string("not a loadable shared library: ") + e.what()
                                                 : "library file not found (named by " + m.path.filename().string() + ")";
        return nullptr;
    }
    if (!lib->has(VIK_ENTRY_SYMBOL)) {
        record.error = "no entry symbol '" VIK_ENTRY_SYMBOL "' (define it with VIK_PLUGIN(...) from vik/plugin.hpp)";
        return nullptr;
    }
    const auto &entry = lib->get<const vik_entry>(VIK_ENTRY_SYMBOL);
    record.abi = abi_text(entry.abi_major, entry.abi_minor);
    if (entry.abi_major != VIK_ABI_MAJOR) {
        record.error = "built for ABI " + record.abi + ", this host speaks ABI " + abi_text(VIK_ABI_MAJOR, VIK_ABI_MINOR) +
                       "; rebuild the plugin against this vik-host's sdk/include/vik/plugin.h";
        return nullptr;
    }
    // An entry of ABI 1.0/1.1 ends before init/deinit; those are read only when struct_size covers them.
    if (entry.struct_size < VIK_ENTRY_V1_0_SIZE || entry.get_interface == nullptr || entry.id == nullptr) {
        record.error = "entry struct is incomplete (struct_size " + std::to_string(entry.struct_size) + ", expected at least " +
                       std::to_string(VIK_ENTRY_V1_0_SIZE) + ")";
        return nullptr;
    }
    if (m.id != entry.id) {
        record.error =
            "manifest " + m.path.filename().string() + " says id '" + m.id + "' but the library says '" + entry.id + "'";
        return nullptr;
    }
    if (m.abi_major != entry.abi_major) {
        record.error =
            "manifest says abi_major " + std::to_string(m.abi_major) + " but the library was built for ABI " + record.abi;
        return nullptr;
    }
    for (Kind k : m.kinds) {
        auto *table = static_cast<const uint32_t *>(entry.get_interface(kind_interface_id(k)));
        if (table == nullptr) {
            record.error = std::string("manifest declares kind '") + kind_name(k) + "' but the library does not provide " +
                           kind_interface_id(k);
            return nullptr;
        }
        // Every function of the version-1 table must be there: a short table is refused now,
        // not discovered at the first call.
        size_t needed = k == Kind::tracker         ? sizeof(vik_tracker_v1)
                        : k == Kind::agent_runtime ? sizeof(vik_agent_runtime_v1)
                                                   : sizeof(vik_hooks_v1);
        if (*table < needed) {
            record.error = std::string("its ") + kind_interface_id(k) + " table is too short (struct_size " +
                           std::to_string(*table) + ", expected at least " + std::to_string(needed) +
                           "); rebuild the plugin against this vik-host's sdk/include/vik/plugin.h";
            return nullptr;
        }
    }
    // The minor-ABI rule (docs/plugin-sdk.md): minors only add, and both sides check struct_size
    // before reading an addition, so a plugin built for a newer minor loads; what it needs of that
    // minor's host services is not there, which it can see in vik_host_api.abi_minor.
    if (entry.abi_minor > VIK_ABI_MINOR)
        record.note = "built for ABI " + record.abi + ", newer than this host's " + abi_text(VIK_ABI_MAJOR, VIK_ABI_MINOR) +
                      ": loaded (minors only add); what ABI " + record.abi +
                      " added is not offered, so the plugin must check vik_host_api.abi_minor";
    auto loaded = std::make_shared<LoadedPlugin>();
    loaded->manifest = m;
    loaded->entry = &entry;
    loaded->library = lib;
    if (!initialize_library(entry, *loaded, record)) return nullptr;
    return loaded;
}

Registry load_plugins(const std::vector<fs::path> &dirs, const LoadFilter &wanted) {
    Registry reg;
    for (const auto &dir : dirs) {
        std::error_code ec;
        if (!fs::is_directory(dir, ec)) {
            PluginRecord r;
            r.path = dir;
            r.error = "plugin directory does not exist or is not a directory";
            reg.records.push_back(r);
            continue;
        }
        std::vector<fs::path> manifests, libraries;
        for (auto &e : fs::directory_iterator(dir, ec)) {
            if (e.path().extension() == ".toml")
                manifests.push_back(e.path());
            else if (e.path().extension() == ".so")
                libraries.push_back(e.path());
        }
        std::sort(manifests.begin(), manifests.end());
        std::sort(libraries.begin(), libraries.end());
        std::set<fs::path> claimed;
        for (const auto &mpath : manifests) {
            PluginRecord r;
            auto m = read_manifest(mpath);
            if (!m) {
                r.path = mpath;
                r.error = m.error();
                reg.records.push_back(r);
                continue;
            }
            if (!m->library.empty()) claimed.insert(fs::weakly_canonical(m->library, ec));
            r.path = m->executable.empty() ? m->library : m->executable;
            r.id = m->id;
            r.version = m->version;
            r.description = m->description;
            r.abi = std::to_string(m->abi_major);
            for (Kind k : m->kinds)
                r.kinds.push_back(kind_name(k));
            if (auto prior = reg.find_id(m->id)) {
                r.error =
                    "plugin id '" + m->id + "' is already provided by " + prior->manifest.path.string() + "; remove one of them";
                reg.records.push_back(r);
                continue;
            }
            if (wanted && !wanted(*m)) {
                r.not_needed = true;
                r.error = "not loaded: the workflow uses none of what it serves";
                reg.records.push_back(r);
                continue;
            }
            bool isolated = m->isolation == Isolation::process;
            if (auto p = isolated ? load_out_of_process(*m, r) : load_in_process(*m, r)) {
                r.loaded = true;
                r.version = !isolated && p->entry->version ? p->entry->version : m->version;
                reg.plugins.push_back(p);
            }
            reg.records.push_back(r);
        }
        for (const auto &lib : libraries) {
            if (claimed.count(fs::weakly_canonical(lib, ec))) continue;
            PluginRecord r;
            r.path = lib;
            r.error = "no manifest names this library (expected " +
                      lib.stem().string().substr(lib.stem().string().rfind("lib", 0) == 0 ? 3 : 0) + ".toml beside it)";
            reg.records.push_back(r);
        }
    }
    return reg;
}

} // namespace vik::plugins
