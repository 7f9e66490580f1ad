#include "workflow/paths.hpp"

#include <cstdlib>
#include <pwd.h>
#include <unistd.h>

namespace vik::workflow {

namespace fs = std::filesystem;

fs::path home_dir() {
    if (const char *h = std::getenv("HOME"); h && *h) return h;
    if (auto *pw = getpwuid(getuid()); pw && pw->pw_dir) return pw->pw_dir;
    return "/";
}

fs::path expand_tilde(const std::string &path) {
    if (path == "~") return home_dir();
    if (path.rfind("~/", 0) == 0) return home_dir() / path.substr(2);
    return path;
}

fs::path absolute_lexical(const fs::path &path) {
    if (path.is_absolute()) return path.lexically_normal();
    return (fs::current_path() / path).lexically_normal();
}

fs::path resolve_path(const std::string &path, const fs::path &base_dir) {
    fs::path p = expand_tilde(path);
    if (p.is_relative()) p = base_dir / p;
    p = p.lexically_normal();
    // lexically_normal keeps a trailing separator ("a/b/"); vik's paths have none.
    if (p.has_relative_path() && p.filename().empty()) p = p.parent_path();
    return p;
}

std::string workflow_key(const fs::path &absolute_workflow_path) {
    std::string key = absolute_workflow_path.string();
    for (char &c : key)
        if (c == '/') c = '-';
    return key;
}

} // namespace vik::workflow
