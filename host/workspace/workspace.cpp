#include "workspace/workspace.hpp"

#include "util/ids_and_time.hpp"

#include <cstdio>

namespace vik::workspace {

namespace fs = std::filesystem;


std::string safe_key(const std::string &id) {
    std::string key;
    bool changed = id.empty();
    for (size_t i = 0; i < id.size(); ++i) {
        char c = id[i];
        bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || (c == '.' && i > 0);
        key += ok ? c : '_';
        changed = changed || !ok;
    }
    if (changed) key += "--" + util::sha256_hex(id, 16);
    return key;
}

std::expected<fs::path, std::string> contained_path(const fs::path &root, const std::string &key) {
    if (key.empty() || key == "." || key == ".." || key.find('/') != std::string::npos || key.find('\0') != std::string::npos)
        return std::unexpected("workspace name '" + key + "' is not a single safe path component");
    std::error_code ec;
    fs::path canon_root = fs::weakly_canonical(root, ec);
    if (ec) return std::unexpected("cannot resolve workspace root " + root.string() + ": " + ec.message());
    fs::path candidate = canon_root / key;
    if (fs::is_symlink(fs::symlink_status(candidate, ec))) {
        fs::path target = fs::weakly_canonical(candidate, ec);
        auto rel = target.lexically_relative(canon_root);
        if (ec || rel.empty() || *rel.begin() == ".." || rel == ".")
            return std::unexpected("workspace " + candidate.string() + " is a symlink that escapes the root " + canon_root.string());
    }
    fs::path resolved = fs::weakly_canonical(candidate, ec);
    if (ec) return std::unexpected("cannot resolve workspace " + candidate.string() + ": " + ec.message());
    if (resolved == canon_root) return std::unexpected("workspace " + candidate.string() + " resolves to the root itself");
    auto rel = resolved.lexically_relative(canon_root);
    if (rel.empty() || *rel.begin() == "..") return std::unexpected("workspace " + candidate.string() + " escapes the root " + canon_root.string());
    return candidate;
}

std::expected<bool, std::string> ensure_directory(const fs::path &root, const std::string &key) {
    std::error_code ec;
    fs::create_directories(root, ec);
    if (ec) return std::unexpected("cannot create " + root.string() + ": " + ec.message());
    auto path = contained_path(root, key);
    if (!path) return std::unexpected(path.error());
    auto st = fs::symlink_status(*path, ec);
    if (fs::exists(st)) {
        if (fs::is_directory(st)) return false;
        return std::unexpected("workspace " + path->string() + " exists but is not a directory; move it away");
    }
    if (!fs::create_directory(*path, ec) || ec) return std::unexpected("cannot create workspace " + path->string() + ": " + ec.message());
    return true;
}

std::expected<void, std::string> remove_directory(const fs::path &root, const std::string &key) {
    auto path = contained_path(root, key);
    if (!path) return std::unexpected(path.error());
    std::error_code ec;
    fs::remove_all(*path, ec);
    if (ec) return std::unexpected("cannot remove workspace " + path->string() + ": " + ec.message());
    return {};
}

} // namespace vik::workspace
