#include "daemon/state_file.hpp"

#include "util/private_files.hpp"

#include <boost/json.hpp>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <sstream>
#include <unistd.h>

namespace vik::daemon {

namespace fs = std::filesystem;
namespace json = boost::json;

std::expected<void, std::string> write_state(const fs::path &file, const ServiceState &s) {
    json::object o{{"workflow_path", s.workflow_path}, {"cwd", s.cwd}, {"pid", s.pid}, {"port", s.port},
                   {"bind_address", s.bind_address}, {"started_at", s.started_at}, {"log_dir", s.log_dir},
                   {"sessions_dir", s.sessions_dir}, {"command", s.command}};
    std::string text = json::serialize(o) + "\n";
    if (std::error_code ec = util::create_private_directories(file.parent_path()))
        return std::unexpected("cannot create " + file.parent_path().string() + ": " + ec.message());
    fs::path tmp = file;
    tmp += ".tmp." + std::to_string(getpid());
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return std::unexpected("cannot write " + tmp.string() + ": " + std::strerror(errno));
    bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
    int err = errno;
    ::close(fd);
    if (!ok || ::rename(tmp.c_str(), file.c_str()) != 0) {
        if (ok) err = errno;
        ::unlink(tmp.c_str());
        return std::unexpected("cannot write " + file.string() + ": " + std::strerror(err == 0 ? ENOSPC : err));
    }
    return {};
}

std::expected<ServiceState, std::string> read_state(const fs::path &file) {
    std::ifstream in(file);
    if (!in) return std::unexpected("cannot read " + file.string());
    std::stringstream ss;
    ss << in.rdbuf();
    boost::system::error_code ec;
    json::value v = json::parse(ss.str(), ec);
    if (ec || !v.is_object()) return std::unexpected(file.string() + " is not a valid state file");
    const auto &o = v.as_object();
    auto str = [&](const char *k) {
        auto *x = o.if_contains(k);
        return x && x->is_string() ? std::string(x->as_string()) : std::string();
    };
    auto num = [&](const char *k) -> long {
        auto *x = o.if_contains(k);
        return x && x->is_int64() ? static_cast<long>(x->as_int64()) : 0;
    };
    ServiceState s;
    s.workflow_path = str("workflow_path");
    s.cwd = str("cwd");
    s.pid = num("pid");
    s.port = static_cast<int>(num("port"));
    s.bind_address = str("bind_address");
    s.started_at = str("started_at");
    s.log_dir = str("log_dir");
    s.sessions_dir = str("sessions_dir");
    s.command = str("command");
    return s;
}

} // namespace vik::daemon
