#include "github_client.hpp"

#include <vik/plugin.h>

#include <boost/json.hpp>

#include <ctime>
#include <thread>

namespace vik::github {

namespace json = boost::json;

GithubClient::GithubClient(std::string api_url, std::string token, Log log)
    : api_url_(std::move(api_url)), token_(std::move(token)), log_(std::move(log)) {
    while (!api_url_.empty() && api_url_.back() == '/')
        api_url_.pop_back();
}

std::string GithubClient::url_for(const std::string &path) const {
    if (path.rfind("http://", 0) == 0 || path.rfind("https://", 0) == 0) return path;
    return api_url_ + path;
}

std::string GithubClient::next_link(const std::string &link) {
    // <https://api.github.com/...&page=2>; rel="next", <...>; rel="last"
    size_t pos = 0;
    while ((pos = link.find('<', pos)) != std::string::npos) {
        size_t end = link.find('>', pos);
        if (end == std::string::npos) break;
        std::string url = link.substr(pos + 1, end - pos - 1);
        size_t next = link.find(',', end);
        std::string params = link.substr(end + 1, next == std::string::npos ? std::string::npos : next - end - 1);
        if (params.find("rel=\"next\"") != std::string::npos) return url;
        pos = end + 1;
    }
    return "";
}

namespace {

long ms_left(Clock::time_point deadline) {
    return static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count());
}

std::string short_path(const std::string &url) {
    auto scheme = url.find("://");
    auto slash = scheme == std::string::npos ? 0 : url.find('/', scheme + 3);
    return slash == std::string::npos ? url : url.substr(slash);
}

std::string github_message(const HttpResponse &r) {
    boost::system::error_code ec;
    json::value v = json::parse(r.body, ec);
    if (!ec && v.is_object() && v.as_object().contains("message") && v.as_object().at("message").is_string())
        return std::string(v.as_object().at("message").as_string());
    return r.body.substr(0, 200);
}

} // namespace

HttpResponse GithubClient::perform(const std::string &method, const std::string &url, const std::string &body,
                                   Clock::time_point deadline, bool idempotent, const std::string &etag) {
    std::vector<std::string> headers = {"Accept: application/vnd.github+json", "X-GitHub-Api-Version: 2022-11-28",
                                        "User-Agent: vik-host", "Content-Type: application/json"};
    if (!token_.empty()) headers.push_back("Authorization: Bearer " + token_);
    if (!etag.empty()) headers.push_back("If-None-Match: " + etag);
    int attempt = 0;
    std::string last_error;
    auto backoff = [&](long wait_ms, const std::string &why) {
        last_error = why;
        if (ms_left(deadline) <= wait_ms)
            throw GithubError("GitHub " + method + " " + short_path(url) + " gave up before the call's deadline: " + why);
        log_(VIK_LOG_WARN,
             "GitHub " + method + " " + short_path(url) + ": " + why + "; retrying in " + std::to_string(wait_ms) + " ms");
        std::this_thread::sleep_for(std::chrono::milliseconds(wait_ms));
    };
    for (;;) {
        // Primary rate limit known to be exhausted: wait for the reset, inside the deadline only.
        long reset_wait = 0;
        {
            std::lock_guard lock(mutex_);
            if (rate_remaining_ == 0 && rate_reset_ > std::time(nullptr))
                reset_wait = (rate_reset_ - std::time(nullptr) + 1) * 1000;
        }
        if (reset_wait > 0) {
            if (ms_left(deadline) <= reset_wait)
                throw GithubError("GitHub rate limit exhausted; it resets in " + std::to_string(reset_wait / 1000) + " s", 403);
            std::this_thread::sleep_for(std::chrono::milliseconds(reset_wait));
            std::lock_guard lock(mutex_);
            rate_remaining_ = -1;
        }
        long left = ms_left(deadline);
        if (left <= 0)
            throw GithubError("GitHub " + method + " " + short_path(url) + " timed out" +
                              (last_error.empty() ? "" : ": " + last_error));
        HttpResponse r;
        try {
            r = http_request(method, url, headers, body, std::min(left, 30000L));
        } catch (const HttpError &e) {
            if (!idempotent) throw GithubError(e.what());
            backoff(std::min(1000L << std::min(attempt++, 4), 8000L), e.what());
            continue;
        }
        {
            std::lock_guard lock(mutex_);
            if (auto rem = r.header("x-ratelimit-remaining"); !rem.empty()) rate_remaining_ = std::atol(rem.c_str());
            if (auto reset = r.header("x-ratelimit-reset"); !reset.empty()) rate_reset_ = std::atol(reset.c_str());
        }
        if (r.status == 403 || r.status == 429) {
            if (auto ra = r.header("retry-after"); !ra.empty()) { // secondary rate limit
                backoff(std::max(1L, std::atol(ra.c_str())) * 1000, "secondary rate limit (retry-after " + ra + " s)");
                continue;
            }
            std::lock_guard lock(mutex_);
            if (rate_remaining_ == 0) continue; // primary limit: the top of the loop waits for the reset
        }
        if (r.status >= 500 && idempotent) {
            backoff(std::min(1000L << std::min(attempt++, 4), 8000L), "HTTP " + std::to_string(r.status));
            continue;
        }
        return r;
    }
}

