#include "workspace/layout.hpp"

#include "util/private_files.hpp"

#include <algorithm>
#include <fstream>
#include <iterator>

namespace vik::workspace {

namespace fs = std::filesystem;

Layout::Layout(fs::path issues_root, fs::path sessions_root)
    : issues_root_(std::move(issues_root)), sessions_root_(std::move(sessions_root)) {
    std::error_code ec;
    issues_canonical_ = fs::weakly_canonical(issues_root_, ec);
    if (ec) issues_canonical_.clear();
}

std::expected<fs::path, std::string> Layout::workspace(const std::string &issue_id) const {
    if (issues_canonical_.empty()) return contained_path(issues_root_, key(issue_id));
    return contained_path_in(issues_canonical_, key(issue_id));
}

bool Layout::has_workspace(const std::string &issue_id) const {
    std::error_code ec;
    return fs::exists(issues_root_ / key(issue_id), ec);
}

namespace {
// The directory of id records: a dot name, so it cannot collide with a workspace (safe_key never
// starts with '.').
fs::path ids_dir(const fs::path &root) { return root / ".ids"; }

// Whether a directory name ends as safe_key ends the keys it changes: "--" and 16 hex digits.
bool hashed_key(const std::string &name) {
    constexpr size_t kHash = 16;
    if (name.size() < kHash + 2 || name.compare(name.size() - kHash - 2, 2, "--") != 0) return false;
    return std::all_of(name.end() - kHash, name.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}
} // namespace

std::expected<Layout::Prepared, std::string> Layout::prepare(const std::string &issue_id, Bootstrap bootstrap) const {
    std::string k = key(issue_id);
    std::expected<Ensured, std::string> made;
    if (issues_canonical_.empty()) {
        auto what = ensure_directory(issues_root_, k, bootstrap);
        if (!what) return std::unexpected(what.error());
        auto path = workspace(issue_id);
        if (!path) return std::unexpected(path.error());
        made = Ensured{*what, *path};
    } else {
        made = ensure_directory_in(issues_root_, issues_canonical_, k, bootstrap);
        if (!made) return std::unexpected(made.error());
    }
    // Which issue this workspace is (keys are not reversible); best effort: without it the
    // inventory falls back to the directory name, which is right where the key is the id.
    if (k != issue_id && !util::create_private_directories(ids_dir(issues_root_))) {
        std::ofstream out(ids_dir(issues_root_) / k, std::ios::trunc);
        out << issue_id;
    }
    return Prepared{made->what, made->path};
}

std::expected<void, std::string> Layout::mark_ready(const std::string &issue_id) const {
    return workspace::mark_ready(issues_root_, key(issue_id));
}

std::expected<void, std::string> Layout::remove(const std::string &issue_id) const {
    auto removed = remove_directory(issues_root_, key(issue_id));
    if (removed) {
        std::error_code ec;
        fs::remove(ids_dir(issues_root_) / key(issue_id), ec);
    }
    return removed;
}

std::optional<std::chrono::system_clock::time_point> Layout::last_change(const std::string &issue_id) const {
    std::error_code ec;
    auto t = fs::last_write_time(issues_root_ / key(issue_id), ec);
    if (ec) return std::nullopt;
    return std::chrono::time_point_cast<std::chrono::system_clock::duration>(std::chrono::file_clock::to_sys(t));
}

std::vector<std::string> Layout::issue_ids() const {
    std::vector<std::string> out;
    std::error_code ec;
    for (fs::directory_iterator it(issues_root_, ec), end; !ec && it != end; it.increment(ec)) {
        std::string name = it->path().filename().string();
        if (name.empty() || name[0] == '.' || !it->is_directory(ec)) continue;
        std::string id;
        if (hashed_key(name)) { // only a key safe_key changed has a record
            std::ifstream in(ids_dir(issues_root_) / name);
            id.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
        }
        if (id.empty() || key(id) != name) id = name; // no (or a stale) record
        out.push_back(std::move(id));
    }
    std::sort(out.begin(), out.end());
    return out;
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
