#pragma once
// The one object that knows where an issue's files live under the workflow's scoped root:
//   <issues root>/<key>/                         the issue's workspace (the agent's cwd)
//   <issues root>/.creating/<key>                its creating marker (workspace.hpp)
//   <issues root>/.ids/<key>                     the issue id the workspace belongs to
//   <sessions root>/<key>/<stage>-<id>.jsonl     one file per agent session
// where <key> is safe_key(issue id). Nobody else joins a root and a key: a workspace path
// handed out is the one the containment check returned, never one re-joined beside it.
//
// Threading: const after construction; any thread.

#include "workspace/workspace.hpp"

#include <chrono>
#include <expected>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace vik::workspace {

class Layout {
  public:
    Layout(std::filesystem::path issues_root, std::filesystem::path sessions_root);

    const std::filesystem::path &issues_root() const { return issues_root_; }
    const std::filesystem::path &sessions_root() const { return sessions_root_; }

    // The directory name of an issue (safe_key).
    std::string key(const std::string &issue_id) const { return safe_key(issue_id); }

    // The issue's workspace after the containment check (contained_path): the path to use.
    std::expected<std::filesystem::path, std::string> workspace(const std::string &issue_id) const;
    // Whether something is at the place of the issue's workspace (links followed).
    bool has_workspace(const std::string &issue_id) const;

    // Creates the workspace unless a ready one is there (ensure_directory); returns what it found
    // and the checked path.
    struct Prepared {
        workspace::Prepared what;
        std::filesystem::path path;
    };
    std::expected<Prepared, std::string> prepare(const std::string &issue_id,
                                                 workspace::Bootstrap bootstrap = workspace::Bootstrap::marked) const;
    // after_create succeeded: the workspace is ready.
    std::expected<void, std::string> mark_ready(const std::string &issue_id) const;
    // Removes the workspace and its marker, after the containment check.
    std::expected<void, std::string> remove(const std::string &issue_id) const;

    // The record of one agent session.
    std::filesystem::path session_file(const std::string &issue_id, const std::string &stage,
                                       const std::string &session_id) const;
    // The issue ids that have a workspace (the inventory of the workspace cleanup): from each
    // workspace's id record, or its directory name where there is none (made by vik, or before
    // id records existed; the name is the id for ids safe_key leaves unchanged).
    std::vector<std::string> issue_ids() const;

    // When the issue's workspace directory last changed (its modification time), if it exists.
    std::optional<std::chrono::system_clock::time_point> last_change(const std::string &issue_id) const;

    // The issue's session records, newest first (by modification time); empty when none.
    std::vector<std::filesystem::path> session_files(const std::string &issue_id) const;

  private:
    std::filesystem::path issues_root_, sessions_root_;
    // issues_root_ resolved once (weakly_canonical; empty when that failed, and then it is
    // resolved per call): the operator's own directory, not something an issue names.
    std::filesystem::path issues_canonical_;
};

} // namespace vik::workspace
