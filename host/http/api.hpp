#pragma once
// The routes of the HTTP surface: /api/v1 (JSON and the event stream), /metrics and the
// dashboard's files. A request in, a response out, on the loop's thread: everything the server
// (server.cpp) decides is about bytes and time, everything here about meaning.

#include "http/message.hpp"
#include "http/metrics.hpp"

#include <cstddef>

namespace vik::orchestrator {
class OperatorSurface;
}

namespace vik::http {

struct ApiLimits {
    size_t transcript_chunk_bytes = 1024 * 1024; // one page of a session file
};

class Api {
  public:
    // Both must outlive the Api.
    Api(orchestrator::OperatorSurface &surface, const HttpStats &stats, ApiLimits limits = {});

    Response handle(const Request &request) const;

    // True for the dashboard's static files, which carry no data (access.hpp).
    static bool is_public_asset(const std::string &target);

  private:
    orchestrator::OperatorSurface &surface_;
    const HttpStats &stats_;
    ApiLimits limits_;
};

} // namespace vik::http
