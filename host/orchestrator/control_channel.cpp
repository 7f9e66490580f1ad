#include "orchestrator/control_channel.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <boost/json.hpp>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <thread>
#include <unistd.h>

namespace vik::orchestrator {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using stream = asio::local::stream_protocol;
using Clock = std::chrono::steady_clock;

namespace {

constexpr const char *kSocketFile = "socket";

struct Fd {
    int fd = -1;
    explicit Fd(int f = -1) : fd(f) {}
    Fd(Fd &&o) noexcept : fd(std::exchange(o.fd, -1)) {}
    Fd &operator=(Fd &&o) noexcept {
        std::swap(fd, o.fd);
        return *this;
    }
    ~Fd() {
        if (fd >= 0) ::close(fd);
    }
    int release() { return std::exchange(fd, -1); }
};

std::string errno_text(int e = errno) { return std::strerror(e); }

std::string mode_text(mode_t mode) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
    return buf;
}

// Opens the socket directory without following a symlink and checks, on the opened directory
// itself (no window between check and use), that it belongs to `owner_ok` and that nobody else
// may create or replace entries in it.
Fd open_checked_directory(const fs::path &dir, bool server) {
    Fd fd(::open(dir.c_str(), (server ? O_RDONLY : O_PATH) | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (fd.fd < 0) {
        int e = errno;
        if (!server && e == ENOENT)
            throw NoHost("no vik-host is running this workflow (nothing listens on its control socket " +
                         (dir / kSocketFile).string() + ")");
        if (e == ELOOP || e == ENOTDIR)
            throw UntrustedListener("the control directory " + dir.string() +
                                    " is not a directory (a symlink?); refusing to use it. Remove it if it is not yours.");
        throw std::runtime_error("cannot open the control directory " + dir.string() + ": " + errno_text(e));
    }
    struct stat st {};
    if (::fstat(fd.fd, &st) != 0)
        throw std::runtime_error("cannot stat the control directory " + dir.string() + ": " + errno_text());
    uid_t me = ::geteuid();
    bool owner_ok = st.st_uid == me || (!server && st.st_uid == 0);
    if (!owner_ok)
        throw UntrustedListener(
            "the control directory " + dir.string() + " belongs to " + describe_uid(st.st_uid) + ", not to you (" +
            describe_uid(me) +
            "): another user may be impersonating vik-host; refusing to use it. Remove it if it is not yours.");
    if (st.st_mode & (S_IWGRP | S_IWOTH))
        throw UntrustedListener("the control directory " + dir.string() + " is writable by group or others (mode " +
                                mode_text(st.st_mode) + ", owner " + describe_uid(st.st_uid) +
                                "); refusing to use it. Make it 0700 (chmod 700 " + dir.string() + ").");
    if (server && (st.st_mode & 077) && ::fchmod(fd.fd, 0700) != 0)
        throw std::runtime_error("cannot make the control directory " + dir.string() + " private (chmod 0700): " + errno_text());
    return fd;
}

// The address of the socket in the opened directory. Through /proc/self/fd the path stays
// short whatever the workflow root's length, and names the directory that was checked.
sockaddr_un socket_address(int dir_fd, const fs::path &dir, socklen_t &len) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::string path;
    if (::access("/proc/self/fd", F_OK) == 0)
        path = "/proc/self/fd/" + std::to_string(dir_fd) + "/" + kSocketFile;
    else
        path = (dir / kSocketFile).string();
    if (path.size() >= sizeof addr.sun_path)
        throw std::runtime_error("the control socket path " + path +
                                 " is longer than a Unix socket path may be, and /proc is not mounted");
    std::memcpy(addr.sun_path, path.data(), path.size());
    len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
    return addr;
}

bool peer_credentials(int fd, Peer &peer) {
    ucred cred{};
    socklen_t len = sizeof cred;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return false;
    peer.pid = cred.pid;
    peer.uid = cred.uid;
    peer.gid = cred.gid;
    peer.sid = cred.pid > 0 ? ::getsid(cred.pid) : -1;
    return true;
}

int remaining_ms(Clock::time_point deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    return left <= 0 ? 0 : static_cast<int>(std::min<long long>(left, 1 << 30));
}

} // namespace

std::string describe_uid(uid_t uid) {
    std::string out = "uid " + std::to_string(uid);
    passwd pw{}, *found = nullptr;
    char buf[4096];
    if (::getpwuid_r(uid, &pw, buf, sizeof buf, &found) == 0 && found && found->pw_name)
        out += std::string(" (") + found->pw_name + ")";
    return out;
}

std::string control_socket_name(const fs::path &scoped_root) {
    return (scoped_root / "service" / "control" / kSocketFile).string();
}

// ---- server ---------------------------------------------------------------------------------

struct ControlServer::Impl : std::enable_shared_from_this<ControlServer::Impl> {
    Impl(asio::io_context &io, PeerHandler h, ControlLimits l)
        : acceptor(io), retry_accept(io), handler(std::move(h)), limits(l) {}
    stream::acceptor acceptor;
    asio::steady_timer retry_accept;
    PeerHandler handler;
    ControlLimits limits;
    size_t active = 0; // connections being served (busy refusals not counted)
    fs::path dir;
    Fd dir_fd;
    ino_t socket_inode = 0;

