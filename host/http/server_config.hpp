#pragma once
// Where the HTTP surface listens and with which token, from workflow.yml's `server:` section and
// the `run` command's --port / --bind-address (which win). Decided before anything starts, so a
// refusal reaches the operator (and the command that started a daemon) with its reason.

#include <cstdint>
#include <expected>
#include <functional>
#include <optional>
#include <string>

namespace vik::workflow {
struct ServerConfig;
}

namespace vik::http {

struct ListenPlan {
    bool enabled = false;  // false: no --port and no server.port, nothing listens
    std::string address;   // an IP address literal
    uint16_t port = 0;     // 0: any free port
    std::string token;     // the bearer token; empty on loopback without server.token_env
    std::string token_env; // the variable it came from (to withhold it from agents)
};

// The shortest token accepted: a guessable token on a network port is no protection.
inline constexpr size_t kMinTokenLength = 16;

using GetEnv = std::function<const char *(const char *)>;

// The plan, or why the host must not start ("refusing to listen on 0.0.0.0:8080 without a
// bearer token: ..."). A non-loopback address needs a token; a named token variable must be set.
std::expected<ListenPlan, std::string> plan_listen(const workflow::ServerConfig &config, std::optional<int> cli_port,
                                                   const std::string &cli_address, const GetEnv &getenv);

} // namespace vik::http
