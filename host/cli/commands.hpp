#pragma once
// One function per subcommand; each returns the process exit code.

#include "cli/options.hpp"

namespace vik::plugins {
class Registry;
}

namespace vik::cli {

int cmd_plugins(const Options &opts);
int cmd_doctor(const Options &opts);
int cmd_run(const Options &opts);
int cmd_issue(const Options &opts);
int cmd_gate(const Options &opts); // cmd_issue.cpp
int cmd_status(const Options &opts);
int cmd_stop(const Options &opts);
int cmd_restart(const Options &opts);
int cmd_uninstall(const Options &opts);
int cmd_history(const Options &opts);
int cmd_stats(const Options &opts);
int cmd_tracker(const Options &opts);
int cmd_plugin(const Options &opts);
int cmd_refresh(const Options &opts); // live_status.cpp

// The plugin directories in force: --plugins, else $VIK_HOST_PLUGINS (colon-separated), else the
// default directory beside the executable.
std::vector<std::filesystem::path> plugin_dirs(const Options &opts);
plugins::Registry load_registry(const Options &opts);

} // namespace vik::cli