    struct Connection : std::enable_shared_from_this<Connection> {
        Connection(std::shared_ptr<Impl> s, stream::socket sock, bool counted)
            : server(std::move(s)), socket(std::move(sock)), deadline(socket.get_executor()),
              buf(server->limits.max_request_bytes), counted(counted) {
            if (counted) ++server->active;
        }
        ~Connection() {
            if (counted) --server->active;
        }
        std::shared_ptr<Impl> server;
        stream::socket socket;
        asio::steady_timer deadline;
        asio::streambuf buf;
        bool counted;
        bool replied = false;
        Peer peer;

        // A client gets `limit` for its part; then the connection is closed, whatever it is doing.
        void arm(std::chrono::milliseconds limit) {
            deadline.expires_after(limit);
            deadline.async_wait([self = shared_from_this()](const boost::system::error_code &ec) {
                if (ec) return;
                boost::system::error_code ignored;
                self->socket.close(ignored);
            });
        }

        void start() {
            if (!peer_credentials(socket.native_handle(), peer) || (peer.uid != ::getuid() && peer.uid != 0))
                return send("error permission denied: only the user running vik-host may control it");
            arm(server->limits.read_timeout);
            asio::async_read_until(socket, buf, '\n', [self = shared_from_this()](const boost::system::error_code &ec, size_t n) {
                self->deadline.cancel();
                if (ec == asio::error::not_found)
                    return self->send("error the request is longer than " +
                                      std::to_string(self->server->limits.max_request_bytes) + " bytes");
                if (ec) return; // closed by the client or by the deadline
                self->dispatch(std::string(asio::buffers_begin(self->buf.data()),
                                           asio::buffers_begin(self->buf.data()) + static_cast<long>(n)));
            });
        }

        void dispatch(const std::string &line) {
            boost::system::error_code jec;
            boost::json::value req = boost::json::parse(line, jec);
            if (jec || !req.is_object()) return send("error the request is not a JSON object");
            auto field = [&](const char *k) {
                auto *v = req.as_object().if_contains(k);
                return v && v->is_string() ? std::string(v->as_string()) : std::string();
            };
            ControlRequest request{field("command"), field("id"), field("value")};
            auto self = shared_from_this();
            try {
                server->handler(request, peer, [self](std::string answer) { self->send(std::move(answer)); });
            } catch (const std::exception &e) {
                send(std::string("error ") + e.what());
            }
        }

        void send(std::string text) {
            if (replied) return;
            replied = true;
            auto data = std::make_shared<std::string>(std::move(text) + "\n");
            arm(server->limits.write_timeout);
            asio::async_write(socket, asio::buffer(*data),
                              [self = shared_from_this(), data](const boost::system::error_code &, size_t) {
                                  self->deadline.cancel();
                                  boost::system::error_code ignored;
                                  self->socket.close(ignored);
                              });
        }
    };

