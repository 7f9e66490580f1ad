#pragma once
// The HTTP operator surface as one piece for the composition root (cmd_run.cpp): the routes on
// the orchestrator's OperatorSurface, the server on its io_context, and their counters.

#include "http/server_config.hpp"

#include <cstdint>
#include <expected>
#include <memory>
#include <string>

namespace boost::asio {
class io_context;
}

namespace vik::orchestrator {
class OperatorSurface;
}
namespace vik::store {
class Store;
}

namespace vik::http {

struct ServerLimits;

class OperatorHttp {
  public:
    // `io`, `surface` and `store` (may be null: no history, stats or per-agent metrics) must
    // outlive this object; the routes run on `io`'s thread, store reads on a thread of its own.
    OperatorHttp(boost::asio::io_context &io, orchestrator::OperatorSurface &surface, const ListenPlan &plan,
                 store::Store *store = nullptr);
    OperatorHttp(boost::asio::io_context &io, orchestrator::OperatorSurface &surface, const ListenPlan &plan,
                 const ServerLimits &limits, store::Store *store = nullptr);
    ~OperatorHttp();

    // The port listened on, or why not.
    std::expected<uint16_t, std::string> listen();
    void stop();

  private:
    struct Parts;
    std::unique_ptr<Parts> parts_;
};

} // namespace vik::http
