#pragma once
// The operator's line to a running vik-host: `vik-host issue retry ID` and `issue cancel ID`.
//
// A Unix stream socket in the abstract namespace, named after the workflow-scoped root (file
// system socket paths are limited to 108 bytes, which workflow roots easily pass). Only
// processes of the same user (or root) are served, checked with SO_PEERCRED. One request per
// connection, a JSON line {"command","id","value"}; one reply line: "ok <text>" or "error <text>".

#include <filesystem>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>

namespace boost::asio {
class io_context;
}

namespace vik::orchestrator {

std::string control_socket_name(const std::filesystem::path &scoped_root); // without the leading NUL

class ControlServer {
public:
    using Reply = std::function<void(std::string)>; // call exactly once, on the io_context's thread
    using Handler = std::function<void(const std::string &command, const std::string &id, const std::string &value, Reply reply)>;
    // Listens on the io_context's thread; `handler` runs there too. Throws when the name is taken.
    ControlServer(boost::asio::io_context &io, const std::string &name, Handler handler);
    ~ControlServer();
    struct Impl;

private:
    std::shared_ptr<Impl> impl_;
};

// Client side: sends one request and returns the reply line; throws NoHost when nothing listens,
// std::runtime_error when the host does not answer within timeout_ms.
struct NoHost : std::runtime_error {
    using std::runtime_error::runtime_error;
};
std::string control_request(const std::string &name, const std::string &command, const std::string &id, const std::string &value,
                            int timeout_ms);

} // namespace vik::orchestrator
