#pragma once
// The workflow-scoped root <home>/workflows/<key>/ as a place to run from:
// - private: the root and the directories under it are 0700 (created so, tightened if an older
//   vik-host made them 0755), everything written below them 0600;
// - writable: an unwritable root is refused at start with the directory and what to do, instead
//   of surfacing later as "daemon already running" or a lost log;
// - owned by one workflow: vik's key replaces every '/' of the workflow path with '-', so
//   /srv/a-b/workflow.yml and /srv/a/b-workflow.yml share a key. The root records the path of
//   the workflow that first used it (file `workflow_path`), and a different workflow is refused.

#include "workflow/config.hpp"

#include <expected>
#include <optional>
#include <string>

namespace vik::daemon {

// For `run`: creates and tightens the directories, checks that they are writable and claims
// (or confirms) the root for this workflow. The error is a full sentence for stderr.
std::expected<void, std::string> prepare_scoped_root(const workflow::Config &config);

// For status/stop/restart/uninstall: an error when the root belongs to another workflow, or
// when this user may not look inside it ("permission denied ..."); nullopt otherwise (also when
// nothing has run yet).
std::optional<std::string> check_scoped_root(const workflow::Config &config);

// "permission denied: <path> (owned by <user>; run this command as that user)" for a path this
// process may not read; used wherever an EACCES must not read as "not installed".
std::string permission_denied(const std::filesystem::path &path);

} // namespace vik::daemon
