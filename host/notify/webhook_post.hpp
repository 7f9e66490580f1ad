#pragma once
// One POST of a webhook notice: resolve, connect, TLS for https (SNI, the certificate must name
// the host), send, read the status, all under one deadline, without blocking the notifier's loop.
//
// The implementation (Beast, and OpenSSL for https) is a module of its own,
// lib/vik-host/libvik-webhook-post.so beside the plugins' directory, loaded the first time a
// notifier is made: a host whose workflow has no webhooks never maps OpenSSL (1.7 MiB of
// resident library; docs/decisions.md, "OpenSSL is mapped only by a host with webhooks"). The module and the host come from one
// build, so they share this C++ interface; it is not a plugin ABI.

#include <chrono>
#include <expected>
#include <functional>
#include <memory>
#include <string>

namespace boost::asio {
class io_context;
}

namespace vik::notify {

struct Url {
    bool tls = false;
    std::string host, port, target; // target: path and query, "/" at least
};

// ok: a 2xx answer. permanent: a failure a retry will not heal (a 4xx other than 408 and 429).
using PostDone = std::function<void(bool ok, bool permanent, std::string why)>;

class PostAttempt {
  public:
    virtual ~PostAttempt() = default;
    // Stops it; `done` is not called after this.
    virtual void cancel() = 0;
};

class Poster {
  public:
    virtual ~Poster() = default; // stops what is in flight; no `done` runs after it returned
    // Starts one POST; `done` is called once, unless the attempt is cancelled first.
    virtual std::shared_ptr<PostAttempt> post(const Url &url, std::string body, std::chrono::milliseconds timeout,
                                              PostDone done) = 0;
};

// A poster whose `done`s run on `io` (the notifier's loop), from the module (loaded once, kept for
// the life of the process); the error names the module's path and what the loader said.
std::expected<std::unique_ptr<Poster>, std::string> make_poster(boost::asio::io_context &io);

} // namespace vik::notify

// The module's one entry point (C linkage: found with dlsym). The caller owns the result, whose
// `done`s are called on the module's own thread; null with `error` set when it cannot start.
extern "C" vik::notify::Poster *vik_webhook_poster_create(std::string *error);
