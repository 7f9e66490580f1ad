#include "daemon/scoped_root.hpp"

#include "util/private_files.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <pwd.h>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>

namespace vik::daemon {

namespace fs = std::filesystem;

namespace {

constexpr const char *kOwnerFile = "workflow_path";

std::string user_name(uid_t uid) {
    if (auto *pw = getpwuid(uid); pw && pw->pw_name) return pw->pw_name;
    return "uid " + std::to_string(uid);
}

// The nearest ancestor this process can stat: its owner is who the files belong to.
std::string owner_of(const fs::path &path) {
    for (fs::path p = path; !p.empty(); p = p.parent_path()) {
        struct stat st {};
        if (::stat(p.c_str(), &st) == 0) return user_name(st.st_uid);
        if (p == p.parent_path()) break;
    }
    return "another user";
}

bool denied(int err) { return err == EACCES || err == EPERM; }

std::string not_writable(const fs::path &dir, int err, const workflow::Config &c) {
    std::string who = user_name(geteuid());
    std::string what = denied(err) || err == EROFS ? "is not writable by " + who + " (" + std::strerror(err) + ")"
                                                   : "cannot be created: " + std::string(std::strerror(err));
    return "run failed: " + dir.string() + " " + what + "; vik-host keeps its logs, sessions and workspaces under " +
           c.home.string() + ": make it writable, or point workspace.root (or $VIK_HOME) at a directory " + who + " owns";
}

// Reads the recorded owner; nullopt when there is none yet. EACCES is an error.
std::expected<std::optional<std::string>, int> read_owner(const fs::path &file) {
    int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) return std::optional<std::string>();
        return std::unexpected(errno);
    }
    std::string text;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof buf)) > 0 && text.size() < 65536)
        text.append(buf, static_cast<size_t>(n));
    ::close(fd);
    while (!text.empty() && text.back() == '\n')
        text.pop_back();
    return std::optional<std::string>(text);
}

std::string collision(const workflow::Config &c, const std::string &owner) {
    return "the directory " + c.scoped_root().string() + " belongs to the workflow " + owner + ", and " +
           c.workflow_path.string() +
           " maps to the same directory (vik's key replaces every '/' with '-'); give one of them its own workspace.root";
}

} // namespace

std::string permission_denied(const fs::path &path) {
    return "permission denied: " + path.string() + " (owned by " + owner_of(path) + "; run this command as that user)";
}

std::expected<void, std::string> prepare_scoped_root(const workflow::Config &c) {
    fs::path root = c.scoped_root();
    for (const fs::path &dir : {root, c.logs_dir(), c.sessions_dir(), c.issues_dir(), c.service_dir()}) {
        if (std::error_code ec = util::create_private_directories(dir)) return std::unexpected(not_writable(dir, ec.value(), c));
        // Directories an older vik-host created 0755: tighten them (only ours; others fail quietly).
        struct stat st {};
        if (::stat(dir.c_str(), &st) == 0 && st.st_uid == geteuid() && (st.st_mode & 077) != 0) ::chmod(dir.c_str(), 0700);
        if (::access(dir.c_str(), W_OK | X_OK) != 0) return std::unexpected(not_writable(dir, errno, c));
    }

    // Claim the root: the first workflow to link its record wins, atomically.
    fs::path owner = root / kOwnerFile;
    auto recorded = read_owner(owner);
    if (!recorded) return std::unexpected("run failed: " + permission_denied(owner));
    if (!*recorded) {
        fs::path tmp = root / (std::string(kOwnerFile) + ".tmp." + std::to_string(getpid()));
        util::AppendFile f;
        std::error_code ec = f.open(tmp);
        if (!ec) ec = f.append(c.workflow_path.string() + "\n");
        f.close();
        if (ec) {
            ::unlink(tmp.c_str());
            return std::unexpected(not_writable(root, ec.value(), c));
        }
        int linked = ::link(tmp.c_str(), owner.c_str());
        int err = errno;
        ::unlink(tmp.c_str());
        if (linked != 0 && err != EEXIST) return std::unexpected(not_writable(root, err, c));
        recorded = read_owner(owner);
        if (!recorded) return std::unexpected("run failed: " + permission_denied(owner));
    }
    if (*recorded && **recorded != c.workflow_path.string()) return std::unexpected("run failed: " + collision(c, **recorded));
    return {};
}

std::optional<std::string> check_scoped_root(const workflow::Config &c) {
    fs::path root = c.scoped_root();
    struct stat st {};
    if (::stat(root.c_str(), &st) != 0) {
        if (denied(errno)) return permission_denied(root);
        return std::nullopt; // nothing ran here yet
    }
    if (::access(root.c_str(), R_OK | X_OK) != 0 && denied(errno)) return permission_denied(root);
    auto recorded = read_owner(root / kOwnerFile);
    if (!recorded) return denied(recorded.error()) ? permission_denied(root / kOwnerFile) : std::optional<std::string>();
    if (*recorded && **recorded != c.workflow_path.string()) return collision(c, **recorded);
    return std::nullopt;
}

} // namespace vik::daemon
