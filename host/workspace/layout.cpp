#include "workspace/layout.hpp"

#include <algorithm>

namespace vik::workspace {

namespace fs = std::filesystem;

std::expected<fs::path, std::string> Layout::workspace(const std::string &issue_id) const {
    return contained_path(issues_root_, key(issue_id));
}

bool Layout::has_workspace(const std::string &issue_id) const {
    std::error_code ec;
    return fs::exists(issues_root_ / key(issue_id), ec);
}

std::expected<Layout::Prepared, std::string> Layout::prepare(const std::string &issue_id) const {
    auto what = ensure_directory(issues_root_, key(issue_id));
    if (!what) return std::unexpected(what.error());
    auto path = workspace(issue_id);
    if (!path) return std::unexpected(path.error());
    return Prepared{*what, *path};
}

std::expected<void, std::string> Layout::mark_ready(const std::string &issue_id) const {
    return workspace::mark_ready(issues_root_, key(issue_id));
}

std::expected<void, std::string> Layout::remove(const std::string &issue_id) const {
    return remove_directory(issues_root_, key(issue_id));
}

fs::path Layout::session_file(const std::string &issue_id, const std::string &stage, const std::string &session_id) const {
    return sessions_root_ / key(issue_id) / (stage + "-" + session_id + ".jsonl");
}

std::vector<fs::path> Layout::session_files(const std::string &issue_id) const {
    std::vector<std::pair<fs::file_time_type, fs::path>> found;
    std::error_code ec;
    for (fs::directory_iterator it(sessions_root_ / key(issue_id), ec), end; !ec && it != end; it.increment(ec)) {
        if (it->path().extension() != ".jsonl" || !it->is_regular_file(ec)) continue;
        found.emplace_back(it->last_write_time(ec), it->path());
    }
    std::sort(found.begin(), found.end(), [](const auto &a, const auto &b) { return a.first > b.first; });
    std::vector<fs::path> out;
    for (auto &f : found)
        out.push_back(std::move(f.second));
    return out;
}

} // namespace vik::workspace
