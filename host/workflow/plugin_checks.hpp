#pragma once
// Checks that need the loaded plugins: every runtime and tracker the workflow names is provided
// by some plugin, and plugin settings are ones the plugin's manifest accepts.

#include "workflow/config.hpp"
#include "workflow/diagnostics.hpp"

namespace vik::plugins {
class Registry;
}

namespace vik::workflow {

void check_plugins(const Config &config, const plugins::Registry &registry, Diagnostics &diagnostics);

} // namespace vik::workflow
