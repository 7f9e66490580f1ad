#pragma once
// A small blocking HTTP client on libcurl: one request, a hard timeout, headers in and out.
// Error messages never contain request headers (the token travels in one).

#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace vik::github {

struct HttpResponse {
    long status = 0;
    std::map<std::string, std::string> headers; // lower-case names
    std::string body;
    std::string header(const std::string &name) const {
        auto it = headers.find(name);
        return it == headers.end() ? "" : it->second;
    }
};

struct HttpError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// Throws HttpError for transport failures (connection refused, timeout, TLS).
HttpResponse http_request(const std::string &method, const std::string &url, const std::vector<std::string> &headers,
                          const std::string &body, long timeout_ms);

std::string url_encode(const std::string &text);

} // namespace vik::github
