#pragma once
// /metrics in the Prometheus text exposition format (version 0.0.4): the scheduler's view turned
// into gauges and counters, plus the HTTP server's own counters. Rendered on request from
// OperatorSurface::view(), so nothing here keeps a second copy of the scheduler's state.

#include "util/ids_and_time.hpp"

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <utility>

namespace vik::orchestrator {
struct SchedulerView;
}
namespace vik::store {
struct Stats;
}

namespace vik::http {

// Counted on the loop by the server; read by the metrics route. Labels are bounded: routes are
// patterns, statuses are codes.
struct HttpStats {
    std::map<std::pair<std::string, int>, uint64_t> requests; // (route, status) -> count
    uint64_t connections_refused = 0;                         // over the connection cap
    uint64_t streams_dropped = 0;                             // event streams cut off: too slow a reader
    uint64_t open_connections = 0;
    uint64_t open_streams = 0;
};

// The whole exposition. `now` is the wall clock the event ages are measured against.
std::string render_metrics(const orchestrator::SchedulerView &view, const HttpStats &http,
                           std::chrono::system_clock::time_point now);

// Per agent profile, from the durable store (so they survive restarts): runs by result, tokens,
// cost and seconds. Appended to render_metrics' exposition.
std::string render_store_metrics(const store::Stats &stats);

// Seconds since the epoch of an RFC 3339 UTC time (util/ids_and_time.hpp).
using util::rfc3339_seconds;

} // namespace vik::http
