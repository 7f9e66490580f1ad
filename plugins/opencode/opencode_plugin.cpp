// The opencode agent runtime: `opencode run --format json -m <provider/model> <args...>` in the
// issue workspace, the prompt on stdin, stdout mapped by OpencodeEventMapper. `opencode run`
// never prompts: a permission set to "ask" is rejected and the run goes on. Providers,
// permissions and offline settings live in opencode's config (see docs/runtimes.md).
// `--dir <workspace>` is always passed: opencode takes its project directory from $PWD (inherited
// from the host), not from its working directory, and would otherwise work in the host's
// directory. `--session <sessionID>` continues a conversation (with the same --dir: opencode
// runs a session's tools in the directory it was made in).
#include "../common/cli_session.hpp"
#include "opencode_events.hpp"

#include <cstring>
#include <memory>

namespace {

using Session = vik::agents::CliSession<vik::agents::OpencodeEventMapper>;

struct OpencodeSession {
    static std::unique_ptr<Session> make(const vik_host_api *, const vik_session_request *req) {
        vik::agents::Profile p = vik::agents::parse_profile(req->profile_json);
        if (p.model.empty())
            throw vik::sdk::Error("opencode: agent profile '" + p.name + "' has no model (provider/model)", VIK_INVALID_ARGUMENT);
        std::vector<std::string> a{p.command.empty() ? "opencode" : p.command, "run", "--format", "json", "-m", p.model};
        if (req->workdir != nullptr && *req->workdir != '\0') a.insert(a.end(), {"--dir", req->workdir});
        for (auto &f : vik::agents::args_to_flags(p.args))
            a.push_back(f);
        Session::append_resume(a, req, "--session");
        return std::make_unique<Session>("opencode", std::move(a));
    }
};

const void *get_interface(const char *id) {
    return std::strcmp(id, VIK_AGENT_RUNTIME_V1) == 0 ? vik::sdk::process_runtime<OpencodeSession>() : nullptr;
}

} // namespace

VIK_PLUGIN("opencode", "0.1.0", "Runs opencode sessions (opencode run --format json)", get_interface);
