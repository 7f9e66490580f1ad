#include "cli/commands.hpp"
#include "plugins/registry.hpp"

#include <cstdlib>
#include <iostream>

namespace vik::cli {

std::vector<std::filesystem::path> plugin_dirs(const Options &opts) {
    std::vector<std::filesystem::path> dirs = opts.plugin_dirs;
    if (dirs.empty()) {
        if (const char *env = std::getenv("VIK_HOST_PLUGINS"); env && *env) {
            std::string list = env;
            size_t start = 0;
            while (start <= list.size()) {
                size_t end = list.find(':', start);
                if (end == std::string::npos) end = list.size();
                if (end > start) dirs.emplace_back(list.substr(start, end - start));
                start = end + 1;
            }
        }
    }
    if (dirs.empty()) dirs.push_back(plugins::default_plugin_dir().lexically_normal());
    for (auto &d : dirs) d = std::filesystem::absolute(d).lexically_normal();
    return dirs;
}

plugins::Registry load_registry(const Options &opts) { return plugins::load_plugins(plugin_dirs(opts)); }

// Prints one block per candidate plugin; exit 0 only when every candidate loaded.
int cmd_plugins(const Options &opts) {
    auto reg = load_registry(opts);
    if (reg.records.empty()) {
        std::cout << "no plugins found\n";
        return 1;
    }
    size_t loaded = 0;
    for (const auto &r : reg.records) {
        std::string kinds;
        for (const auto &k : r.kinds) kinds += (kinds.empty() ? "" : ",") + k;
        if (r.loaded) {
            ++loaded;
            std::cout << "loaded   " << r.id << "  kinds=" << kinds << "  version=" << r.version << "  abi=" << r.abi
                      << "  path=" << r.path.string() << "\n";
        } else {
            std::cout << "refused  " << (r.id.empty() ? "?" : r.id) << "  path=" << r.path.string() << "  reason: " << r.error
                      << "\n";
        }
    }
    std::cout << loaded << " of " << reg.records.size() << " plugin(s) loaded\n";
    return reg.all_loaded() ? 0 : 1;
}

} // namespace vik::cli
