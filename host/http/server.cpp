#include "http/server.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <spdlog/spdlog.h>

#include <array>
#include <deque>
#include <map>
#include <optional>

namespace vik::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;

class Connection;

struct Server::Core : std::enable_shared_from_this<Server::Core> {
    Core(asio::io_context &io, Handler handler, PublicPredicate is_public, HttpStats &stats, ServerOptions options)
        : io(io), handler(std::move(handler)), is_public(std::move(is_public)), stats(stats), options(std::move(options)),
          retry_timer(io) {}

    asio::io_context &io;
    Handler handler;
    PublicPredicate is_public;
    HttpStats &stats;
    ServerOptions options;
    std::optional<tcp::acceptor> acceptor;
    asio::steady_timer retry_timer;
    std::map<uint64_t, std::weak_ptr<Connection>> connections;
    uint64_t next_id = 1;
    // Set by stop(): from then on nothing touches the handler, the stats or a subscription.
    bool stopped = false;

    void accept();
    void refuse(tcp::socket socket);
};

class Connection : public std::enable_shared_from_this<Connection> {
  public:
    Connection(std::shared_ptr<Server::Core> core, tcp::socket socket, uint64_t id)
        : core_(std::move(core)), stream_(std::move(socket)),
          buffer_(core_->options.limits.header_bytes + core_->options.limits.body_bytes + 1024), id_(id), heartbeat_(core_->io) {
        ++core_->stats.open_connections;
    }

    ~Connection() {
        if (core_->stopped) return;
        core_->connections.erase(id_);
        --core_->stats.open_connections;
        end_stream();
    }

    void start() { read_request(); }

    // The server stops: the socket closes now (pending operations complete with errors later,
    // touching nothing but this object) and the subscription ends while its owner still exists.
    void shutdown() {
        end_stream();
        close_socket();
    }

  private:
    const ServerLimits &limits() const { return core_->options.limits; }

    void read_request() {
        parser_.emplace();
        parser_->header_limit(static_cast<std::uint32_t>(limits().header_bytes));
        parser_->body_limit(limits().body_bytes);
        // One deadline for the whole request (head and body): a client sending a byte a second
        // cannot hold the connection longer than this.
        stream_.expires_after(limits().read_timeout);
        bhttp::async_read(stream_, buffer_, *parser_,
                          [self = shared_from_this()](beast::error_code ec, size_t) { self->on_read(ec); });
    }

    void on_read(beast::error_code ec) {
        if (core_->stopped) return;
        if (ec == bhttp::error::header_limit || ec == bhttp::error::buffer_overflow)
            return refuse_request(431, "header_too_large",
                                  "the request head is larger than " + std::to_string(limits().header_bytes) + " bytes");
        if (ec == bhttp::error::body_limit)
            return refuse_request(413, "body_too_large",
                                  "the request body is larger than " + std::to_string(limits().body_bytes) + " bytes");
        if (ec == bhttp::error::end_of_stream || ec == beast::error::timeout || ec == asio::error::operation_aborted ||
            ec == asio::error::connection_reset || ec == asio::error::eof)
            return close_socket();
        if (ec) return refuse_request(400, "bad_request", "the request is not valid HTTP/1.1: " + ec.message());

        auto &msg = parser_->get();
        Request req;
        req.method = std::string(msg.method_string());
        req.target = std::string(msg.target());
        req.body = std::move(msg.body());
        req.host = std::string(msg[bhttp::field::host]);
        req.origin = std::string(msg[bhttp::field::origin]);
        req.authorization = std::string(msg[bhttp::field::authorization]);
        const bool keep_alive = msg.keep_alive();
        const unsigned version = msg.version();

        Response res;
        if (auto refused = check_access(req, core_->options.access, core_->is_public(req.target))) {
            res = std::move(*refused);
            res.route = "refused";
        } else {
            try {
                res = core_->handler(req);
            } catch (const std::exception &e) {
                // A route that throws is a bug; the client gets a 500 and the loop goes on.
                spdlog::error("http: {} {} failed: {}", req.method, req.target, e.what());
                res = error_response(500, "internal", "the host failed to answer this request; its log says why");
                res.route = "other";
            }
        }
        if (res.deferred) return defer(std::move(res), keep_alive, version);
        ++core_->stats.requests[{res.route.empty() ? "other" : res.route, res.status}];
        if (res.stream && res.status == 200) return start_stream(std::move(res.stream));
        write_response(std::move(res), keep_alive, version);
    }

