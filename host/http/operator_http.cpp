#include "http/operator_http.hpp"

#include "http/api.hpp"
#include "http/server.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>

namespace vik::http {

struct OperatorHttp::Parts {
    Parts(boost::asio::io_context &io, orchestrator::OperatorSurface &surface, const ListenPlan &plan, const ServerLimits &limits,
          store::Store *store)
        : api(surface, stats, ApiLimits{},
              StoreAccess{store, [this](std::function<void()> f) { boost::asio::post(readers, std::move(f)); },
                          [&io](std::function<void()> f) { boost::asio::post(io, std::move(f)); }}),
          server(
              io, [this](const Request &r) { return api.handle(r); },
              [](const std::string &t) { return Api::is_public_asset(t); }, stats,
              ServerOptions{plan.address, plan.port, AccessRules{plan.token, plan.address}, limits}) {}
    HttpStats stats;
    Api api;
    Server server;
    // One thread for the store's reads (history, stats): a query never holds up the loop.
    // Last member: joined first, before anything its jobs could reach goes away.
    boost::asio::thread_pool readers{1};
};

OperatorHttp::OperatorHttp(boost::asio::io_context &io, orchestrator::OperatorSurface &surface, const ListenPlan &plan,
                           store::Store *store)
    : OperatorHttp(io, surface, plan, ServerLimits{}, store) {}

OperatorHttp::OperatorHttp(boost::asio::io_context &io, orchestrator::OperatorSurface &surface, const ListenPlan &plan,
                           const ServerLimits &limits, store::Store *store)
    : parts_(std::make_unique<Parts>(io, surface, plan, limits, store)) {}

OperatorHttp::~OperatorHttp() {
    stop();
    parts_->readers.join();
}

std::expected<uint16_t, std::string> OperatorHttp::listen() { return parts_->server.listen(); }

void OperatorHttp::stop() { parts_->server.stop(); }

} // namespace vik::http
