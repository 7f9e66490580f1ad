#include "cli/commands.hpp"
#include "plugins/registry.hpp"

#include <algorithm>
#include <cstdlib>
#include <iostream>

namespace vik::cli {

// The built-in directory first (unless --no-builtin-plugins), then VIK_HOST_PLUGINS (what a
// running host passes to its children), then every --plugins directory; each directory once.
// `--plugins dir/` adds a team's plugins to the built-ins: the shell-hooks plugin stays loaded.
std::vector<std::filesystem::path> plugin_dirs(const Options &opts) {
    std::vector<std::filesystem::path> wanted;
    if (!opts.no_builtin_plugins) wanted.push_back(plugins::default_plugin_dir());
    if (const char *env = std::getenv("VIK_HOST_PLUGINS"); env && *env) {
        std::string list = env;
        size_t start = 0;
        while (start <= list.size()) {
            size_t end = list.find(':', start);
            if (end == std::string::npos) end = list.size();
            if (end > start) wanted.emplace_back(list.substr(start, end - start));
            start = end + 1;
        }
    }
    wanted.insert(wanted.end(), opts.plugin_dirs.begin(), opts.plugin_dirs.end());
    std::vector<std::filesystem::path> dirs;
    std::vector<std::filesystem::path> seen; // canonical forms, so one directory never loads twice
    for (const auto &d : wanted) {
        std::error_code ec;
        auto canonical = std::filesystem::weakly_canonical(std::filesystem::absolute(d), ec);
        if (ec) canonical = std::filesystem::absolute(d).lexically_normal();
        if (std::find(seen.begin(), seen.end(), canonical) != seen.end()) continue;
        seen.push_back(canonical);
        dirs.push_back(std::filesystem::absolute(d).lexically_normal());
    }
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
        for (const auto &k : r.kinds)
            kinds += (kinds.empty() ? "" : ",") + k;
        if (r.loaded) {
            ++loaded;
            std::cout << "loaded   " << r.id << "  kinds=" << kinds << "  version=" << r.version << "  abi=" << r.abi
                      << "  path=" << r.path.string() << "\n";
            if (!r.note.empty()) std::cout << "         note: " << r.note << "\n";
            // What it serves: the names workflows use to pick it.
            if (auto p = reg.find_id(r.id)) {
                auto list = [](const std::vector<std::string> &v) {
                    std::string s;
                    for (const auto &x : v)
                        s += (s.empty() ? "" : ",") + x;
                    return s;
                };
                if (!p->manifest.trackers.empty())
                    std::cout << "         serves trackers: " << list(p->manifest.trackers) << "\n";
                if (!p->manifest.runtimes.empty())
                    std::cout << "         serves runtimes: " << list(p->manifest.runtimes) << "\n";
            }
        } else {
            std::cout << "refused  " << (r.id.empty() ? "?" : r.id) << "  path=" << r.path.string() << "  reason: " << r.error
                      << "\n";
        }
    }
    std::cout << loaded << " of " << reg.records.size() << " plugin(s) loaded\n";
    return reg.all_loaded() ? 0 : 1;
}

} // namespace vik::cli
