#include "http/http_test_support.hpp"

#include <arpa/inet.h>
#include <cerrno>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace vik::test {

Client::Client(uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr *>(&addr), sizeof addr) != 0) {
        ::close(fd_);
        fd_ = -1;
    }
}

Client::~Client() {
    if (fd_ >= 0) ::close(fd_);
}

bool Client::send(const std::string &bytes) {
    size_t done = 0;
    while (done < bytes.size()) {
        ssize_t n = ::send(fd_, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
        if (n <= 0) return false;
        done += static_cast<size_t>(n);
    }
    return true;
}

std::string Client::read_until(const std::string &stop, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!closed_ && (stop.empty() || pending_.find(stop) == std::string::npos)) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) break;
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
        char buf[16384];
        ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
        if (n <= 0) {
            closed_ = true;
            break;
        }
        pending_.append(buf, static_cast<size_t>(n));
    }
    return pending_;
}

HttpReply Client::read_reply(std::chrono::milliseconds timeout) {
    HttpReply r;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    read_until("\r\n\r\n", timeout);
    size_t end = pending_.find("\r\n\r\n");
    if (end == std::string::npos) {
        r.closed = closed_;
        return r;
    }
    r.head = pending_.substr(0, end + 2);
    if (r.head.size() > 12) r.status = std::atoi(r.head.c_str() + 9);
    std::string lower = r.head;
    for (char &c : lower)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    size_t cl = lower.find("content-length:");
    if (cl != std::string::npos) {
        size_t length = std::stoul(lower.substr(cl + 15));
        while (pending_.size() < end + 4 + length && !closed_ && std::chrono::steady_clock::now() < deadline)
            read_until(std::string(1, '\0') + "never", std::chrono::milliseconds(50));
        r.body = pending_.substr(end + 4, length);
        pending_.erase(0, std::min(pending_.size(), end + 4 + length));
    } else {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        read_until("", left);
        r.body = pending_.substr(end + 4);
        pending_.clear();
    }
    r.closed = closed_;
    return r;
}

bool Client::wait_closed(std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!closed_ && std::chrono::steady_clock::now() < deadline)
        read_until(std::string(1, '\0') + "never", std::chrono::milliseconds(20));
    return closed_;
}

HttpReply http_request(uint16_t port, const std::string &method, const std::string &target, const std::string &body,
                       const std::string &extra_headers) {
    Client c(port);
    if (!c.connected()) return {};
    std::string req = method + " " + target + " HTTP/1.1\r\n";
    if (extra_headers.find("Host:") == std::string::npos) req += "Host: 127.0.0.1:" + std::to_string(port) + "\r\n";
    req += "Connection: close\r\n" + extra_headers;
    if (!body.empty() || method == "POST") req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    req += "\r\n" + body;
    c.send(req);
    return c.read_reply();
}

} // namespace vik::test
