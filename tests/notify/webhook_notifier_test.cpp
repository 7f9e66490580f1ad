// The webhook notifier: which changes become notices, their bodies, delivery with retries and
// backoff to a receiver on 127.0.0.1, and that a dead receiver never blocks the loop.
#include "e2e/e2e_support.hpp"
#include "http/http_test_support.hpp"
#include "notify/webhook_notifier.hpp"
#include "support/test_support.hpp"
#include "workflow/config.hpp"
#include "workflow/loader.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/json.hpp>

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <atomic>
#include <csignal>
#include <future>
#include <mutex>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

using namespace vik;
using namespace std::chrono_literals;
namespace json = boost::json;

namespace {

// A webhook receiver: answers each request with the next status of its script (the last one
// repeats) and keeps the bodies. One thread, bounded waits.
class Receiver {
  public:
    explicit Receiver(std::vector<int> statuses) : statuses_(std::move(statuses)) {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::bind(fd_, reinterpret_cast<sockaddr *>(&a), sizeof a) == 0);
        REQUIRE(::listen(fd_, 16) == 0);
        socklen_t len = sizeof a;
        ::getsockname(fd_, reinterpret_cast<sockaddr *>(&a), &len);
        port = ntohs(a.sin_port);
        thread_ = std::thread([this] { serve(); });
    }
    ~Receiver() {
        stop_ = true;
        thread_.join();
        ::close(fd_);
    }
    std::vector<std::string> bodies() {
        std::lock_guard<std::mutex> l(m_);
        return bodies_;
    }
    uint16_t port = 0;

  private:
    void serve() {
        while (!stop_) {
            pollfd p{fd_, POLLIN, 0};
            if (::poll(&p, 1, 50) <= 0) continue;
            int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
            if (c < 0) continue;
            std::string in;
            auto deadline = std::chrono::steady_clock::now() + 5s;
            size_t need = std::string::npos;
            while (std::chrono::steady_clock::now() < deadline) {
                pollfd q{c, POLLIN, 0};
                if (::poll(&q, 1, 50) <= 0) continue;
                char buf[4096];
                ssize_t n = ::recv(c, buf, sizeof buf, 0);
                if (n <= 0) break;
                in.append(buf, static_cast<size_t>(n));
                size_t end = in.find("\r\n\r\n");
                if (end != std::string::npos && need == std::string::npos) {
                    size_t cl = in.find("Content-Length: ");
                    need = end + 4 + (cl != std::string::npos && cl < end ? std::stoul(in.substr(cl + 16)) : 0);
                }
                if (need != std::string::npos && in.size() >= need) break;
            }
            int status;
            {
                std::lock_guard<std::mutex> l(m_);
                size_t end = in.find("\r\n\r\n");
                bodies_.push_back(end == std::string::npos ? "" : in.substr(end + 4));
                status = statuses_[std::min(bodies_.size() - 1, statuses_.size() - 1)];
            }
            std::string out = "HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
            ::send(c, out.data(), out.size(), MSG_NOSIGNAL);
            ::close(c);
        }
    }
    int fd_ = -1;
    std::vector<int> statuses_;
    std::atomic<bool> stop_{false};
    std::mutex m_;
    std::vector<std::string> bodies_;
    std::thread thread_;
};

struct Loop {
    boost::asio::io_context io;
    boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work{io.get_executor()};
    std::thread thread{[this] { io.run(); }};
    template <class F> auto on_loop(F f) {
        std::packaged_task<decltype(f())()> task(std::move(f));
        auto done = task.get_future();
        boost::asio::post(io, [&task] { task(); });
        REQUIRE(done.wait_for(5s) == std::future_status::ready);
        return done.get();
    }
    ~Loop() {
        work.reset();
        io.stop();
        thread.join();
    }
};

orchestrator::Change ended(const std::string &outcome, const std::string &reason = "") {
    return {"session_ended", "N-1", "plan", "2026-11-23T10:00:00.000Z", {{"outcome", outcome}, {"reason", reason}}};
}

notify::NotifierLimits fast() {
    notify::NotifierLimits l;
    l.backoff_base = 50ms;
    l.backoff_max = 200ms;
    l.timeout = 2s;
    l.max_attempts = 3;
    return l;
}

} // namespace

