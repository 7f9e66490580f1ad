// The opencode agent runtime: `opencode run --format json -m <provider/model> <args...>` in the
// issue workspace, the prompt on stdin, stdout mapped by OpencodeEventMapper. `opencode run`
// never prompts: a permission set to "ask" is rejected and the run goes on. Providers,
// permissions and offline settings live in opencode's config (see docs/runtimes.md).
#include "../common/cli_session.hpp"
#include "opencode_events.hpp"

#include <cstring>
#include <memory>

namespace {

std::vector<std::string> opencode_argv(const vik::agents::Profile &p) {
    std::vector<std::string> a{p.command.empty() ? "opencode" : p.command, "run", "--format", "json", "-m", p.model};
    for (auto &f : vik::agents::args_to_flags(p.args)) a.push_back(f);
    return a;
}

struct OpencodeSession {
    static std::unique_ptr<vik::agents::CliSession<vik::agents::OpencodeEventMapper>> make(const vik_host_api *, const vik_session_request *req) {
        return vik::agents::CliSession<vik::agents::OpencodeEventMapper>::make("opencode", req, opencode_argv);
    }
};

const void *get_interface(const char *id) {
    return std::strcmp(id, VIK_AGENT_RUNTIME_V1) == 0 ? vik::sdk::process_runtime<OpencodeSession>() : nullptr;
}

} // namespace

VIK_PLUGIN("opencode", "0.1.0", "Runs opencode sessions (opencode run --format json)", get_interface);
