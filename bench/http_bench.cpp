// Prints how fast the real vik-host reacts to POST /api/v1/refresh: the time to the 202 answer
// (the HTTP path on the scheduler's loop) and the time until the intake it caused has been
// processed (the `intake` change on the event stream: the tracker's pull command ran, its issues
// were parsed and matched). Starts build/bin/vik-host on a throw-away workflow whose tracker
// is `cat issues.json` (two issues in a state no stage matches), idle_sec an hour, --port 0.
// Run:
//   build/bin/vik_http_bench [requests] [path/to/vik-host]
#include <algorithm>
#include <arpa/inet.h>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sstream>
#include <string>
#include <sys/socket.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace fs = std::filesystem;
using namespace std::chrono;

namespace {

int connect_to(uint16_t port) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) != 0) {
        ::close(fd);
        return -1;
    }
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

// Reads into `buf` until `needle` is in it (consumed through it) or 10 s pass.
bool read_until(int fd, std::string &buf, const std::string &needle) {
    auto deadline = steady_clock::now() + seconds(10);
    while (true) {
        if (size_t at = buf.find(needle); at != std::string::npos) {
            buf.erase(0, at + needle.size());
            return true;
        }
        auto left = duration_cast<milliseconds>(deadline - steady_clock::now()).count();
        if (left <= 0) return false;
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
        char tmp[8192];
        ssize_t n = ::recv(fd, tmp, sizeof tmp, 0);
        if (n <= 0) return false;
        buf.append(tmp, static_cast<size_t>(n));
    }
}

double pct(std::vector<double> v, double p) {
    std::sort(v.begin(), v.end());
    return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

void print(const char *what, const std::vector<double> &v) {
    std::printf("%-34s p50 %7.3f ms  p90 %7.3f ms  p99 %7.3f ms  max %7.3f ms\n", what, pct(v, 0.5), pct(v, 0.9), pct(v, 0.99),
                *std::max_element(v.begin(), v.end()));
}

} // namespace

int main(int argc, char **argv) {
    int n = argc > 1 ? std::atoi(argv[1]) : 200;
    fs::path host = argc > 2 ? fs::path(argv[2]) : fs::read_symlink("/proc/self/exe").parent_path() / "vik-host";
    fs::path dir = fs::temp_directory_path() / ("vik-http-bench-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    std::ofstream(dir / "issues.json") << R"([{"id":"N-1","title":"t","state":"idle"},{"id":"N-2","title":"u","state":"idle"}])";
    std::ofstream(dir / "workflow.yml") << "agents:\n  bot: {runtime: scripted, model: none, settings: {command: 'true'}}\n"
                                           "issues:\n  pull: {command: cat issues.json, idle_sec: 3600}\n"
                                           "issue:\n  stages:\n    work: {when: {state: todo}, agent: bot, prompt: p}\n";
    pid_t pid = ::fork();
    if (pid == 0) {
        if (::chdir(dir.c_str()) != 0) _exit(127);
        std::freopen((dir / "host.log").c_str(), "w", stdout);
        std::freopen((dir / "host.log").c_str(), "a", stderr);
        ::execl(host.c_str(), host.c_str(), "run", "--port", "0", (dir / "workflow.yml").c_str(), static_cast<char *>(nullptr));
        _exit(127);
    }
    auto stop = [&](int code) {
        ::kill(pid, SIGTERM);
        int status = 0;
        ::waitpid(pid, &status, 0);
        std::error_code ec;
        fs::remove_all(dir, ec);
        return code;
    };
    uint16_t port = 0;
    for (int i = 0; i < 200 && !port; ++i) {
        std::this_thread::sleep_for(milliseconds(50));
        std::error_code ec;
        for (auto &e : fs::recursive_directory_iterator(dir / ".vik", ec))
            if (e.path().filename() == "state.json") {
                std::stringstream s;
                s << std::ifstream(e.path()).rdbuf();
                std::string t = s.str();
                size_t at = t.find("\"port\": ");
                if (at != std::string::npos) port = static_cast<uint16_t>(std::atoi(t.c_str() + at + 8));
            }
    }
    if (!port) {
        std::fprintf(stderr, "vik-host did not report a port (see %s)\n", (dir / "host.log").c_str());
        return stop(1);
    }
    int events = connect_to(port), api = connect_to(port);
    std::string ebuf, abuf;
    const std::string get = "GET /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    const std::string post = "POST /api/v1/refresh HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n";
    if (events < 0 || api < 0 || ::send(events, get.data(), get.size(), 0) < 0 || !read_until(events, ebuf, "event: state\n")) {
        std::fprintf(stderr, "cannot open the event stream on port %u\n", port);
        return stop(1);
    }
    // The first intake (at start) must be over before a refresh is measured: one is never doubled.
    std::this_thread::sleep_for(milliseconds(500));
    ebuf.clear();
    std::vector<double> answer, intake;
    for (int i = 0; i < n; ++i) {
        auto t0 = steady_clock::now();
        if (::send(api, post.data(), post.size(), 0) < 0 || !read_until(api, abuf, "\r\n\r\n")) return stop(1);
        auto t1 = steady_clock::now();
        if (!read_until(api, abuf, "}")) return stop(1); // the small JSON body
        if (!read_until(events, ebuf, "event: intake\n")) {
            std::fprintf(stderr, "no intake change after refresh %d\n", i);
            return stop(1);
        }
        auto t2 = steady_clock::now();
        answer.push_back(duration<double, std::milli>(t1 - t0).count());
        intake.push_back(duration<double, std::milli>(t2 - t0).count());
    }
    std::printf("vik-host %s, %d refreshes, one keep-alive connection, tracker `cat issues.json`\n", host.c_str(), n);
    print("POST /api/v1/refresh -> 202", answer);
    print("POST -> intake processed (SSE)", intake);
    ::close(events);
    ::close(api);
    return stop(0);
}
