#include "http/server_config.hpp"

#include "util/loopback.hpp"
#include "workflow/config.hpp"

#include <boost/asio/ip/address.hpp>

namespace vik::http {

std::expected<ListenPlan, std::string> plan_listen(const workflow::ServerConfig &config, std::optional<int> cli_port,
                                                   const std::string &cli_address, const GetEnv &getenv) {
    ListenPlan plan;
    std::optional<int64_t> port = cli_port ? std::optional<int64_t>(*cli_port) : config.port;
    if (!port) return plan;
    plan.enabled = true;
    plan.port = static_cast<uint16_t>(*port);
    plan.address = !cli_address.empty() ? cli_address : config.host;
    if (plan.address == "localhost") plan.address = "127.0.0.1";
    const std::string source = !cli_address.empty() ? "--bind-address" : "server.host";
    boost::system::error_code ec;
    boost::asio::ip::make_address(plan.address, ec);
    if (ec)
        return std::unexpected(source + " '" + plan.address +
                               "' is not an IP address; give one the host has (127.0.0.1, ::1, 0.0.0.0, ...)");
    const std::string where =
        (plan.address.find(':') != std::string::npos ? "[" + plan.address + "]" : plan.address) + ":" + std::to_string(plan.port);
    if (!config.token_env.empty()) {
        const char *value = getenv(config.token_env.c_str());
        if (!value || !*value)
            return std::unexpected("server.token_env names " + config.token_env +
                                   ", which is not set: export it with the bearer token clients must send, or remove "
                                   "server.token_env (allowed on 127.0.0.1 only)");
        plan.token = value;
        plan.token_env = config.token_env;
        if (plan.token.size() < kMinTokenLength)
            return std::unexpected("the bearer token in " + config.token_env + " is shorter than " +
                                   std::to_string(kMinTokenLength) +
                                   " characters; use a random one (for example: openssl rand -hex 32)");
    }
    if (!util::is_loopback_address(plan.address) && plan.token.empty())
        return std::unexpected("refusing to listen on " + where +
                               " without a bearer token: any address but loopback needs one. Set server.token_env in "
                               "workflow.yml to the name of an environment variable holding the token and export it, or "
                               "listen on 127.0.0.1");
    return plan;
}

} // namespace vik::http
