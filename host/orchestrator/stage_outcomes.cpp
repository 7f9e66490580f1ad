#include "orchestrator/stage_outcomes.hpp"

#include "template/template.hpp"

#include <boost/json.hpp>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <system_error>

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace vik::orchestrator {

namespace json = boost::json;
namespace fs = std::filesystem;

namespace {

// Opens `rel` below the directory `dir` without leaving it: openat2 with RESOLVE_BENEATH refuses
// `..` and symbolic links that lead out (links inside are followed), and O_NONBLOCK keeps a FIFO
// from blocking the loop. On kernels without openat2 (before 5.6) no symbolic link is followed
// at all in the last component and the resolved path is checked instead.
int open_beneath(int dir, const fs::path &root, const std::string &rel, int flags) {
    open_how how{};
    how.flags = static_cast<uint64_t>(flags) | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
    long fd = ::syscall(SYS_openat2, dir, rel.c_str(), &how, sizeof how);
    if (fd >= 0 || errno != ENOSYS) return static_cast<int>(fd);
    std::error_code ec;
    fs::path resolved = fs::weakly_canonical(root / rel, ec);
    fs::path inside = resolved.lexically_relative(root);
    if (ec || inside.empty() || *inside.begin() == "..") {
        errno = EXDEV;
        return -1;
    }
    return ::openat(dir, rel.c_str(), flags | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | O_NOFOLLOW);
}

std::string why_not_opened(const std::string &file, int err) {
    if (err == ENOENT) return "the agent wrote no outcome file '" + file + "' (the stage's outcome.file)";
    if (err == EXDEV || err == ELOOP) return "'" + file + "' leads out of the workspace (a symbolic link?); it is not read";
    return "'" + file + "' cannot be opened: " + std::strerror(err);
}

struct Fd {
    int fd = -1;
    explicit Fd(int f) : fd(f) {}
    Fd(const Fd &) = delete;
    Fd &operator=(const Fd &) = delete;
    ~Fd() {
        if (fd >= 0) ::close(fd);
    }
};

bool has_type(const json::value &v, const std::string &type) {
    if (type == "string") return v.is_string();
    if (type == "boolean") return v.is_bool();
    if (type == "integer") {
        if (v.is_int64() || v.is_uint64()) return true;
        if (!v.is_double()) return false;
        double d = v.get_double(); // a whole number within int64's range (the cast is undefined past it)
        return std::isfinite(d) && std::trunc(d) == d && std::fabs(d) < 0x1p63;
    }
    if (type == "number") return v.is_number();
    if (type == "array") return v.is_array();
    if (type == "object") return v.is_object();
    return false;
}

const char *type_of(const json::value &v) {
    switch (v.kind()) {
    case json::kind::null:
        return "null";
    case json::kind::bool_:
        return "boolean";
    case json::kind::int64:
    case json::kind::uint64:
        return "integer";
    case json::kind::double_:
        return "number";
    case json::kind::string:
        return "string";
    case json::kind::array:
        return "array";
    case json::kind::object:
        return "object";
    }
    return "value";
}

} // namespace

std::expected<json::object, std::string> read_outcome(const fs::path &workdir, const workflow::OutcomeSpec &spec) {
    Fd root(::open(workdir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (root.fd < 0) return std::unexpected("the workspace " + workdir.string() + " cannot be opened: " + std::strerror(errno));
    std::error_code ec;
    fs::path real_root = fs::canonical(workdir, ec);
    Fd file(open_beneath(root.fd, real_root, spec.file, O_RDONLY));
    if (file.fd < 0) return std::unexpected(why_not_opened(spec.file, errno));
    struct stat st {};
    if (::fstat(file.fd, &st) != 0 || !S_ISREG(st.st_mode)) return std::unexpected("'" + spec.file + "' is not a regular file");
    std::string text;
    char buf[8192];
    for (;;) {
        ssize_t n = ::read(file.fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return std::unexpected("'" + spec.file + "' cannot be read: " + std::strerror(errno));
        if (n == 0) break;
        text.append(buf, static_cast<size_t>(n));
        if (text.size() > workflow::kMaxOutcomeBytes)
            return std::unexpected("'" + spec.file + "' is larger than " + std::to_string(workflow::kMaxOutcomeBytes / 1024) +
                                   " KiB");
    }
    json::value v = json::parse(text, ec);
    if (ec) return std::unexpected("'" + spec.file + "' is not valid JSON: " + ec.message());
    if (!v.is_object()) return std::unexpected("'" + spec.file + "' holds a JSON " + type_of(v) + ", not an object");
    json::object &o = v.as_object();
    for (const auto &[name, type] : spec.fields) {
        const json::value *f = o.if_contains(name);
        if (!f) return std::unexpected("'" + spec.file + "' has no field '" + name + "' (" + type + ")");
        if (!has_type(*f, type))
            return std::unexpected("'" + spec.file + "' field '" + name + "' is a " + type_of(*f) + ", expected " + type);
    }
    return std::move(o);
}

std::expected<void, std::string> clear_outcome(const fs::path &workdir, const workflow::OutcomeSpec &spec) {
    // The entry itself goes (a symbolic link, not what it points to; a directory with what is in
    // it), found through its parent directory opened beneath the workspace.
    Fd root(::open(workdir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (root.fd < 0) return std::unexpected("the workspace " + workdir.string() + " cannot be opened: " + std::strerror(errno));
    std::error_code ec;
    fs::path real_root = fs::canonical(workdir, ec);
    fs::path rel(spec.file);
    std::string parent_rel = rel.has_parent_path() ? rel.parent_path().string() : ".";
    Fd parent(open_beneath(root.fd, real_root, parent_rel, O_RDONLY | O_DIRECTORY));
    if (parent.fd < 0) {
        if (errno == ENOENT) return {}; // no parent directory, no file
        return std::unexpected(why_not_opened(parent_rel, errno));
    }
    std::string name = rel.filename().string();
    if (::unlinkat(parent.fd, name.c_str(), 0) == 0 || errno == ENOENT) return {};
    if (errno != EISDIR && errno != EPERM)
        return std::unexpected("'" + spec.file + "' cannot be removed: " + std::strerror(errno));
    // A directory: through /proc/self/fd, the parent as opened (no path lookup outside it).
    fs::path dir = fs::path("/proc/self/fd") / std::to_string(parent.fd) / name;
    if (fs::symlink_status(dir, ec).type() != fs::file_type::directory)
        return std::unexpected("'" + spec.file + "' cannot be removed");
    fs::remove_all(fs::read_symlink(fs::path("/proc/self/fd") / std::to_string(parent.fd), ec) / name, ec);
    if (ec) return std::unexpected("'" + spec.file + "' cannot be removed: " + ec.message());
    return {};
}

std::expected<bool, std::string> outcome_succeeded(const workflow::OutcomeSpec &spec, const std::string &stage_name,
                                                   const json::object &outcome) {
    if (!spec.succeed_if) return true;
    try {
        std::string r =
            tmpl::render_text(workflow::condition_template(*spec.succeed_if),
                              "issue.stages." + stage_name + ".outcome.succeed_if", json::object{{"outcome", outcome}});
        return r == "1";
    } catch (const std::exception &e) {
        return std::unexpected(std::string("succeed_if cannot be evaluated: ") + e.what());
    }
}

void StageOutcomes::record(const std::string &issue_id, const std::string &stage, json::object outcome,
                           std::chrono::system_clock::time_point at) {
    if (store_) store_->record_outcome(store::OutcomeRecord{issue_id, stage, json::serialize(outcome), at});
    by_issue_[issue_id][stage] = std::move(outcome);
}

json::object StageOutcomes::of(const std::string &issue_id) const {
    auto it = by_issue_.find(issue_id);
    return it == by_issue_.end() ? json::object{} : it->second;
}

void StageOutcomes::forget(const std::string &issue_id) {
    if (by_issue_.erase(issue_id) && store_) store_->forget_outcomes(issue_id);
}

void StageOutcomes::restore(const std::vector<store::OutcomeRecord> &records) {
    for (const auto &r : records) {
        std::error_code ec;
        json::value v = json::parse(r.json, ec);
        if (!ec && v.is_object()) by_issue_[r.issue_id][r.stage] = std::move(v.as_object());
    }
}

} // namespace vik::orchestrator