TEST_CASE("notify: blocked, failed, completed and a long gate wait become notices, nothing else does", "[notify]") {
    CHECK(notify::notice_for(ended("failed", "exit 1"))->event == "failed");
    CHECK(notify::notice_for(ended("completed"))->event == "completed");
    CHECK_FALSE(notify::notice_for(ended("cancelled")));
    CHECK(notify::notice_for({"blocked", "N-1", "plan", "", {{"reason", "3 failures"}}})->reason == "3 failures");
    CHECK_FALSE(notify::notice_for({"session_started", "N-1", "plan", "", {}}));
    // A human gate's wait starts quietly; only its reminder is a notice.
    CHECK_FALSE(notify::notice_for({"awaiting_approval", "N-1", "plan", "", {{"reason", "waits for approval"}}}));
    auto waiting = notify::notice_for({"gate_waiting", "N-1", "plan", "", {{"reason", "waits for approval since x"}}});
    REQUIRE(waiting);
    CHECK(waiting->event == "gate_waiting");
    auto slack = json::parse(notify::payload(*waiting, "slack", "/w.yml")).as_object();
    CHECK(slack.at("text") == ":hourglass: vik-host: N-1 (plan) awaits approval: waits for approval since x");
}

TEST_CASE("notify: Slack text escapes what would be a mention or a link, JSON carries the facts", "[notify]") {
    notify::Notice n{"failed", "N-1", "plan", "2026-11-23T10:00:00.000Z", "<!channel> & <http://x|y>"};
    auto slack = json::parse(notify::payload(n, "slack", "/w.yml")).as_object();
    CHECK(slack.at("text") == ":x: vik-host: N-1 (plan) failed: &lt;!channel&gt; &amp; &lt;http://x|y&gt;");
    auto j = json::parse(notify::payload(n, "json", "/w.yml")).as_object();
    CHECK(j.at("event") == "failed");
    CHECK(j.at("issue_id") == "N-1");
    CHECK(j.at("workflow") == "/w.yml");
    CHECK(j.at("reason") == "<!channel> & <http://x|y>");
}

TEST_CASE("notify: webhook URLs parse or are refused with the reason", "[notify]") {
    auto u = notify::parse_url("https://hooks.example.com/services/T/B?x=1");
    REQUIRE(u);
    CHECK(u->tls);
    CHECK(u->host == "hooks.example.com");
    CHECK(u->port == "443");
    CHECK(u->target == "/services/T/B?x=1");
    auto v = notify::parse_url("http://[::1]:8080");
    REQUIRE(v);
    CHECK(v->host == "::1");
    CHECK(v->port == "8080");
    CHECK(v->target == "/");
    CHECK_FALSE(notify::parse_url("ftp://x/"));
    CHECK_FALSE(notify::parse_url("http://user:pw@x/"));
    CHECK_FALSE(notify::parse_url("http://x:99999999/"));
    workflow::NotifyConfig c;
    c.webhooks.push_back({"", "VIK_TEST_HOOK_URL", {}, "slack"});
    auto unset = notify::targets_from(c, [](const char *) -> const char * { return nullptr; });
    REQUIRE_FALSE(unset);
    CHECK(unset.error() == "notify.webhooks.0.url_env names VIK_TEST_HOOK_URL, which is not set: export the webhook's URL in it");
    auto set = notify::targets_from(c, [](const char *) -> const char * { return "http://127.0.0.1:9/h"; });
    REQUIRE(set);
    CHECK(set->at(0).url == "http://127.0.0.1:9/h");
}

TEST_CASE("notify: a failed delivery is retried with backoff until the receiver takes it", "[notify]") {
    Receiver r({500, 503, 200});
    test::FakeSurface surface;
    Loop loop;
    auto n = loop.on_loop([&] {
        return std::make_shared<notify::WebhookNotifier>(
            loop.io, surface,
            std::vector<notify::WebhookTarget>{{"http://127.0.0.1:" + std::to_string(r.port) + "/hook", {}, "json"}}, "/w.yml",
            fast());
    });
    loop.on_loop([&] {
        surface.emit(ended("failed", "exit 1"));
        return 0;
    });
    REQUIRE(test::wait_until([&] { return r.bodies().size() == 3; }, 10s));
    CHECK(test::wait_until([&] { return loop.on_loop([&] { return n->stats().delivered; }) == 1; }, 5s));
    for (const auto &b : r.bodies())
        CHECK(json::parse(b).at("event") == "failed");
    CHECK(loop.on_loop([&] { return n->stats().failed_attempts; }) == 2);
    loop.on_loop([&] {
        n.reset();
        return 0;
    });
    CHECK(surface.listeners.empty());
}

