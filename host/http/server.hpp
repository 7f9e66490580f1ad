#pragma once
// The HTTP/1.1 server of the operator surfaces: Boost.Beast on the orchestrator's io_context, one
// thread for everything (the loop's), no thread per connection.
//
// A client can cost the loop only bounded work: a request's head is at most 8 KiB (431 beyond),
// its body at most 64 KiB (413), the whole request must arrive within `read_timeout` and every
// response write finish within `write_timeout` (the connection is closed otherwise), at most
// `max_connections` are open at once (the rest get a 503 and are closed), and an event stream
// whose client falls more than `max_stream_backlog` bytes behind is cut off.
//
// Lifetime: stop() (or the destructor) closes the listener and every connection and ends every
// event-stream subscription at once, so nothing reaches the handler's objects afterwards, even
// while the io_context still holds completion handlers of closed connections.

#include "http/access.hpp"
#include "http/message.hpp"
#include "http/metrics.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <functional>
#include <memory>
#include <string>

namespace boost::asio {
class io_context;
}

namespace vik::http {

struct ServerLimits {
    size_t header_bytes = 8 * 1024;
    size_t body_bytes = 64 * 1024;
    std::chrono::milliseconds read_timeout{10000};  // one whole request, and the keep-alive wait
    std::chrono::milliseconds write_timeout{10000}; // one response, one event frame
    size_t max_connections = 64;                    // event streams included
    size_t max_stream_backlog = 1024 * 1024;        // bytes queued for one event stream
    std::chrono::milliseconds heartbeat{15000};     // a comment on idle streams: dead peers show
};

struct ServerOptions {
    std::string address = "127.0.0.1";
    uint16_t port = 0; // 0: any free port (listen() says which)
    AccessRules access;
    ServerLimits limits;
};

using Handler = std::function<Response(const Request &)>;
// Which targets are public (no token needed), see access.hpp.
using PublicPredicate = std::function<bool(const std::string &target)>;

class Server {
  public:
    // `stats` must outlive the server; it is updated on the loop.
    Server(boost::asio::io_context &io, Handler handler, PublicPredicate is_public, HttpStats &stats, ServerOptions options);
    ~Server();
    Server(const Server &) = delete;
    Server &operator=(const Server &) = delete;

    // Binds and starts accepting. The port listened on, or why not ("cannot listen on
    // 127.0.0.1:80: Permission denied").
    std::expected<uint16_t, std::string> listen();
    void stop();

    struct Core;

  private:
    std::shared_ptr<Core> core_;
};

} // namespace vik::http