HttpResponse GithubClient::cached_get(const std::string &url, Clock::time_point deadline) {
    Cached cached;
    {
        std::lock_guard lock(mutex_);
        auto it = cache_.find(url);
        if (it != cache_.end()) cached = it->second;
    }
    HttpResponse r = perform("GET", url, "", deadline, true, cached.etag);
    if (r.status == 304) {
        std::lock_guard lock(mutex_);
        ++cache_hits_;
        r.status = 200;
        r.body = cached.body;
        r.headers["link"] = cached.link;
        return r;
    }
    if (r.status == 200 && !r.header("etag").empty()) {
        std::lock_guard lock(mutex_);
        cache_[url] = Cached{r.header("etag"), r.body, r.header("link")};
    }
    return r;
}

json::value GithubClient::get(const std::string &path, Clock::time_point deadline) {
    std::string url = url_for(path);
    HttpResponse r = cached_get(url, deadline);
    if (r.status == 404) return nullptr;
    if (r.status != 200)
        throw GithubError("GitHub GET " + short_path(url) + ": HTTP " + std::to_string(r.status) + ": " + github_message(r),
                          r.status);
    return json::parse(r.body);
}

std::vector<json::value> GithubClient::get_all(const std::string &path, Clock::time_point deadline) {
    std::vector<json::value> out;
    std::string url = url_for(path);
    for (int page = 0; !url.empty() && page < 1000; ++page) {
        HttpResponse r = cached_get(url, deadline);
        if (r.status != 200)
            throw GithubError("GitHub GET " + short_path(url) + ": HTTP " + std::to_string(r.status) + ": " + github_message(r),
                              r.status);
        boost::system::error_code ec;
        json::value v = json::parse(r.body, ec);
        if (ec || !v.is_array()) throw GithubError("GitHub GET " + short_path(url) + " did not return a JSON array");
        for (auto &item : v.as_array())
            out.push_back(item);
        url = next_link(r.header("link"));
    }
    return out;
}

json::value GithubClient::send(const std::string &method, const std::string &path, const std::string &body,
                               Clock::time_point deadline) {
    std::string url = url_for(path);
    HttpResponse r = perform(method, url, body, deadline, method != "POST", "");
    if (r.status < 200 || r.status >= 300)
        throw GithubError("GitHub " + method + " " + short_path(url) + ": HTTP " + std::to_string(r.status) + ": " +
                              github_message(r),
                          r.status);
    if (r.body.empty()) return nullptr;
    boost::system::error_code ec;
    json::value v = json::parse(r.body, ec);
    return ec ? json::value() : v;
}

json::value GithubClient::graphql(const std::string &query, const json::value &variables, Clock::time_point deadline) {
    std::string body = json::serialize(json::object{{"query", query}, {"variables", variables}});
    // GraphQL queries are reads: retried like GETs; mutations are sent once.
    bool mutation = query.find("mutation") != std::string::npos;
    HttpResponse r = perform("POST", url_for("/graphql"), body, deadline, !mutation, "");
    if (r.status != 200)
        throw GithubError("GitHub GraphQL: HTTP " + std::to_string(r.status) + ": " + github_message(r), r.status);
    json::value v = json::parse(r.body);
    if (auto *errors = v.as_object().if_contains("errors"); errors && errors->is_array() && !errors->as_array().empty()) {
        const auto &first = errors->as_array()[0];
        std::string msg = first.is_object() && first.as_object().contains("message")
                              ? json::serialize(first.as_object().at("message"))
                              : json::serialize(first);
        throw GraphqlError("GitHub GraphQL error: " + msg);
    }
    return v.as_object().contains("data") ? v.as_object().at("data") : json::value();
}

} // namespace vik::github