TEST_CASE("notify: only the events a webhook asks for are sent, a 404 is not retried", "[notify]") {
    Receiver r({404});
    test::FakeSurface surface;
    Loop loop;
    auto n = loop.on_loop([&] {
        return std::make_shared<notify::WebhookNotifier>(
            loop.io, surface,
            std::vector<notify::WebhookTarget>{{"http://127.0.0.1:" + std::to_string(r.port) + "/", {"blocked"}, "slack"}},
            "/w.yml", fast());
    });
    loop.on_loop([&] {
        surface.emit(ended("completed"));
        surface.emit({"blocked", "N-2", "plan", "", {{"reason", "waits for review"}}});
        return 0;
    });
    REQUIRE(test::wait_until([&] { return loop.on_loop([&] { return n->stats().dropped; }) == 1; }, 10s));
    std::this_thread::sleep_for(300ms); // a retry would have come by now
    auto bodies = r.bodies();
    REQUIRE(bodies.size() == 1);
    CHECK(json::parse(bodies[0]).at("text") == ":no_entry: vik-host: N-2 (plan) is blocked: waits for review");
    loop.on_loop([&] {
        n.reset();
        return 0;
    });
}

TEST_CASE("notify: a receiver that never answers costs the loop nothing and is given up after the attempts", "[notify]") {
    // A listening socket nobody accepts from: connections hang until the attempt's deadline.
    int silent = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(silent, reinterpret_cast<sockaddr *>(&a), sizeof a) == 0);
    REQUIRE(::listen(silent, 1) == 0);
    socklen_t len = sizeof a;
    ::getsockname(silent, reinterpret_cast<sockaddr *>(&a), &len);
    test::FakeSurface surface;
    Loop loop;
    auto limits = fast();
    limits.timeout = 200ms;
    limits.max_attempts = 2;
    auto n = loop.on_loop([&] {
        return std::make_shared<notify::WebhookNotifier>(
            loop.io, surface,
            std::vector<notify::WebhookTarget>{{"http://127.0.0.1:" + std::to_string(ntohs(a.sin_port)) + "/", {}, "json"}},
            "/w.yml", limits);
    });
    auto t0 = std::chrono::steady_clock::now();
    loop.on_loop([&] {
        for (int i = 0; i < 5; ++i)
            surface.emit(ended("completed"));
        return 0;
    });
    CHECK(std::chrono::steady_clock::now() - t0 < 200ms);
    // The loop answers at once meanwhile.
    auto t1 = std::chrono::steady_clock::now();
    loop.on_loop([] { return 0; });
    CHECK(std::chrono::steady_clock::now() - t1 < 100ms);
    CHECK(test::wait_until([&] { return loop.on_loop([&] { return n->stats().dropped; }) >= 1; }, 10s));
    loop.on_loop([&] {
        n.reset();
        return 0;
    });
    ::close(silent);
}

TEST_CASE("notify: an https webhook speaks TLS (through the loaded webhook module) and a failed handshake is retried",
          "[notify]") {
    // A listener that keeps the first bytes of each connection and closes it: no TLS server.
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) == 0);
    REQUIRE(::listen(fd, 8) == 0);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr *>(&a), &len);
    std::mutex m;
    std::vector<std::string> openings;
    std::atomic<bool> stop{false};
    std::thread listener([&] {
        while (!stop) {
            pollfd p{fd, POLLIN, 0};
            if (::poll(&p, 1, 50) <= 0) continue;
            int c = ::accept4(fd, nullptr, nullptr, SOCK_CLOEXEC);
            if (c < 0) continue;
            pollfd q{c, POLLIN, 0};
            char buf[16] = {};
            ssize_t n = ::poll(&q, 1, 2000) > 0 ? ::recv(c, buf, sizeof buf, 0) : 0;
            {
                std::lock_guard l(m);
                openings.emplace_back(buf, n > 0 ? static_cast<size_t>(n) : 0);
            }
            ::close(c);
        }
    });
    test::FakeSurface surface;
    auto limits = fast();
    limits.max_attempts = 2;
    {
        Loop loop;
        auto n = loop.on_loop([&] {
            return std::make_shared<notify::WebhookNotifier>(
                loop.io, surface,
                std::vector<notify::WebhookTarget>{{"https://127.0.0.1:" + std::to_string(ntohs(a.sin_port)) + "/", {}, "json"}},
                "/w.yml", limits);
        });
        loop.on_loop([&] {
            surface.emit(ended("completed"));
            return 0;
        });
        // Both attempts failed (no TLS server answers) and the notice was given up.
        REQUIRE(test::wait_until([&] { return loop.on_loop([&] { return n->stats().dropped; }) == 1; }, 10s));
        CHECK(loop.on_loop([&] { return n->stats().failed_attempts; }) == 2);
        loop.on_loop([&] {
            n.reset();
            return 0;
        });
    }
    stop = true;
    listener.join();
    ::close(fd);
    std::lock_guard l(m);
    REQUIRE(openings.size() == 2);
    for (const auto &o : openings) {
        // A TLS record of type handshake (22), version 3.x: a ClientHello, not "POST ...".
        REQUIRE(o.size() >= 3);
        CHECK(static_cast<unsigned char>(o[0]) == 0x16);
        CHECK(static_cast<unsigned char>(o[1]) == 0x03);
    }
}

