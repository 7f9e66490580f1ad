#pragma once
// The operator's line to a running vik-host: `vik-host issue retry|cancel|set-state|comment`.
//
// A Unix stream socket in a private directory of the workflow: <scoped root>/service/control/
// (mode 0700, owned by the host's user; a directory owned by anyone else, or writable by group
// or others, is refused by both ends with a message naming its owner). The socket is reached
// through /proc/self/fd/<dir fd>/socket, so long workflow roots do not hit the 108-byte limit of
// socket paths and the directory that was checked is the one used. Both ends check the other
// with SO_PEERCRED: the host serves only its own user (or root); the client talks only to a
// listener running as its own user (or root), before it sends anything.
//
// One request per connection, a JSON line {"command","id","value"}; one reply line:
// "ok <text>" or "error <text>". A connection must deliver its request within
// ControlLimits::read_timeout and in at most max_request_bytes; at most max_connections are
// served at once, the rest are answered "error busy: ..." and closed (the client retries those).

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <sys/types.h>

namespace boost::asio {
class io_context;
}

namespace vik::orchestrator {

// The control socket's path for a workflow: <scoped_root>/service/control/socket. (The name is
// historical: this used to be an abstract socket name.)
std::string control_socket_name(const std::filesystem::path &scoped_root);

// Who is on the other end of a control connection, from SO_PEERCRED at accept time.
// `sid` is getsid(pid), -1 when the process is already gone. Every process the host starts is a
// session leader (setsid), so a request made from inside an agent carries the agent process's
// pid as its sid; an operator's shell has its own session. A process can leave its session
// (setsid), so this tells honest agents from operators; it is not an authentication.
struct Peer {
    pid_t pid = -1;
    uid_t uid = static_cast<uid_t>(-1);
    gid_t gid = static_cast<gid_t>(-1);
    pid_t sid = -1;
};

struct ControlRequest {
    std::string command, id, value;
};

struct ControlLimits {
    std::chrono::milliseconds read_timeout{5000};  // from accept to the request's newline
    std::chrono::milliseconds write_timeout{5000}; // for the reply
    size_t max_request_bytes = 1024 * 1024;        // one request line (a comment may be long)
    size_t max_connections = 16;                   // served at once
};

class ControlServer {
  public:
    using Reply = std::function<void(std::string)>; // call exactly once, on the io_context's thread
    using Handler = std::function<void(const std::string &command, const std::string &id, const std::string &value, Reply reply)>;
    using PeerHandler = std::function<void(const ControlRequest &request, const Peer &peer, Reply reply)>;

    // Listens on `socket_path` (from control_socket_name) on the io_context's thread; the handler
    // runs there too. Creates the private directory, checks it, and replaces a stale socket file.
    // Throws std::runtime_error naming the path when the directory is not private or another
    // process listens there.
    ControlServer(boost::asio::io_context &io, const std::string &socket_path, PeerHandler handler, ControlLimits limits = {});
    // Without the peer (the handler cannot tell agents from operators).
    ControlServer(boost::asio::io_context &io, const std::string &socket_path, Handler handler);
    ~ControlServer(); // stops listening and removes the socket file
    struct Impl;

  private:
    std::shared_ptr<Impl> impl_;
};

// Client side: sends one request and returns the reply line. Throws NoHost when nothing
// listens, UntrustedListener when the directory or the listener belongs to another user (the
// message names the owner), std::runtime_error when the host does not answer within timeout_ms.
struct NoHost : std::runtime_error {
    using std::runtime_error::runtime_error;
};
struct UntrustedListener : std::runtime_error {
    using std::runtime_error::runtime_error;
};
std::string control_request(const std::string &socket_path, const std::string &command, const std::string &id,
                            const std::string &value, int timeout_ms);

// "uid 65534 (nobody)"; for messages.
std::string describe_uid(uid_t uid);

} // namespace vik::orchestrator
