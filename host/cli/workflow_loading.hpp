#pragma once
// Loading the workflow for commands other than doctor: any error diagnostic refuses the run with
// vik's `invalid workflow config:` text.

#include "cli/options.hpp"
#include "plugins/registry.hpp"
#include "workflow/loader.hpp"

#include <expected>

namespace vik::cli {

// On failure the string is the full message for stderr; the exit code is 1.
std::expected<workflow::Loaded, std::string> load_valid_workflow(const Options &opts, const plugins::Registry &registry);

} // namespace vik::cli