TEST_CASE("notify e2e: the real host posts a completed stage to the configured webhook", "[notify][e2e]") {
    Receiver r({200});
    test::Project p;
    p.agent("agent.sh", test::kOkAgent);
    p.issues(R"([{"id":"W-1","title":"t","state":"todo"}])");
    test::write_file(p.workflow(), "agents:\n  bot:\n    runtime: scripted\n    model: none\n    settings: {command: " +
                                       (p.dir / "agent.sh").string() +
                                       "}\nissues:\n  pull:\n    command: cat issues.json\n    idle_sec: 3600\n"
                                       "issue:\n  stages:\n    work: {when: {state: todo}, agent: bot, prompt: p}\n"
                                       "notify:\n  webhooks:\n    - url: http://127.0.0.1:" +
                                       std::to_string(r.port) + "/hook\n      events: [completed]\n");
    auto host = test::start_host({"run", p.workflow().string()}, p.dir.path);
    INFO(host->stdout_text());
    REQUIRE(test::wait_until([&] { return !r.bodies().empty(); }, 20s));
    auto body = json::parse(r.bodies()[0]).as_object();
    CHECK(body.at("event") == "completed");
    CHECK(body.at("issue_id") == "W-1");
    CHECK(body.at("stage") == "work");
    CHECK(body.at("workflow").as_string() == p.workflow().string());
    // The POST went through the webhook module, loaded because the workflow has webhooks.
    CHECK_THAT(test::read_file("/proc/" + std::to_string(host->pid) + "/maps"), Catch::Contains("libvik-webhook-post.so"));
    host->signal(SIGTERM);
    CHECK(host->wait(20s) == 0);
}

TEST_CASE("notify: the notify section is read and checked", "[notify]") {
    const std::string base =
        "agents:\n  a:\n    runtime: codex\n    model: m\nissues:\n  pull:\n    command: echo []\nissue:\n  stages:\n"
        "    s:\n      when:\n        state: todo\n      agent: a\n      prompt: hi\n";
    auto ok = workflow::load_workflow_text(
        base + "notify:\n  webhooks:\n    - url: https://h.example/x\n      events: [failed, blocked]\n"
               "      format: slack\n    - url_env: HOOK\n",
        "/w/x.yml");
    REQUIRE(ok);
    REQUIRE(ok->config.notify.webhooks.size() == 2);
    CHECK(ok->config.notify.webhooks[0].events == std::vector<std::string>{"failed", "blocked"});
    CHECK(ok->config.notify.webhooks[0].format == "slack");
    CHECK(ok->config.notify.webhooks[1].url_env == "HOOK");
    CHECK(ok->diagnostics.items.empty());
    auto bad_event =
        workflow::load_workflow_text(base + "notify:\n  webhooks:\n    - url: http://h/\n      events: [started]\n", "/w/x.yml");
    REQUIRE_FALSE(bad_event);
    CHECK_THAT(
        bad_event.error().message,
        Catch::Contains(
            "'notify.webhooks.0.events': invalid value: expected blocked, failed, completed or gate_waiting, found 'started'"));
    auto both = workflow::load_workflow_text(base + "notify:\n  webhooks:\n    - {url: 'http://h/', url_env: X}\n", "/w/x.yml");
    REQUIRE_FALSE(both);
    CHECK_THAT(both.error().message, Catch::Contains("give exactly one of `url` and `url_env`"));
    auto scheme = workflow::load_workflow_text(base + "notify:\n  webhooks:\n    - url: ftp://h/\n", "/w/x.yml");
    REQUIRE_FALSE(scheme);
}
