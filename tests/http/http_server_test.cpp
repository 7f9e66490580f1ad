// The HTTP server's limits and its event stream, through real sockets on 127.0.0.1, against a
// fake OperatorSurface. The server runs its io_context on a thread of its own, as the host's loop.
#include "http/api.hpp"
#include "http/http_test_support.hpp"
#include "http/server.hpp"
#include "support/test_support.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <catch2/catch.hpp>

#include <future>
#include <thread>

using namespace vik;
using namespace std::chrono_literals;

namespace {

struct Served {
    boost::asio::io_context io;
    test::FakeSurface surface;
    http::HttpStats stats;
    http::Api api{surface, stats};
    std::unique_ptr<http::Server> server;
    uint16_t port = 0;
    std::thread thread;
    boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work{io.get_executor()};

    explicit Served(http::ServerLimits limits = {}, std::string token = "") {
        surface.state.workflow = "/w/workflow.yml";
        surface.issues["A-1"] = {"A-1", "first", "todo", "", "", {}, {}, {}, {}};
        server = std::make_unique<http::Server>(
            io, [this](const http::Request &r) { return api.handle(r); },
            [](const std::string &t) { return http::Api::is_public_asset(t); }, stats,
            http::ServerOptions{"127.0.0.1", 0, http::AccessRules{token, "127.0.0.1"}, limits});
        auto p = server->listen();
        REQUIRE(p);
        port = *p;
        thread = std::thread([this] { io.run(); });
    }
    // Runs `f` on the loop and waits for it (at most 5 s).
    template <class F> auto on_loop(F f) {
        std::packaged_task<decltype(f())()> task(std::move(f));
        auto done = task.get_future();
        boost::asio::post(io, [&task] { task(); });
        REQUIRE(done.wait_for(5s) == std::future_status::ready);
        return done.get();
    }
    ~Served() {
        on_loop([this] {
            server->stop();
            return 0;
        });
        work.reset();
        io.stop();
        thread.join();
        server.reset();
    }
};

std::string head_of(size_t bytes) {
    return "GET /api/v1/state HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: " + std::string(bytes, 'a') + "\r\n\r\n";
}

} // namespace

