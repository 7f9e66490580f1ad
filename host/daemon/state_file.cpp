#include "daemon/state_file.hpp"

#include "logging/logging.hpp"
#include "util/private_files.hpp"

#include <boost/json.hpp>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <fstream>
#include <sstream>
#include <unistd.h>

namespace vik::daemon {

namespace fs = std::filesystem;
namespace json = boost::json;

std::expected<void, std::string> write_state(const fs::path &file, const ServiceState &s) {
    json::object o{{"workflow_path", s.workflow_path},
                   {"cwd", s.cwd},
                   {"pid", s.pid},
                   {"port", s.port},
                   {"bind_address", s.bind_address},
                   {"started_at", s.started_at},
                   {"log_dir", s.log_dir},
                   {"sessions_dir", s.sessions_dir},
                   {"command", s.command},
                   {"database", s.database}};
    std::string text = logging::json_pretty(o);
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
    s.database = str("database"); // absent in files written by vik
    return s;
}

std::string started_at_display(const std::string &t) {
    auto digits = [&](size_t at, size_t n, int &out) {
        if (at + n > t.size()) return false;
        out = 0;
        for (size_t i = at; i < at + n; ++i) {
            if (!std::isdigit(static_cast<unsigned char>(t[i]))) return false;
            out = out * 10 + (t[i] - '0');
        }
        return true;
    };
    std::tm tm{};
    int y, mo, d, h, mi, s;
    if (!digits(0, 4, y) || t.size() < 19 || t[4] != '-' || !digits(5, 2, mo) || t[7] != '-' || !digits(8, 2, d) ||
        (t[10] != 'T' && t[10] != 't' && t[10] != ' ') || !digits(11, 2, h) || t[13] != ':' || !digits(14, 2, mi) ||
        t[16] != ':' || !digits(17, 2, s))
        return t;
    size_t pos = 19;
    long nanos = 0;
    if (pos < t.size() && t[pos] == '.') {
        size_t start = ++pos;
        while (pos < t.size() && std::isdigit(static_cast<unsigned char>(t[pos])))
            ++pos;
        if (pos == start) return t;
        std::string frac = t.substr(start, std::min<size_t>(pos - start, 9));
        frac.resize(9, '0');
        nanos = std::stol(frac);
    }
    long offset = 0;
    if (pos < t.size() && (t[pos] == 'Z' || t[pos] == 'z') && pos + 1 == t.size()) {
    } else if (pos + 6 == t.size() && (t[pos] == '+' || t[pos] == '-') && t[pos + 3] == ':') {
        int oh, om;
        if (!digits(pos + 1, 2, oh) || !digits(pos + 4, 2, om)) return t;
        offset = (t[pos] == '+' ? 1 : -1) * (oh * 3600L + om * 60L);
    } else {
        return t;
    }
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = s;
    std::time_t secs = timegm(&tm) - offset;
    std::tm utc{};
    gmtime_r(&secs, &utc);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02d %02d:%02d:%02d", utc.tm_year + 1900, utc.tm_mon + 1, utc.tm_mday, utc.tm_hour,
                  utc.tm_min, utc.tm_sec);
    std::string out = buf;
    if (nanos != 0) {
        char f[32];
        if (nanos % 1000000 == 0)
            std::snprintf(f, sizeof f, ".%03ld", nanos / 1000000);
        else if (nanos % 1000 == 0)
            std::snprintf(f, sizeof f, ".%06ld", nanos / 1000);
        else
            std::snprintf(f, sizeof f, ".%09ld", nanos);
        out += f;
    }
    return out + " UTC";
}

} // namespace vik::daemon
