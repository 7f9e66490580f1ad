#pragma once
// Loading the workflow for commands other than doctor: any error diagnostic refuses the run with
// vik's `invalid workflow config:` text.

#include "cli/options.hpp"
#include "plugins/registry.hpp"
#include "store/open_store.hpp"
#include "workflow/loader.hpp"

#include <expected>
#include <filesystem>
#include <optional>
#include <string>

namespace vik::cli {

// vik's checks of the workflow path before it reads the file (workflow/loader.rs), with its
// texts naming the absolute path: "workflow file <P> is a directory, expected a file",
// "workflow file not found at <P>", "permission denied reading workflow file <P>". nullopt when
// the path names something to read (load_workflow reports what goes wrong after that).
std::optional<std::string> workflow_path_problem(const std::filesystem::path &path);

// workflow_path_problem, then load_workflow of the absolute path (so load errors name it, as
// vik's do); the error is the text for stderr.
std::expected<workflow::Loaded, workflow::LoadError> load_workflow_file(const std::filesystem::path &path);

// On failure the string is the full message for stderr; the exit code is 1.
std::expected<workflow::Loaded, std::string> load_valid_workflow(const Options &opts, const plugins::Registry &registry);

// For `run`: the workflow first, then only the plugins it uses (its tracker kind, its agents'
// runtimes, every hooks plugin) into `registry`, then the same checks as load_valid_workflow. A
// plugin nobody uses costs the run nothing, not even its library's mapping.
std::expected<workflow::Loaded, std::string> load_workflow_and_its_plugins(const Options &opts, plugins::Registry &registry);

// The workflow's `plugins.isolate`: those libraries run in a child process each
// (load_workflow_and_its_plugins applies it; a command that loads otherwise calls it before it
// creates instances).
void apply_isolation(plugins::Registry &registry, const workflow::Config &config);

// The filter that load_workflow_and_its_plugins loads with.
plugins::LoadFilter plugins_used_by(const workflow::Config &config);

// Where the workflow keeps its claims and runs (`store:`): what `run` writes and history, stats
// and dry runs read.
store::StoreChoice store_choice(const workflow::Config &config);

} // namespace vik::cli