    // The route answers later; the connection waits (reading nothing) at most the write deadline.
    void defer(Response pending, bool keep_alive, unsigned version) {
        auto answered = std::make_shared<bool>(false);
        std::weak_ptr<Connection> weak = shared_from_this();
        auto finish = [weak, answered, keep_alive, version, route = pending.route](Response r) {
            auto self = weak.lock();
            if (!self || *answered || self->core_->stopped) return;
            *answered = true;
            self->heartbeat_.cancel();
            if (r.route.empty()) r.route = route;
            ++self->core_->stats.requests[{r.route, r.status}];
            self->write_response(std::move(r), keep_alive, version);
        };
        heartbeat_.expires_after(limits().write_timeout);
        // The timer's handler holds the connection while the answer is away (nothing else does).
        heartbeat_.async_wait([self = shared_from_this(), finish, answered](beast::error_code ec) {
            if (ec || *answered) return;
            finish(error_response(503, "no_answer", "the answer took too long; try again"));
        });
        try {
            pending.deferred(finish);
        } catch (const std::exception &e) {
            spdlog::error("http: deferred route failed: {}", e.what());
            finish(error_response(500, "internal", "the host failed to answer this request; its log says why"));
        }
    }

    void write_response(Response r, bool keep_alive, unsigned version) {
        auto msg = std::make_shared<bhttp::response<bhttp::string_body>>(static_cast<bhttp::status>(r.status), version);
        msg->set(bhttp::field::server, "vik-host");
        msg->set(bhttp::field::content_type, r.content_type);
        msg->set(bhttp::field::cache_control, "no-store");
        for (const auto &[name, value] : r.headers)
            msg->set(name, value);
        msg->keep_alive(keep_alive);
        msg->body() = std::move(r.body);
        msg->prepare_payload();
        stream_.expires_after(limits().write_timeout);
        bhttp::async_write(stream_, *msg, [self = shared_from_this(), msg, keep_alive](beast::error_code ec, size_t) {
            if (ec || self->core_->stopped) return self->close_socket();
            if (!keep_alive) return self->close_gracefully();
            self->read_request();
        });
    }

    // A request refused before it was read to its end: answer, then close without reading the
    // rest (which may be endless), yet gracefully enough that the client sees the answer.
    void refuse_request(int status, const std::string &code, const std::string &message) {
        auto r = error_response(status, code, message);
        ++core_->stats.requests[{"refused", status}];
        write_response(std::move(r), false, 11);
    }

    // Half-close, then discard what the client still sends for a moment: closing a socket with
    // unread data makes the kernel send a reset, which can destroy the answer before it is read.
    void close_gracefully() {
        beast::error_code ec;
        stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
        stream_.expires_after(std::chrono::milliseconds(500));
        drain(0);
    }

    void drain(size_t total) {
        stream_.async_read_some(asio::buffer(scratch_), [self = shared_from_this(), total](beast::error_code ec, size_t n) {
            if (ec || total + n > 1024 * 1024) return self->close_socket();
            self->drain(total + n);
        });
    }

    void start_stream(std::shared_ptr<EventStream> stream) {
        streaming_ = true;
        ++core_->stats.open_streams;
        // Close-delimited body: no chunking to undo for a client, and the stream has no end
        // but the connection's.
        enqueue("HTTP/1.1 200 OK\r\nServer: vik-host\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\n"
                "X-Accel-Buffering: no\r\nConnection: close\r\n\r\nretry: 3000\n\n");
        std::weak_ptr<Connection> weak = shared_from_this();
        closer_ = stream->open([weak](std::string frame) {
            if (auto self = weak.lock()) self->enqueue(std::move(frame));
        });
        watch_peer();
        arm_heartbeat();
    }

    void enqueue(std::string frame) {
        if (closed_) return;
        queued_bytes_ += frame.size();
        queue_.push_back(std::move(frame));
        if (queued_bytes_ > limits().max_stream_backlog) {
            // Too slow a reader: it would make the host buffer without bound. Cut off later, not
            // here: this runs inside the surface's listener call, which must not unsubscribe.
            closed_ = true;
            ++core_->stats.streams_dropped;
            spdlog::info("http: event stream dropped, its client read too slowly (more than {} bytes queued)",
                         limits().max_stream_backlog);
            asio::post(core_->io, [self = shared_from_this()] { self->shutdown(); });
            return;
        }
        if (!writing_) write_next();
    }

    void write_next() {
        if (queue_.empty() || closed_) {
            writing_ = false;
            return;
        }
        writing_ = true;
        stream_.expires_after(limits().write_timeout);
        asio::async_write(stream_, asio::buffer(queue_.front()), [self = shared_from_this()](beast::error_code ec, size_t) {
            if (ec || self->core_->stopped) return self->shutdown();
            self->queued_bytes_ -= self->queue_.front().size();
            self->queue_.pop_front();
            // No deadline while idle: the tcp_stream would fail the next write at once.
            self->stream_.expires_never();
            self->write_next();
        });
    }

