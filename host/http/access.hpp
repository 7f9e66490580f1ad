#pragma once
// Who may talk to the HTTP surface, decided before any route runs.
//
// Loopback without a token: the machine's users are trusted as they are by the control socket's
// peer check, but a web page in the operator's browser is not. Two browser attacks reach a
// loopback port: DNS rebinding (a hostile name resolving to 127.0.0.1 reads the API as "same
// origin") and cross-site POSTs (a form posting to 127.0.0.1 cancels sessions). So the Host header
// must name a loopback host, and a request carrying an Origin must come from this server's own
// origin. With a token (required off loopback): every API and metrics request carries
// `Authorization: Bearer <token>`; a browser never adds that header by itself, so a token also
// defeats both attacks. The dashboard's static files carry no data and are served to anyone who
// reaches the port (the page asks for the token).

#include "http/message.hpp"

#include <optional>
#include <string>

namespace vik::http {

struct AccessRules {
    std::string token;      // empty: no bearer token required (loopback only, server_config.cpp)
    std::string bound_host; // the address the server listens on, as configured
};

// nullopt: let the request through; else the refusal to send.
std::optional<Response> check_access(const Request &request, const AccessRules &rules, bool public_asset);

// Equal in time independent of where the strings differ (a token compare must not leak a prefix).
bool constant_time_equal(const std::string &a, const std::string &b);

} // namespace vik::http
