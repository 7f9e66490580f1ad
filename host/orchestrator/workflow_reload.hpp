#pragma once
// Reading an edited workflow.yml for a running host (hot reload; docs/configuration.md,
// "Reloading the workflow"): the same checks `run` makes at start (load errors, diagnostics of
// error severity, plugins, templates), plus the keys only a restart can apply. The scheduler
// adopts what this returns (live_config.hpp); on any refusal the last good config stays.

#include "plugins/registry.hpp"
#include "workflow/config.hpp"

#include <cstdint>
#include <expected>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace vik::orchestrator {

// What tells an edit apart: modification time, size and inode (an editor that writes a new file
// and renames it over the old one changes the inode).
struct FileStamp {
    std::filesystem::file_time_type modified{};
    uintmax_t size = 0;
    uintmax_t inode = 0;
    bool operator==(const FileStamp &) const = default;
};
// nullopt when the file cannot be read (it is being replaced, say): no reload is attempted.
std::optional<FileStamp> stamp_of(const std::filesystem::path &file);

// The keys whose change needs a restart (they fixed things at start: the tracker instance, the
// workspace home, listening sockets, budgets handed to workers), named as in workflow.yml.
std::vector<std::string> restart_only_changes(const workflow::Config &running, const workflow::Config &edited);

// Loads `running.workflow_path` again and checks it. The error says what is wrong (the
// diagnostics, one per line, or the restart-only keys that changed).
std::expected<std::unique_ptr<workflow::Config>, std::string> load_for_reload(const workflow::Config &running,
                                                                              const plugins::Registry &registry);

} // namespace vik::orchestrator
