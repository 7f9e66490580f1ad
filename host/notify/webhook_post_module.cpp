// libvik-webhook-post.so: the webhook POST behind notify/webhook_post.hpp, with Beast and OpenSSL.
// Only this module links OpenSSL; the host loads it when a notifier is made.
//
// The module runs its POSTs on an io_context and thread of its own and never touches the host's:
// it carries its own copy of Asio's inline code, whose per-thread state ("which io_context runs on
// this thread") is not the host's, so the two must not share an io_context. `done` is called on
// the module's thread; the host's side (webhook_post_loader.cpp) takes it back to its loop.
#include "notify/webhook_post.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <optional>
#include <thread>

namespace vik::notify {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;

// One POST, start to answer, under one deadline. `done(ok, permanent, why)` is called once.
class Attempt final : public PostAttempt, public std::enable_shared_from_this<Attempt> {
  public:
    Attempt(asio::io_context &io, asio::ssl::context &tls_ctx, Url url, std::string body, std::chrono::milliseconds timeout,
            PostDone done)
        : resolver_(io), deadline_(io), url_(std::move(url)), timeout_(timeout), done_(std::move(done)) {
        if (url_.tls)
            tls_.emplace(io, tls_ctx);
        else
            plain_.emplace(io);
        req_ = {bhttp::verb::post, url_.target, 11};
        req_.set(bhttp::field::host, url_.host);
        req_.set(bhttp::field::user_agent, "vik-host");
        req_.set(bhttp::field::content_type, "application/json");
        req_.body() = std::move(body);
        req_.prepare_payload();
    }

    void start() {
        deadline_.expires_after(timeout_);
        deadline_.async_wait([self = shared_from_this()](beast::error_code ec) {
            if (ec) return;
            self->finish(false, false, "no answer within " + std::to_string(self->timeout_.count()) + " ms");
        });
        resolver_.async_resolve(
            url_.host, url_.port, [self = shared_from_this()](beast::error_code ec, tcp::resolver::results_type r) {
                if (ec) return self->finish(false, false, "cannot resolve " + self->url_.host + ": " + ec.message());
                self->connect(std::move(r));
            });
    }

    // Any thread: the socket is the module thread's, so the stop is posted there.
    void cancel() override {
        asio::post(resolver_.get_executor(), [self = shared_from_this()] {
            self->done_ = nullptr;
            self->close();
        });
    }

  private:
    beast::tcp_stream &lowest() { return tls_ ? beast::get_lowest_layer(*tls_) : *plain_; }

    void connect(tcp::resolver::results_type endpoints) {
        lowest().async_connect(endpoints, [self = shared_from_this()](beast::error_code ec, const tcp::endpoint &) {
            if (ec)
                return self->finish(false, false,
                                    "cannot connect to " + self->url_.host + ":" + self->url_.port + ": " + ec.message());
            if (!self->tls_) return self->exchange(*self->plain_);
            // SNI, and the certificate must name the host.
            if (!SSL_set_tlsext_host_name(self->tls_->native_handle(), self->url_.host.c_str()))
                return self->finish(false, false, "cannot set the TLS server name");
            self->tls_->set_verify_mode(asio::ssl::verify_peer);
            self->tls_->set_verify_callback(asio::ssl::host_name_verification(self->url_.host));
            self->tls_->async_handshake(asio::ssl::stream_base::client, [self](beast::error_code e) {
                if (e) return self->finish(false, false, "TLS handshake with " + self->url_.host + " failed: " + e.message());
                self->exchange(*self->tls_);
            });
        });
    }

    template <class Stream> void exchange(Stream &stream) {
        bhttp::async_write(stream, req_, [self = shared_from_this(), &stream](beast::error_code ec, size_t) {
            if (ec) return self->finish(false, false, "cannot send: " + ec.message());
            self->parser_.body_limit(64 * 1024);
            bhttp::async_read(stream, self->buffer_, self->parser_, [self](beast::error_code e, size_t) {
                if (e) return self->finish(false, false, "no answer: " + e.message());
                int status = static_cast<int>(self->parser_.get().result_int());
                if (status >= 200 && status < 300) return self->finish(true, false, "");
                // A client error will not heal by itself (wrong URL, revoked hook); 408 and 429 do.
                bool permanent = status >= 400 && status < 500 && status != 408 && status != 429;
                self->finish(false, permanent, "HTTP " + std::to_string(status));
            });
        });
    }

    void finish(bool ok, bool permanent, std::string why) {
        deadline_.cancel();
        close();
        if (auto d = std::exchange(done_, nullptr)) d(ok, permanent, std::move(why));
    }

    void close() {
        beast::error_code ec;
        resolver_.cancel();
        deadline_.cancel();
        lowest().socket().close(ec);
    }

    tcp::resolver resolver_;
    asio::steady_timer deadline_;
    Url url_;
    std::chrono::milliseconds timeout_;
    PostDone done_;
    std::optional<beast::tcp_stream> plain_;
    std::optional<beast::ssl_stream<beast::tcp_stream>> tls_;
    bhttp::request<bhttp::string_body> req_;
    bhttp::response_parser<bhttp::string_body> parser_;
    beast::flat_buffer buffer_;
};

class BeastPoster final : public Poster {
  public:
    BeastPoster() : tls_(asio::ssl::context::tls_client) {
        tls_.set_default_verify_paths();
        thread_ = std::thread([this] { io_.run(); });
    }
    ~BeastPoster() override {
        work_.reset();
        io_.stop();
        thread_.join(); // what is still queued is dropped with io_
    }

    // Any thread: the attempt is made here and started on the module's thread.
    std::shared_ptr<PostAttempt> post(const Url &url, std::string body, std::chrono::milliseconds timeout,
                                      PostDone done) override {
        auto attempt = std::make_shared<Attempt>(io_, tls_, url, std::move(body), timeout, std::move(done));
        asio::post(io_, [attempt] { attempt->start(); });
        return attempt;
    }

  private:
    asio::io_context io_;
    asio::ssl::context tls_;
    asio::executor_work_guard<asio::io_context::executor_type> work_{io_.get_executor()};
    std::thread thread_;
};

} // namespace
} // namespace vik::notify

extern "C" __attribute__((visibility("default"))) vik::notify::Poster *vik_webhook_poster_create(std::string *error) {
    try {
        return new vik::notify::BeastPoster();
    } catch (const std::exception &e) {
        *error = e.what(); // OpenSSL's reason (no CA certificates, say); the loader reports it
    } catch (...) {
        *error = "unknown error";
    }
    return nullptr;
}
