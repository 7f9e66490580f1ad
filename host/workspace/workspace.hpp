#pragma once
// Workspace paths that can never leave their root, whatever an issue id says, and workspaces that
// count as ready only once their after_create succeeded.

#include <expected>
#include <filesystem>
#include <string>

namespace vik::workspace {

// Keys longer than this are shortened (readable prefix + hash).
inline constexpr size_t kMaxKeyLength = 128;
inline constexpr size_t kKeyPrefixLength = 64;

// A directory name for an issue id. Ids made of [A-Za-z0-9._-] that do not start with '.' and
// are at most kMaxKeyLength long are kept as they are (vik's layout); anything else has every
// other byte replaced by '_' (and a leading '.' too) plus "--" and 16 hex chars of SHA-256(id),
// so distinct ids never collide. A key that would still be longer than kMaxKeyLength keeps only
// its first kKeyPrefixLength characters before the hash: an over-long id never fails.
std::string safe_key(const std::string &issue_id);

// root/key after checking, with symlinks resolved, that it lies strictly inside root. The error
// says which rule was broken. Checked before every create and every remove.
std::expected<std::filesystem::path, std::string> contained_path(const std::filesystem::path &root, const std::string &key);

// The same for a root already resolved (std::filesystem::weakly_canonical): a key that is one safe
// path component can leave the root only through a symlink at root/key, so that alone is looked
// at (one lstat); only a symlink is resolved and checked.
std::expected<std::filesystem::path, std::string> contained_path_in(const std::filesystem::path &canonical_root,
                                                                    const std::string &key);

// The marker of a workspace being created: root/.creating/<key>. Written before the directory
// is made and removed (mark_ready) only once after_create succeeded; a workspace whose marker
// is still there was left half-made (the host died during after_create). The marker lives beside
// the workspaces, never inside one, so nothing is added to the agent's working tree; no safe key
// starts with '.', so it cannot collide with a workspace. Workspaces without a marker (made by
// vik, or before markers existed) count as ready.
std::filesystem::path creating_marker(const std::filesystem::path &root, const std::string &key);

enum class Prepared {
    existing, // a ready workspace: nothing to do
    created,  // created now: run after_create, then mark_ready
    rebuilt,  // a half-made one was removed and created again: the same as created
};

// Whether a new workspace has a bootstrap (after_create) to finish before it counts as ready.
enum class Bootstrap {
    marked, // yes: the creating marker is written first and removed by mark_ready
    none,   // no: the workspace is ready once made (no marker, nothing to interrupt)
};

// Makes root/key (mode 0700) unless a ready workspace is there. Returns what it found; an
// existing non-directory is an error. A half-made workspace is rebuilt whatever `bootstrap` says.
std::expected<Prepared, std::string> ensure_directory(const std::filesystem::path &root, const std::string &key,
                                                      Bootstrap bootstrap = Bootstrap::marked);

// ensure_directory for a root already resolved, also returning the checked path (contained_path_in).
struct Ensured {
    Prepared what;
    std::filesystem::path path;
};
std::expected<Ensured, std::string> ensure_directory_in(const std::filesystem::path &root,
                                                        const std::filesystem::path &canonical_root, const std::string &key,
                                                        Bootstrap bootstrap);

// after_create succeeded: the workspace is ready (its creating marker is removed).
std::expected<void, std::string> mark_ready(const std::filesystem::path &root, const std::string &key);

// Removes root/key recursively after the containment check, and its creating marker if any.
std::expected<void, std::string> remove_directory(const std::filesystem::path &root, const std::string &key);

} // namespace vik::workspace
