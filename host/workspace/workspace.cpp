#include "workspace/workspace.hpp"

#include "util/sha256.hpp"

#include <cctype>
#include <fstream>

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
    constexpr size_t kHashPart = 2 + 16; // "--" + 16 hex chars
    if (!changed && key.size() <= kMaxKeyLength) return key;
    if (key.size() + kHashPart > kMaxKeyLength) key.resize(kKeyPrefixLength);
    return key + "--" + util::sha256_hex(id, 16);
}

namespace {

std::expected<void, std::string> check_component(const std::string &key) {
    if (key.empty() || key == "." || key == ".." || key.find('/') != std::string::npos || key.find('\0') != std::string::npos)
        return std::unexpected("workspace name '" + key + "' is not a single safe path component");
    return {};
}

} // namespace

std::expected<fs::path, std::string> contained_path(const fs::path &root, const std::string &key) {
    if (auto ok = check_component(key); !ok) return std::unexpected(ok.error());
    std::error_code ec;
    fs::path canon_root = fs::weakly_canonical(root, ec);
    if (ec) return std::unexpected("cannot resolve workspace root " + root.string() + ": " + ec.message());
    return contained_path_in(canon_root, key);
}

std::expected<fs::path, std::string> contained_path_in(const fs::path &canon_root, const std::string &key) {
    if (auto ok = check_component(key); !ok) return std::unexpected(ok.error());
    fs::path candidate = canon_root / key;
    std::error_code ec;
    // One component, neither "." nor "..", below a resolved root: it resolves to itself unless it
    // is a symlink (a missing name too: whatever is made there later is checked again then).
    auto st = fs::symlink_status(candidate, ec);
    if (ec && st.type() != fs::file_type::not_found)
        return std::unexpected("cannot resolve workspace " + candidate.string() + ": " + ec.message());
    if (!fs::is_symlink(st)) return candidate;
    fs::path target = fs::weakly_canonical(candidate, ec);
    auto rel = target.lexically_relative(canon_root);
    if (ec || rel.empty() || *rel.begin() == ".." || rel == ".")
        return std::unexpected("workspace " + candidate.string() + " is a symlink that escapes the root " + canon_root.string());
    return candidate;
}

fs::path creating_marker(const fs::path &root, const std::string &key) { return root / ".creating" / key; }

namespace {

// mkdir with mode 0700 whatever the umask says.
std::expected<void, std::string> make_private_directory(const fs::path &path) {
    std::error_code ec;
    if (!fs::create_directory(path, ec) && !ec && !fs::is_directory(path, ec)) ec = std::make_error_code(std::errc::file_exists);
    if (ec) return std::unexpected("cannot create " + path.string() + ": " + ec.message());
    fs::permissions(path, fs::perms::owner_all, fs::perm_options::replace, ec);
    if (ec) return std::unexpected("cannot make " + path.string() + " private: " + ec.message());
    return {};
}

} // namespace

std::expected<Prepared, std::string> ensure_directory(const fs::path &root, const std::string &key, Bootstrap bootstrap) {
    std::error_code ec;
    fs::path canon_root = fs::weakly_canonical(root, ec);
    if (ec) return std::unexpected("cannot resolve workspace root " + root.string() + ": " + ec.message());
    auto made = ensure_directory_in(root, canon_root, key, bootstrap);
    if (!made) return std::unexpected(made.error());
    return made->what;
}

std::expected<Ensured, std::string> ensure_directory_in(const fs::path &root, const fs::path &canon_root, const std::string &key,
                                                        Bootstrap bootstrap) {
    std::error_code ec;
    fs::create_directories(root, ec); // one stat when it is there
    if (ec) return std::unexpected("cannot create " + root.string() + ": " + ec.message());
    auto path = contained_path_in(canon_root, key);
    if (!path) return std::unexpected(path.error());
    auto st = fs::symlink_status(*path, ec);
    fs::path marker = creating_marker(root, key);
    bool half_made = fs::exists(fs::symlink_status(marker, ec));
    if (fs::exists(st)) {
        if (!fs::is_directory(st))
            return std::unexpected("workspace " + path->string() + " exists but is not a directory; move it away");
        if (!half_made) return Ensured{Prepared::existing, *path};
        fs::remove_all(*path, ec);
        if (ec) return std::unexpected("cannot remove the half-made workspace " + path->string() + ": " + ec.message());
    }
    if (bootstrap == Bootstrap::marked) {
        // The marker first: if the host dies from here until mark_ready, the next claim starts over.
        if (auto dir = make_private_directory(marker.parent_path()); !dir) return std::unexpected(dir.error());
        std::ofstream out(marker, std::ios::binary | std::ios::trunc);
        out << "after_create has not finished\n";
        if (!out) return std::unexpected("cannot write " + marker.string());
    }
    if (auto dir = make_private_directory(*path); !dir) return std::unexpected("cannot create workspace: " + dir.error());
    if (half_made && bootstrap == Bootstrap::none) {
        // Nothing to finish: the rebuilt workspace is ready at once.
        fs::remove(marker, ec);
        if (ec) return std::unexpected("cannot remove the marker " + marker.string() + ": " + ec.message());
    }
    return Ensured{half_made ? Prepared::rebuilt : Prepared::created, *path};
}

std::expected<void, std::string> mark_ready(const fs::path &root, const std::string &key) {
    // Only the marker beside the workspace is touched: a safe name is all it needs.
    if (auto ok = check_component(key); !ok) return std::unexpected(ok.error());
    std::error_code ec;
    fs::remove(creating_marker(root, key), ec);
    if (ec) return std::unexpected("cannot mark workspace " + (root / key).string() + " ready: " + ec.message());
    return {};
}

std::expected<void, std::string> remove_directory(const fs::path &root, const std::string &key) {
    auto path = contained_path(root, key);
    if (!path) return std::unexpected(path.error());
    std::error_code ec;
    fs::remove_all(*path, ec);
    if (ec) return std::unexpected("cannot remove workspace " + path->string() + ": " + ec.message());
    fs::remove(creating_marker(root, key), ec);
    if (ec) return std::unexpected("cannot remove the marker " + creating_marker(root, key).string() + ": " + ec.message());
    return {};
}

} // namespace vik::workspace