    void listen(const fs::path &socket_path) {
        dir = socket_path.parent_path();
        std::error_code ec;
        fs::create_directories(dir.parent_path(), ec);
        if (ec) throw std::runtime_error("cannot create " + dir.parent_path().string() + ": " + ec.message());
        if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
            throw std::runtime_error("cannot create the control directory " + dir.string() + ": " + errno_text());
        dir_fd = open_checked_directory(dir, true);
        socklen_t len = 0;
        sockaddr_un addr = socket_address(dir_fd.fd, dir, len);

        // A socket left by a host that died is replaced; one that answers is another host's.
        struct stat st {};
        if (::fstatat(dir_fd.fd, kSocketFile, &st, AT_SYMLINK_NOFOLLOW) == 0) {
            if (S_ISSOCK(st.st_mode)) {
                Fd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
                if (probe.fd >= 0 && (::connect(probe.fd, reinterpret_cast<sockaddr *>(&addr), len) == 0 || errno == EAGAIN))
                    throw std::runtime_error("another process listens on the control socket " + (dir / kSocketFile).string());
            }
            if (::unlinkat(dir_fd.fd, kSocketFile, 0) != 0 && errno != ENOENT)
                throw std::runtime_error("cannot remove the stale control socket " + (dir / kSocketFile).string() + ": " +
                                         errno_text());
        }
        Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
        if (fd.fd < 0) throw std::runtime_error("socket: " + errno_text());
        if (::bind(fd.fd, reinterpret_cast<sockaddr *>(&addr), len) != 0)
            throw std::runtime_error("cannot bind the control socket " + (dir / kSocketFile).string() + ": " + errno_text());
        if (::listen(fd.fd, 64) != 0)
            throw std::runtime_error("cannot listen on the control socket " + (dir / kSocketFile).string() + ": " + errno_text());
        if (::fstatat(dir_fd.fd, kSocketFile, &st, AT_SYMLINK_NOFOLLOW) == 0) socket_inode = st.st_ino;
        acceptor.assign(stream(), fd.release());
    }

    void accept() {
        acceptor.async_accept([self = shared_from_this()](const boost::system::error_code &ec, stream::socket socket) {
            if (ec == asio::error::operation_aborted || !self->acceptor.is_open()) return;
            if (ec) {
                // Out of descriptors or similar: try again shortly instead of spinning.
                self->retry_accept.expires_after(std::chrono::milliseconds(100));
                self->retry_accept.async_wait([self](const boost::system::error_code &e) {
                    if (!e) self->accept();
                });
                return;
            }
            if (self->active >= self->limits.max_connections)
                std::make_shared<Connection>(self, std::move(socket), false)
                    ->send("error busy: " + std::to_string(self->active) + " control connections are being served; try again");
            else
                std::make_shared<Connection>(self, std::move(socket), true)->start();
            self->accept();
        });
    }

