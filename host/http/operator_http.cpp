#include "http/operator_http.hpp"

#include "http/api.hpp"
#include "http/server.hpp"

namespace vik::http {

struct OperatorHttp::Parts {
    Parts(boost::asio::io_context &io, orchestrator::OperatorSurface &surface, const ListenPlan &plan, const ServerLimits &limits)
        : api(surface, stats), server(
                                   io, [this](const Request &r) { return api.handle(r); },
                                   [](const std::string &t) { return Api::is_public_asset(t); }, stats,
                                   ServerOptions{plan.address, plan.port, AccessRules{plan.token, plan.address}, limits}) {}
    HttpStats stats;
    Api api;
    Server server;
};

OperatorHttp::OperatorHttp(boost::asio::io_context &io, orchestrator::OperatorSurface &surface, const ListenPlan &plan)
    : OperatorHttp(io, surface, plan, ServerLimits{}) {}

OperatorHttp::OperatorHttp(boost::asio::io_context &io, orchestrator::OperatorSurface &surface, const ListenPlan &plan,
                           const ServerLimits &limits)
    : parts_(std::make_unique<Parts>(io, surface, plan, limits)) {}

OperatorHttp::~OperatorHttp() { stop(); }

std::expected<uint16_t, std::string> OperatorHttp::listen() { return parts_->server.listen(); }

void OperatorHttp::stop() { parts_->server.stop(); }

} // namespace vik::http
