#pragma once
// Checks that need the loaded plugins: every runtime and tracker the workflow names is provided
// by some plugin, plugin settings are ones the plugin's manifest accepts, and what a manifest
// requires of the workflow (settings_from = "pull_command": issues.pull.command) is there.

#include "workflow/config.hpp"
#include "workflow/diagnostics.hpp"

#include <memory>
#include <vector>

namespace vik::plugins {
class Registry;
struct LoadedPlugin;
} // namespace vik::plugins

namespace vik::workflow {

// Also records in `config.plugin_secret_env` the secret variables the tracker's and the hooks
// plugins' manifests declare (`secret_env`), for tracker_secret_names (template_context.hpp).
void check_plugins(Config &config, const plugins::Registry &registry, Diagnostics &diagnostics);

// The hooks plugins the workflow runs, in order: those `plugins.hooks` lists (ids that are not
// loaded hooks plugins are left out: check_plugins reports them), or every hooks plugin loaded.
std::vector<std::shared_ptr<plugins::LoadedPlugin>> selected_hooks(const Config &config, const plugins::Registry &registry);

} // namespace vik::workflow
