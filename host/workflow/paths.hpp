#pragma once
// Path rules of vik-compat §2: `~` expands, `$VAR` does not, relative paths resolve from the
// workflow file's directory, `.` and `..` fold lexically.

#include <filesystem>
#include <string>

namespace vik::workflow {

std::filesystem::path home_dir();                            // $HOME, else the passwd entry
std::filesystem::path expand_tilde(const std::string &path); // "~" and "~/x" only
std::filesystem::path resolve_path(const std::string &path, const std::filesystem::path &base_dir);
std::filesystem::path absolute_lexical(const std::filesystem::path &path); // from the cwd, folded
// The workflow-path key: the absolute workflow path with every '/' replaced by '-'.
std::string workflow_key(const std::filesystem::path &absolute_workflow_path);

} // namespace vik::workflow
