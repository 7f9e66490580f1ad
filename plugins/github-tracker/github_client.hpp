#pragma once
// GitHub REST and GraphQL with the manners GitHub asks for: conditional requests (ETag /
// If-None-Match, so unchanged pages cost no rate limit), Link pagination, waiting out
// x-ratelimit-reset and retry-after, and capped exponential backoff on 5xx and transport errors,
// all inside one deadline per tracker call.

#include "http_client.hpp"

#include <boost/json/value.hpp>

#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace vik::github {

using Clock = std::chrono::steady_clock;

struct GithubError : std::runtime_error {
    GithubError(const std::string &message, long status = 0) : std::runtime_error(message), status(status) {}
    long status;
};

// An error GitHub's GraphQL layer answered with (the request reached GitHub and was refused, for
// example an item id that no longer exists), as opposed to a transport or HTTP failure.
struct GraphqlError : GithubError {
    using GithubError::GithubError;
};

class GithubClient {
  public:
    using Log = std::function<void(int level, const std::string &message)>;
    GithubClient(std::string api_url, std::string token, Log log);

    // GET one resource (path like "/repos/o/r/issues/1" or a full URL). 404 -> nullptr.
    boost::json::value get(const std::string &path, Clock::time_point deadline);
    // GET every page of a list (follows Link rel="next").
    std::vector<boost::json::value> get_all(const std::string &path, Clock::time_point deadline);
    // A write. POST is not retried (it is not idempotent); PATCH/PUT/DELETE are.
    boost::json::value send(const std::string &method, const std::string &path, const std::string &body,
                            Clock::time_point deadline);
    // A GraphQL request; GraphQL errors become GithubError.
    boost::json::value graphql(const std::string &query, const boost::json::value &variables, Clock::time_point deadline);

    // For tests and logs: requests answered from the ETag cache.
    size_t cache_hits() const { return cache_hits_; }

  private:
    struct Cached {
        std::string etag, body, link;
    };
    HttpResponse perform(const std::string &method, const std::string &url, const std::string &body, Clock::time_point deadline,
                         bool idempotent, const std::string &etag);
    HttpResponse cached_get(const std::string &url, Clock::time_point deadline);
    std::string url_for(const std::string &path) const;
    static std::string next_link(const std::string &link_header);

    std::string api_url_, token_;
    Log log_;
    std::mutex mutex_; // guards the cache and rate state (worker calls may overlap)
    std::map<std::string, Cached> cache_;
    long rate_remaining_ = -1;
    long rate_reset_ = 0;
    size_t cache_hits_ = 0;
};

} // namespace vik::github