    // An event stream's client sends nothing more; a read that completes means it went away.
    // On the bare socket: the tcp_stream's deadline belongs to the writes.
    void watch_peer() {
        stream_.socket().async_read_some(asio::buffer(scratch_), [self = shared_from_this()](beast::error_code ec, size_t) {
            if (self->core_->stopped) return;
            if (ec) return self->shutdown();
            self->watch_peer();
        });
    }

    void arm_heartbeat() {
        heartbeat_.expires_after(limits().heartbeat);
        heartbeat_.async_wait([self = shared_from_this()](beast::error_code ec) {
            if (ec || self->closed_ || self->core_->stopped) return;
            if (self->queue_.empty()) self->enqueue(": keep-alive\n\n");
            self->arm_heartbeat();
        });
    }

    void end_stream() {
        closed_ = true;
        if (streaming_) {
            streaming_ = false;
            if (!core_->stopped) --core_->stats.open_streams;
        }
        if (auto c = std::exchange(closer_, nullptr)) c();
    }

    void close_socket() {
        beast::error_code ec;
        heartbeat_.cancel();
        stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
        stream_.close();
    }

    std::shared_ptr<Server::Core> core_;
    beast::tcp_stream stream_;
    beast::flat_buffer buffer_;
    std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
    uint64_t id_;
    asio::steady_timer heartbeat_;
    std::array<char, 512> scratch_{};
    bool streaming_ = false, writing_ = false, closed_ = false;
    std::deque<std::string> queue_;
    size_t queued_bytes_ = 0;
    EventStream::Closer closer_;
};

void Server::Core::accept() {
    acceptor->async_accept([self = shared_from_this()](beast::error_code ec, tcp::socket socket) {
        if (self->stopped || ec == asio::error::operation_aborted) return;
        if (ec) {
            // Out of descriptors (EMFILE) and the like: try again shortly instead of spinning.
            spdlog::warn("http: accept failed: {}; retrying in 100 ms", ec.message());
            self->retry_timer.expires_after(std::chrono::milliseconds(100));
            self->retry_timer.async_wait([self](beast::error_code e) {
                if (!e && !self->stopped) self->accept();
            });
            return;
        }
        if (self->connections.size() >= self->options.limits.max_connections) {
            self->refuse(std::move(socket));
        } else {
            uint64_t id = self->next_id++;
            auto c = std::make_shared<Connection>(self, std::move(socket), id);
            self->connections[id] = c;
            c->start();
        }
        self->accept();
    });
}

void Server::Core::refuse(tcp::socket socket) {
    ++stats.connections_refused;
    // One small write on a fresh socket never blocks in practice; non-blocking makes sure a
    // client that reads nothing cannot stall the loop here either.
    static const std::string body = "{\"error\":{\"code\":\"busy\",\"message\":\"too many connections; try again in a moment\"}}";
    static const std::string busy = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nConnection: close\r\n"
                                    "Retry-After: 1\r\nContent-Length: " +
                                    std::to_string(body.size()) + "\r\n\r\n" + body;
    beast::error_code ec;
    socket.non_blocking(true, ec);
    socket.write_some(asio::buffer(busy), ec);
    socket.shutdown(tcp::socket::shutdown_both, ec);
    socket.close(ec);
}

Server::Server(asio::io_context &io, Handler handler, PublicPredicate is_public, HttpStats &stats, ServerOptions options)
    : core_(std::make_shared<Core>(io, std::move(handler), std::move(is_public), stats, std::move(options))) {}

Server::~Server() { stop(); }

std::expected<uint16_t, std::string> Server::listen() {
    auto &o = core_->options;
    const std::string where =
        (o.address.find(':') != std::string::npos ? "[" + o.address + "]" : o.address) + ":" + std::to_string(o.port);
    beast::error_code ec;
    auto address = asio::ip::make_address(o.address, ec);
    if (ec) return std::unexpected("cannot listen on " + where + ": '" + o.address + "' is not an IP address");
    tcp::endpoint endpoint(address, o.port);
    tcp::acceptor acceptor(core_->io);
    if (acceptor.open(endpoint.protocol(), ec); !ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor.bind(endpoint, ec);
    if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return std::unexpected("cannot listen on " + where + ": " + ec.message());
    uint16_t port = acceptor.local_endpoint().port();
    core_->acceptor.emplace(std::move(acceptor));
    core_->accept();
    return port;
}

void Server::stop() {
    if (core_->stopped) return;
    beast::error_code ec;
    if (core_->acceptor) core_->acceptor->close(ec);
    core_->retry_timer.cancel();
    auto connections = std::move(core_->connections);
    for (auto &[id, weak] : connections)
        if (auto c = weak.lock()) c->shutdown();
    core_->stats.open_connections = 0;
    core_->stats.open_streams = 0;
    core_->stopped = true;
}

} // namespace vik::http
