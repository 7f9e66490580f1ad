#pragma once
// The template contexts of vik-compat §5, and the VIK_* environment given to hooks and agents.

#include "orchestrator/issue.hpp"
#include "workflow/config.hpp"

#include <boost/json/object.hpp>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace vik::orchestrator {

// workflow_path, workflow_dir, workspace_root, env (the pull command's context).
boost::json::object base_context(const workflow::Config &config);

// base + issue {id, title, description, state, workdir, extras..., [stage]}.
boost::json::object issue_context(const boost::json::object &base, const Issue &issue, const std::filesystem::path &workdir,
                                  const std::optional<std::string> &stage);

// The host environment plus VIK_ISSUE_ID, VIK_ISSUE_TITLE, VIK_ISSUE_STATE, VIK_ISSUE_STAGE,
// VIK_ISSUE_WORKDIR, VIK_WORKFLOW_PATH, VIK_WORKFLOW_DIR, VIK_HOST_BIN, VIK_HOST_PLUGINS.
std::vector<std::pair<std::string, std::string>> issue_environment(const workflow::Config &config, const Issue &issue,
                                                                   const std::filesystem::path &workdir,
                                                                   const std::optional<std::string> &stage,
                                                                   const std::string &plugin_dirs);

} // namespace vik::orchestrator
