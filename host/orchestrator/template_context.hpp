#pragma once
// The template contexts of vik-compat §5, and the VIK_* environment given to hooks and agents.

#include "orchestrator/issue.hpp"
#include "workflow/config.hpp"

#include <boost/json/object.hpp>

#include <cstddef>
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

// Issue text put in the environment is cut to this many bytes (at a UTF-8 boundary, NULs
// dropped): Linux refuses execve when one "NAME=value" string passes MAX_ARG_STRLEN (128 KiB).
inline constexpr size_t kMaxIssueEnvValue = 100 * 1024;

// Untrusted text as an environment value: no NUL (execve would cut there), at most
// kMaxIssueEnvValue bytes, cut at a UTF-8 boundary.
std::string env_value(std::string text);

// The variables holding the tracker's credentials: issues.tracker.token_env, then the
// `secret_env` of the tracker's and the hooks plugins' manifests (Config::plugin_secret_env, set
// by workflow::check_plugins; without that call only token_env). cmd_run withholds them from the
// host's own environment; agent environments leave them out unless a profile passes them (pass_env).
std::vector<std::string> tracker_secret_names(const workflow::Config &config);

// Every variable the host keeps from agents: the tracker's credentials (above), then the HTTP
// API's bearer token (server.token_env), the webhooks' URLs (notify.webhooks[].url_env) and the
// store's connection URL (store.url_env), which may hold a password. cmd_run withholds them all.
std::vector<std::string> secret_names(const workflow::Config &config);

// The host environment (withheld secrets included) plus VIK_ISSUE_ID, VIK_ISSUE_TITLE,
// VIK_ISSUE_STATE, VIK_ISSUE_BODY (the description), VIK_ISSUE_URL (when the issue has a `url`),
// VIK_ISSUE_STAGE, VIK_ISSUE_WORKDIR, VIK_WORKFLOW_PATH, VIK_WORKFLOW_DIR, VIK_HOST_BIN,
// VIK_HOST_PLUGINS. Title, body and URL are cut at kMaxIssueEnvValue bytes: hook scripts use
// "$VIK_ISSUE_BODY" instead of substituting untrusted text into the script.
std::vector<std::pair<std::string, std::string>> issue_environment(const workflow::Config &config, const Issue &issue,
                                                                   const std::filesystem::path &workdir,
                                                                   const std::optional<std::string> &stage,
                                                                   const std::string &plugin_dirs);

} // namespace vik::orchestrator
