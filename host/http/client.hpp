#pragma once
// A one-request HTTP/1.1 client for the command line (`vik-host status`, `vik-host refresh`)
// talking to a running host's API. Blocking for its caller, bounded by one deadline.

#include <chrono>
#include <cstdint>
#include <expected>
#include <string>

namespace vik::http {

struct ClientReply {
    int status = 0;
    std::string body;
};

// `method target` to address:port with `Authorization: Bearer token` when a token is given.
// The reply, or why none came ("cannot connect to 127.0.0.1:8080: Connection refused",
// "no answer within 3000 ms").
std::expected<ClientReply, std::string> call(const std::string &address, uint16_t port, const std::string &method,
                                             const std::string &target, const std::string &token,
                                             std::chrono::milliseconds timeout = std::chrono::milliseconds(3000));

} // namespace vik::http