    void close() {
        boost::system::error_code ignored;
        acceptor.close(ignored);
        retry_accept.cancel();
        struct stat st {};
        if (dir_fd.fd >= 0 && socket_inode != 0 && ::fstatat(dir_fd.fd, kSocketFile, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            st.st_ino == socket_inode)
            ::unlinkat(dir_fd.fd, kSocketFile, 0);
    }
};

ControlServer::ControlServer(asio::io_context &io, const std::string &socket_path, PeerHandler handler, ControlLimits limits)
    : impl_(std::make_shared<Impl>(io, std::move(handler), limits)) {
    impl_->listen(socket_path);
    impl_->accept();
}

ControlServer::ControlServer(asio::io_context &io, const std::string &socket_path, Handler handler)
    : ControlServer(io, socket_path, [h = std::move(handler)](const ControlRequest &r, const Peer &, Reply reply) {
          h(r.command, r.id, r.value, std::move(reply));
      }) {}

ControlServer::~ControlServer() { impl_->close(); }

// ---- client ---------------------------------------------------------------------------------

namespace {

// One connection: checks the directory and the listener, sends `line`, returns the reply line.
std::string exchange(const fs::path &socket_path, const std::string &line, Clock::time_point deadline, int timeout_ms) {
    fs::path dir = socket_path.parent_path();
    Fd dir_fd = open_checked_directory(dir, false);
    socklen_t len = 0;
    sockaddr_un addr = socket_address(dir_fd.fd, dir, len);
    Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (fd.fd < 0) throw std::runtime_error("socket: " + errno_text());
    auto too_late = [&] { return std::runtime_error("vik-host did not answer within " + std::to_string(timeout_ms) + " ms"); };
    // A Unix socket whose backlog is full answers EAGAIN at once: try again until the deadline.
    while (::connect(fd.fd, reinterpret_cast<sockaddr *>(&addr), len) != 0) {
        if (errno == ENOENT || errno == ECONNREFUSED)
            throw NoHost("no vik-host is running this workflow (nothing listens on its control socket " + socket_path.string() +
                         ")");
        if (errno != EAGAIN && errno != EINTR)
            throw std::runtime_error("cannot connect to " + socket_path.string() + ": " + errno_text());
        if (remaining_ms(deadline) == 0) throw too_late();
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    // Before anything is sent: the listener must run as us (or root).
    Peer peer;
    if (!peer_credentials(fd.fd, peer))
        throw std::runtime_error("cannot read the credentials of the listener on " + socket_path.string());
    if (peer.uid != ::geteuid() && peer.uid != 0)
        throw UntrustedListener("the process listening on " + socket_path.string() + " (pid " + std::to_string(peer.pid) +
                                ") runs as " + describe_uid(peer.uid) + ", not as you (" + describe_uid(::geteuid()) +
                                "): it is not your vik-host; refusing to send anything");
    for (size_t sent = 0; sent < line.size();) {
        ssize_t n = ::send(fd.fd, line.data() + sent, line.size() - sent, MSG_NOSIGNAL);
        if (n > 0) {
            sent += static_cast<size_t>(n);
            continue;
        }
        // The host may answer before reading ("error busy") and close: read that answer.
        if (n < 0 && (errno == EPIPE || errno == ECONNRESET)) break;
        if (n < 0 && errno != EAGAIN && errno != EINTR)
            throw std::runtime_error("cannot send to vik-host's control socket: " + errno_text());
        pollfd p{fd.fd, POLLOUT, 0};
        if (::poll(&p, 1, remaining_ms(deadline)) <= 0) throw too_late();
    }
    std::string reply;
    char buf[4096];
    while (reply.find('\n') == std::string::npos) {
        pollfd p{fd.fd, POLLIN, 0};
        int r = ::poll(&p, 1, remaining_ms(deadline));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) throw too_late();
        ssize_t n = ::read(fd.fd, buf, sizeof buf);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        if (n <= 0) break;
        reply.append(buf, static_cast<size_t>(n));
    }
    if (reply.empty()) throw std::runtime_error("vik-host closed the control connection without an answer");
    reply.resize(reply.find('\n') == std::string::npos ? reply.size() : reply.find('\n'));
    return reply;
}

} // namespace

std::string control_request(const std::string &socket_path, const std::string &command, const std::string &id,
                            const std::string &value, int timeout_ms) {
    std::string line = boost::json::serialize(boost::json::object{{"command", command}, {"id", id}, {"value", value}}) + "\n";
    if (line.size() > ControlLimits{}.max_request_bytes)
        throw std::runtime_error("the request is " + std::to_string(line.size()) + " bytes; the control channel takes at most " +
                                 std::to_string(ControlLimits{}.max_request_bytes));
    auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    auto pause = std::chrono::milliseconds(50);
    for (;;) {
        std::string reply = exchange(socket_path, line, deadline, timeout_ms);
        // Every slot is taken (a burst of agents, or a client that hangs): wait for one.
        if (reply.rfind("error busy", 0) != 0 || Clock::now() + pause >= deadline) return reply;
        std::this_thread::sleep_for(pause);
        pause = std::min(pause * 2, std::chrono::milliseconds(1000));
    }
}

} // namespace vik::orchestrator
