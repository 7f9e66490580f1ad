#pragma once
// A fake OperatorSurface and a blocking HTTP client for the HTTP surface's tests. The client uses
// plain sockets with receive timeouts (every wait is bounded) and talks to 127.0.0.1 only.

#include "orchestrator/operator_surface.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

namespace vik::test {

// Everything the routes ask is answered from plain fields; every request it receives is counted.
// Used on one thread at a time (the loop's), like the real one.
class FakeSurface : public orchestrator::OperatorSurface {
  public:
    orchestrator::SchedulerView state;
    std::map<std::string, orchestrator::IssueView> issues;
    bool accept_refresh = true;
    std::atomic<int> refreshes{0}, retries{0}, cancels{0};
    mutable std::mutex retry_mutex;
    std::string last_retry_message_; // guarded by retry_mutex
    std::string last_retry_message() const {
        std::lock_guard lock(retry_mutex);
        return last_retry_message_;
    }
    std::map<uint64_t, std::pair<Listener, bool>> listeners;
    uint64_t next = 1;

    orchestrator::SchedulerView view() const override { return state; }
    std::optional<orchestrator::IssueView> issue(const std::string &id) const override {
        auto it = issues.find(id);
        if (it == issues.end()) return std::nullopt;
        return it->second;
    }
    bool refresh() override {
        if (!accept_refresh) return false;
        ++refreshes;
        return true;
    }
    std::expected<size_t, std::string> retry(const std::string &id, const std::string &message) override {
        ++retries;
        {
            std::lock_guard lock(retry_mutex);
            last_retry_message_ = message;
        }
        if (id == "refuse") return std::unexpected("an agent may only retry its own issue");
        return 1;
    }
    std::expected<size_t, std::string> cancel(const std::string &) override {
        ++cancels;
        return 2;
    }
    std::atomic<int> approvals{0}, rejections{0};
    std::string last_feedback_; // guarded by retry_mutex
    std::expected<size_t, std::string> gate(const std::string &id, bool approve, const std::string &feedback) override {
        ++(approve ? approvals : rejections);
        {
            std::lock_guard lock(retry_mutex);
            last_feedback_ = feedback;
        }
        if (id == "refuse") return std::unexpected("issue refuse has no stage awaiting approval");
        return 1;
    }
    uint64_t subscribe(Listener l, bool with_session_events) override {
        listeners[next] = {std::move(l), with_session_events};
        return next++;
    }
    void unsubscribe(uint64_t handle) override { listeners.erase(handle); }
    void emit(const orchestrator::Change &c) {
        auto copy = listeners; // a listener may unsubscribe
        for (auto &[h, l] : copy)
            if (c.kind != "session_event" || l.second) l.first(c);
    }
};

struct HttpReply {
    int status = 0;   // 0: no status line arrived
    std::string head; // status line and headers
    std::string body;
    bool closed = false; // the server closed the connection
};

// A connected client socket (127.0.0.1:port); closes on destruction.
class Client {
  public:
    explicit Client(uint16_t port);
    ~Client();
    Client(const Client &) = delete;
    Client &operator=(const Client &) = delete;
    bool connected() const { return fd_ >= 0; }
    bool send(const std::string &bytes);
    // Reads until `stop` is found in what arrived, the peer closes, or `timeout` passes.
    std::string read_until(const std::string &stop, std::chrono::milliseconds timeout);
    // Reads one response (Content-Length or close-delimited).
    HttpReply read_reply(std::chrono::milliseconds timeout = std::chrono::seconds(10));
    // Waits until the server closes the connection; false when `timeout` passed first.
    bool wait_closed(std::chrono::milliseconds timeout);
    bool peer_closed() const { return closed_; }

  private:
    int fd_ = -1;
    bool closed_ = false;
    std::string pending_;
};

// One request on a fresh connection, `Connection: close`.
HttpReply http_request(uint16_t port, const std::string &method, const std::string &target, const std::string &body = "",
                       const std::string &extra_headers = "");

} // namespace vik::test
