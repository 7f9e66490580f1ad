#pragma once
// The routes of the HTTP surface: /api/v1 (JSON and the event stream), /metrics and the
// dashboard's files. A request in, a response out, on the loop's thread: everything the server
// (server.cpp) decides is about bytes and time, everything here about meaning.

#include "http/message.hpp"
#include "http/metrics.hpp"

#include <cstddef>
#include <functional>
#include <memory>

namespace vik::orchestrator {
class OperatorSurface;
}
namespace vik::store {
class Store;
}

namespace vik::http {

struct ApiLimits {
    size_t transcript_chunk_bytes = 1024 * 1024; // one page of a session file
    size_t max_history = 1000;                   // runs per /api/v1/history answer
};

// The durable store's reads (history, stats) are synchronous database queries: they run off the
// loop (`off_loop`) and hand their answer back on it (`on_loop`). Without a store the routes that
// need one answer 404 and /metrics leaves out its per-agent counters.
struct StoreAccess {
    store::Store *store = nullptr;
    std::function<void(std::function<void()>)> off_loop;
    std::function<void(std::function<void()>)> on_loop;
};

class Api {
  public:
    // Both must outlive the Api.
    Api(orchestrator::OperatorSurface &surface, const HttpStats &stats, ApiLimits limits = {}, StoreAccess store = {});
    ~Api();

    Response handle(const Request &request) const;

    // True for the dashboard's static files, which carry no data (access.hpp).
    static bool is_public_asset(const std::string &target);

  private:
    orchestrator::OperatorSurface &surface_;
    const HttpStats &stats_;
    ApiLimits limits_;
    StoreAccess store_;
    // False once the Api is gone: answers coming back from off the loop then reach nothing.
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);

    Response metrics() const;
    Response from_store(std::string route, std::function<Response(store::Store &)> query) const;
};

} // namespace vik::http
