// The codex agent runtime: `codex exec <args...> --json -m <model>` in the issue workspace, the
// prompt on stdin, stdout mapped by CodexEventMapper; `... resume <thread_id>` continues a thread
// (the exec flags go before `resume`: codex refuses -s/-C after it and does not restore them). Supervision (process group,
// timeouts, stall watchdog, no orphans) is the host's.
#include "../common/cli_session.hpp"
#include "codex_events.hpp"

#include <cstring>
#include <memory>

namespace {

std::vector<std::string> codex_argv(const vik::agents::Profile &p) {
    std::vector<std::string> a{p.command.empty() ? "codex" : p.command, "exec"};
    for (auto &f : vik::agents::args_to_flags(p.args))
        a.push_back(f);
    a.insert(a.end(), {"--json", "-m", p.model});
    return a;
}

struct CodexSession {
    static std::unique_ptr<vik::agents::CliSession<vik::agents::CodexEventMapper>> make(const vik_host_api *,
                                                                                        const vik_session_request *req) {
        return vik::agents::CliSession<vik::agents::CodexEventMapper>::make("codex", req, codex_argv, "resume");
    }
};

const void *get_interface(const char *id) {
    return std::strcmp(id, VIK_AGENT_RUNTIME_V1) == 0 ? vik::sdk::process_runtime<CodexSession>() : nullptr;
}

} // namespace

VIK_PLUGIN("codex", "0.2.0", "Runs OpenAI Codex CLI sessions (codex exec --json)", get_interface);
