#pragma once
// Workspace paths that can never leave their root, whatever an issue id says.

#include <expected>
#include <filesystem>
#include <string>

namespace vik::workspace {

// A directory name for an issue id. Ids made of [A-Za-z0-9._-] that do not start with '.' are
// kept as they are (vik's layout); anything else has every other byte replaced by '_' (and a
// leading '.' too) plus "--" and 16 hex chars of SHA-256(id), so distinct ids never collide.
std::string safe_key(const std::string &issue_id);

// root/key after checking, with symlinks resolved, that it lies strictly inside root. The error
// says which rule was broken. Checked before every create and every remove.
std::expected<std::filesystem::path, std::string> contained_path(const std::filesystem::path &root, const std::string &key);

// Creates root/key if missing. Returns true when it was created now (so after_create should run),
// false when it existed as a directory; an existing non-directory is an error.
std::expected<bool, std::string> ensure_directory(const std::filesystem::path &root, const std::string &key);

// Removes root/key recursively after the containment check.
std::expected<void, std::string> remove_directory(const std::filesystem::path &root, const std::string &key);

} // namespace vik::workspace
