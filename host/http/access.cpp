#include "http/access.hpp"

#include <algorithm>
#include <cctype>

namespace vik::http {

namespace {

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s;
}

// "127.0.0.1:8080" -> "127.0.0.1", "[::1]:80" -> "::1", "localhost" -> "localhost".
std::string host_name(const std::string &host_header) {
    std::string h = lower(host_header);
    if (!h.empty() && h.front() == '[') {
        size_t close = h.find(']');
        return close == std::string::npos ? h : h.substr(1, close - 1);
    }
    size_t colon = h.rfind(':');
    return colon == std::string::npos ? h : h.substr(0, colon);
}

bool loopback_name(const std::string &name) {
    return name == "localhost" || name == "::1" || name.starts_with("127.") || name.ends_with(".localhost");
}

} // namespace

bool constant_time_equal(const std::string &a, const std::string &b) {
    unsigned char diff = a.size() == b.size() ? 0 : 1;
    for (size_t i = 0; i < a.size(); ++i)
        diff |= static_cast<unsigned char>(a[i] ^ (b.empty() ? 0 : b[i % b.size()]));
    return diff == 0;
}

std::optional<Response> check_access(const Request &request, const AccessRules &rules, bool public_asset) {
    if (!rules.token.empty()) {
        if (public_asset) return std::nullopt;
        const std::string prefix = "Bearer ";
        bool ok = request.authorization.size() > prefix.size() &&
                  lower(request.authorization.substr(0, prefix.size())) == lower(prefix) &&
                  constant_time_equal(request.authorization.substr(prefix.size()), rules.token);
        if (ok) return std::nullopt;
        auto r = error_response(401, "unauthorized",
                                request.authorization.empty() ? "this server requires 'Authorization: Bearer <token>'"
                                                              : "the bearer token is not this server's");
        r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"vik-host\"");
        return r;
    }
    std::string name = host_name(request.host);
    if (!loopback_name(name) && name != lower(rules.bound_host))
        return error_response(403, "forbidden_host",
                              "Host '" + request.host +
                                  "' is not a loopback name; open the dashboard as http://127.0.0.1:<port>/ (a foreign "
                                  "host name here is how DNS rebinding reaches a loopback server)");
    if (!request.origin.empty() && request.origin != "null") {
        // The origin's host:port must be the one this request was sent to.
        std::string o = lower(request.origin);
        size_t scheme = o.find("://");
        std::string origin_host = scheme == std::string::npos ? o : o.substr(scheme + 3);
        if (origin_host != lower(request.host))
            return error_response(403, "forbidden_origin",
                                  "a request from the page '" + request.origin + "' may not use this server");
    } else if (request.origin == "null" && request.method != "GET" && request.method != "HEAD") {
        return error_response(403, "forbidden_origin", "a request from an opaque origin may not change anything");
    }
    return std::nullopt;
}

} // namespace vik::http
