#pragma once
// Checks that need the loaded plugins: every runtime and tracker the workflow names is provided
// by some plugin, plugin settings are ones the plugin's manifest accepts, and what a manifest
// requires of the workflow (settings_from = "pull_command": issues.pull.command) is there.

#include "workflow/config.hpp"
#include "workflow/diagnostics.hpp"

namespace vik::plugins {
class Registry;
}

namespace vik::workflow {

// Also records in `config.plugin_secret_env` the secret variables the tracker's and the hooks
// plugins' manifests declare (`secret_env`), for tracker_secret_names (template_context.hpp).
void check_plugins(Config &config, const plugins::Registry &registry, Diagnostics &diagnostics);

} // namespace vik::workflow