TEST_CASE("http server: a request answers with the route's JSON and keeps the connection alive", "[http]") {
    Served s;
    test::Client c(s.port);
    REQUIRE(c.connected());
    for (int i = 0; i < 2; ++i) {
        REQUIRE(c.send("GET /api/v1/state HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(s.port) + "\r\n\r\n"));
        auto r = c.read_reply(5s);
        CHECK(r.status == 200);
        CHECK(r.body.find("\"workflow\":\"/w/workflow.yml\"") != std::string::npos);
        CHECK_FALSE(r.closed);
    }
}

TEST_CASE("http server: a request head over 8 KiB is answered 431 and the connection closed", "[http]") {
    Served s;
    test::Client c(s.port);
    REQUIRE(c.send(head_of(9000)));
    auto r = c.read_reply(5s);
    CHECK(r.status == 431);
    CHECK(r.body.find("\"code\":\"header_too_large\"") != std::string::npos);
    CHECK(c.wait_closed(5s));
    // A head just under the limit is served.
    CHECK(test::http_request(s.port, "GET", "/api/v1/state", "", "X-Padding: " + std::string(7000, 'b') + "\r\n").status == 200);
}

TEST_CASE("http server: a body over 64 KiB is answered 413 before it is read", "[http]") {
    Served s;
    test::Client c(s.port);
    // Only the head is sent: the refusal must not wait for 100 KiB that never come.
    REQUIRE(c.send("POST /api/v1/refresh HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\n\r\n"));
    auto r = c.read_reply(5s);
    CHECK(r.status == 413);
    CHECK(r.body.find("\"code\":\"body_too_large\"") != std::string::npos);
    CHECK(s.surface.refreshes == 0);
}

TEST_CASE("http server: a client that sends its request too slowly is cut off at the read deadline", "[http]") {
    http::ServerLimits limits;
    limits.read_timeout = 300ms;
    Served s(limits);
    test::Client c(s.port);
    auto start = std::chrono::steady_clock::now();
    // A byte now and then, never the end of the head (slowloris).
    REQUIRE(c.send("GET /api/v1/state HTTP/1.1\r\n"));
    bool closed = false;
    for (int i = 0; i < 40 && !closed; ++i) {
        c.send("X");
        closed = c.wait_closed(50ms);
    }
    auto took = std::chrono::steady_clock::now() - start;
    CHECK(closed);
    CHECK(took >= 250ms);
    CHECK(took < 1500ms);
    // The server still serves others.
    CHECK(test::http_request(s.port, "GET", "/api/v1/state").status == 200);
}

TEST_CASE("http server: connections over the cap get a 503 and the ones within it keep working", "[http]") {
    http::ServerLimits limits;
    limits.max_connections = 3;
    Served s(limits);
    std::vector<std::unique_ptr<test::Client>> idle;
    for (int i = 0; i < 3; ++i) {
        idle.push_back(std::make_unique<test::Client>(s.port));
        REQUIRE(idle.back()->connected());
    }
    // The server has accepted the three once it answers on one of them.
    REQUIRE(idle[0]->send("GET /api/v1/state HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
    REQUIRE(idle[0]->read_reply(5s).status == 200);
    {
        test::Client extra(s.port);
        auto r = extra.read_reply(5s);
        CHECK(r.status == 503);
        CHECK(r.body.find("\"code\":\"busy\"") != std::string::npos);
    }
    CHECK(s.on_loop([&] { return s.stats.connections_refused; }) == 1);
    // One goes: a new client is served again.
    idle.pop_back();
    CHECK(test::wait_until([&] { return s.on_loop([&] { return s.stats.open_connections; }) == 2; }, 5s));
    CHECK(test::http_request(s.port, "GET", "/api/v1/state").status == 200);
}

TEST_CASE("http server: a foreign Host header or Origin is refused on loopback (DNS rebinding, cross-site POST)", "[http]") {
    Served s;
    CHECK(test::http_request(s.port, "GET", "/api/v1/state", "", "Host: evil.example:80\r\n").status == 403);
    auto r = test::http_request(s.port, "POST", "/api/v1/refresh", "", "Origin: http://evil.example\r\n");
    CHECK(r.status == 403);
    CHECK(r.body.find("forbidden_origin") != std::string::npos);
    CHECK(s.surface.refreshes == 0);
    CHECK(test::http_request(s.port, "POST", "/api/v1/refresh", "", "Origin: http://127.0.0.1:" + std::to_string(s.port) + "\r\n")
              .status == 202);
    CHECK(s.surface.refreshes == 1);
}

TEST_CASE("http server: with a token, the API needs the bearer token and the dashboard files do not", "[http]") {
    Served s({}, "0123456789abcdef0123");
    auto none = test::http_request(s.port, "GET", "/api/v1/state");
    CHECK(none.status == 401);
    CHECK(none.head.find("WWW-Authenticate: Bearer") != std::string::npos);
    CHECK(test::http_request(s.port, "GET", "/api/v1/state", "", "Authorization: Bearer wrong-token-0000000\r\n").status == 401);
    CHECK(test::http_request(s.port, "GET", "/metrics", "", "Authorization: Bearer 0123456789abcdef0123\r\n").status == 200);
    CHECK(test::http_request(s.port, "GET", "/").status == 200);
    CHECK(test::http_request(s.port, "GET", "/app.js").status == 200);
}

TEST_CASE("http server: the event stream sends the state, then every change, and session events only for its issue", "[http]") {
    Served s;
    auto all_owner = std::make_unique<test::Client>(s.port);
    test::Client &all = *all_owner;
    test::Client one(s.port);
    REQUIRE(all.send("GET /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
    REQUIRE(one.send("GET /api/v1/events?issue=A-1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
    CHECK(all.read_until("event: state\n", 5s).find("text/event-stream") != std::string::npos);
    CHECK(one.read_until("event: issue\n", 5s).find("\"id\":\"A-1\"") != std::string::npos);
    REQUIRE(test::wait_until([&] { return s.on_loop([&] { return s.surface.listeners.size(); }) == 2; }, 5s));
    s.on_loop([&] {
        s.surface.emit({"session_event", "B-2", "plan", "2026-11-23T00:00:00.000Z", {{"type", "other issue"}}});
        s.surface.emit({"session_event", "A-1", "plan", "2026-11-23T00:00:01.000Z", {{"type", "agent_message"}}});
        s.surface.emit({"session_started", "A-1", "plan", "2026-11-23T00:00:02.000Z", {}});
        return 0;
    });
    std::string a = all.read_until("event: session_started\n", 5s);
    std::string o = one.read_until("event: session_started\n", 5s);
    CHECK(a.find("event: session_started\n") != std::string::npos);
    CHECK(a.find("session_event") == std::string::npos);
    CHECK(o.find("agent_message") != std::string::npos);
    CHECK(o.find("other issue") == std::string::npos);
    // A client that goes ends its subscription.
    all_owner.reset();
    CHECK(test::wait_until([&] { return s.on_loop([&] { return s.surface.listeners.size(); }) == 1; }, 5s));
}

TEST_CASE("http server: an event stream whose client does not read is dropped, not buffered without bound", "[http]") {
    http::ServerLimits limits;
    limits.max_stream_backlog = 64 * 1024;
    limits.write_timeout = 500ms;
    Served s(limits);
    test::Client lazy(s.port);
    REQUIRE(lazy.send("GET /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
    REQUIRE(test::wait_until([&] { return s.on_loop([&] { return s.surface.listeners.size(); }) == 1; }, 5s));
    // Far more than the socket buffers hold; the client reads none of it.
    std::string big(16 * 1024, 'x');
    for (int i = 0; i < 400 && s.on_loop([&] { return s.surface.listeners.size(); }) == 1; ++i)
        s.on_loop([&] {
            s.surface.emit({"intake", "", "", "", {{"pad", big}}});
            return 0;
        });
    CHECK(test::wait_until([&] { return s.on_loop([&] { return s.surface.listeners.size(); }) == 0; }, 5s));
    CHECK(s.on_loop([&] { return s.stats.streams_dropped; }) >= 1);
}

TEST_CASE("http server: a deferred answer is written when it comes, and a 503 when it does not come in time", "[http]") {
    boost::asio::io_context io;
    http::HttpStats stats;
    http::ServerLimits limits;
    limits.write_timeout = 300ms;
    std::function<void(http::Response)> held; // the slow route's reply, kept to answer later
    http::Server server(
        io,
        [&](const http::Request &r) {
            http::Response res;
            res.route = r.target;
            res.deferred = [&, target = r.target](std::function<void(http::Response)> reply) {
                if (target == "/later") {
                    // Answered from a later handler on the loop, as a store query would be.
                    boost::asio::post(io, [reply] {
                        http::Response ok;
                        ok.body = "{\"late\":true}";
                        reply(ok);
                    });
                } else {
                    held = reply; // never called in time
                }
            };
            return res;
        },
        [](const std::string &) { return false; }, stats, http::ServerOptions{"127.0.0.1", 0, {}, limits});
    auto port = server.listen();
    REQUIRE(port);
    auto work = boost::asio::make_work_guard(io);
    std::thread loop([&] { io.run(); });
    auto later = test::http_request(*port, "GET", "/later");
    CHECK(later.status == 200);
    CHECK(later.body == "{\"late\":true}");
    auto never = test::http_request(*port, "GET", "/never");
    CHECK(never.status == 503);
    CHECK(never.body.find("no_answer") != std::string::npos);
    boost::asio::post(io, [&] {
        if (held) held(http::Response{}); // too late: ignored
        server.stop();
    });
    work.reset();
    loop.join();
}
