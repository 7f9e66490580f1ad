#pragma once
// Creates the workflow's tracker instance: picks the plugin serving issues.tracker.kind and hands
// it its settings (when its manifest says settings_from = "pull_command": vik's pull command,
// rendered once, and its cwd).

#include "plugins/instances.hpp"
#include "workflow/config.hpp"

#include <memory>

namespace vik::orchestrator {

// Throws std::runtime_error naming the plugin or the template at fault.
std::unique_ptr<plugins::TrackerInstance> create_tracker(const workflow::Config &config, const plugins::Registry &registry);

uint32_t seconds_to_ms(double seconds);

} // namespace vik::orchestrator
