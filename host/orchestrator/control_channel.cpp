#include "orchestrator/control_channel.hpp"

#include "util/ids_and_time.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <boost/json.hpp>

#include <cerrno>
#include <cstring>
#include <poll.h>
#include <stdexcept>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace vik::orchestrator {

namespace asio = boost::asio;
using stream = asio::local::stream_protocol;

std::string control_socket_name(const std::filesystem::path &scoped_root) {
    return "vik-host/" + util::sha256_hex(scoped_root.string(), 32);
}

namespace {
stream::endpoint abstract_endpoint(const std::string &name) { return stream::endpoint(std::string(1, '\0') + name); }
} // namespace

struct ControlServer::Impl : std::enable_shared_from_this<ControlServer::Impl> {
    Impl(asio::io_context &io, const std::string &name, Handler h) : acceptor(io, abstract_endpoint(name)), handler(std::move(h)) {}
    stream::acceptor acceptor;
    Handler handler;

    void accept() {
        auto self = shared_from_this();
        acceptor.async_accept([self](const boost::system::error_code &ec, stream::socket socket) {
            if (ec == asio::error::operation_aborted) return;
            if (!ec) self->serve(std::make_shared<stream::socket>(std::move(socket)));
            self->accept();
        });
    }

    void serve(std::shared_ptr<stream::socket> socket) {
        ucred cred{};
        socklen_t len = sizeof cred;
        if (getsockopt(socket->native_handle(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 ||
            (cred.uid != getuid() && cred.uid != 0)) {
            reply(socket, "error permission denied: only the user running vik-host may control it");
            return;
        }
        auto buf = std::make_shared<asio::streambuf>(1024 * 1024); // one request line (a comment may be long)
        auto self = shared_from_this();
        asio::async_read_until(*socket, *buf, '\n', [self, socket, buf](const boost::system::error_code &ec, size_t n) {
            if (ec) return;
            std::string line(asio::buffers_begin(buf->data()), asio::buffers_begin(buf->data()) + static_cast<long>(n));
            boost::system::error_code jec;
            boost::json::value req = boost::json::parse(line, jec);
            auto field = [&](const char *k) {
                if (jec || !req.is_object()) return std::string();
                auto *v = req.as_object().if_contains(k);
                return v && v->is_string() ? std::string(v->as_string()) : std::string();
            };
            if (jec || !req.is_object()) {
                self->reply(socket, "error the request is not a JSON object");
                return;
            }
            try {
                self->handler(field("command"), field("id"), field("value"),
                              [self, socket](std::string answer) { self->reply(socket, std::move(answer)); });
            } catch (const std::exception &e) {
                self->reply(socket, std::string("error ") + e.what());
            }
        });
    }

    void reply(std::shared_ptr<stream::socket> socket, std::string text) {
        auto data = std::make_shared<std::string>(std::move(text) + "\n");
        asio::async_write(*socket, asio::buffer(*data), [socket, data](const boost::system::error_code &, size_t) {
            boost::system::error_code ignored;
            socket->close(ignored);
        });
    }
};

ControlServer::ControlServer(asio::io_context &io, const std::string &name, Handler handler)
    : impl_(std::make_shared<Impl>(io, name, std::move(handler))) {
    impl_->accept();
}

ControlServer::~ControlServer() {
    boost::system::error_code ignored;
    impl_->acceptor.close(ignored);
}

std::string control_request(const std::string &name, const std::string &command, const std::string &id, const std::string &value,
                            int timeout_ms) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    addr.sun_path[0] = '\0';
    std::memcpy(addr.sun_path + 1, name.data(), std::min(name.size(), sizeof addr.sun_path - 2));
    socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + std::min(name.size(), sizeof addr.sun_path - 2));
    if (::connect(fd, reinterpret_cast<sockaddr *>(&addr), len) != 0) {
        ::close(fd);
        throw NoHost("no vik-host is running this workflow (nothing listens on its control socket)");
    }
    std::string line = boost::json::serialize(boost::json::object{{"command", command}, {"id", id}, {"value", value}}) + "\n";
    if (::write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
        ::close(fd);
        throw std::runtime_error("cannot send to vik-host's control socket");
    }
    std::string reply;
    char buf[1024];
    for (;;) {
        pollfd p{fd, POLLIN, 0};
        int r = ::poll(&p, 1, timeout_ms);
        if (r <= 0) {
            ::close(fd);
            throw std::runtime_error("vik-host did not answer within " + std::to_string(timeout_ms) + " ms");
        }
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n <= 0) break;
        reply.append(buf, static_cast<size_t>(n));
        if (reply.find('\n') != std::string::npos) break;
    }
    ::close(fd);
    while (!reply.empty() && reply.back() == '\n') reply.pop_back();
    return reply;
}

} // namespace vik::orchestrator
