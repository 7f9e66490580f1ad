#pragma once
// The HTTP surface's own request and response: what the routes (api.cpp), the access rules
// (access.cpp) and the dashboard see of HTTP. Beast stays in server.cpp, so everything that
// decides what to answer is plain data and is tested without a socket.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace vik::http {

struct Request {
    std::string method; // "GET", "POST", ... as sent
    std::string target; // origin-form as sent: "/api/v1/state?x=1" (still percent-encoded)
    std::string body;
    // The headers the rules below need; empty when absent.
    std::string host;
    std::string origin;
    std::string authorization;
};

// A server-sent event stream (text/event-stream). The server writes the response head, then
// calls `open` with a sink for frames; `open` subscribes wherever the frames come from and returns
// what ends that subscription. The server calls the closer exactly once: when the client goes,
// when it falls too far behind, or when the server stops. Both run on the server's loop.
struct EventStream {
    using Sink = std::function<void(std::string frame)>;
    using Closer = std::function<void()>;
    std::function<Closer(Sink)> open;
};

struct Response {
    int status = 200;
    std::string content_type = "application/json";
    std::string body;
    std::vector<std::pair<std::string, std::string>> headers; // extra headers
    // The route's pattern ("/api/v1/issues/{id}"), a bounded label for /metrics: never the raw
    // path, whose ids would make one series per issue.
    std::string route;
    std::shared_ptr<EventStream> stream; // set: answer with this event stream instead of `body`
    // Set: the answer comes later (work off the loop, such as a store query). The server calls
    // it once with a `reply` to call on the loop's thread; until then nothing is written, and
    // when no reply comes within the write deadline the client gets a 503.
    std::function<void(std::function<void(Response)> reply)> deferred;
};

// {"error":{"code":code,"message":message}} with `status`.
Response error_response(int status, const std::string &code, const std::string &message);

// One SSE frame: "event: <event>\ndata: <data>\n\n" (data split on newlines as the format wants).
std::string sse_frame(const std::string &event, const std::string &data, uint64_t id = 0);

} // namespace vik::http
