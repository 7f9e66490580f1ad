// The claude-code agent runtime: `claude --verbose --output-format stream-json --model <model>
// -p <args...>` in the issue workspace, the prompt on stdin, stdout mapped by ClaudeEventMapper;
// `--resume <session_id>` continues a conversation (kept under $HOME/.claude; permission flags
// are not kept with it, so the profile's args are passed again).
#include "../common/cli_session.hpp"
#include "claude_events.hpp"

#include <cstring>
#include <memory>

namespace {

std::vector<std::string> claude_argv(const vik::agents::Profile &p) {
    std::vector<std::string> a{
        p.command.empty() ? "claude" : p.command, "--verbose", "--output-format", "stream-json", "--model", p.model, "-p"};
    for (auto &f : vik::agents::args_to_flags(p.args))
        a.push_back(f);
    return a;
}

struct ClaudeSession {
    static std::unique_ptr<vik::agents::CliSession<vik::agents::ClaudeEventMapper>> make(const vik_host_api *,
                                                                                         const vik_session_request *req) {
        return vik::agents::CliSession<vik::agents::ClaudeEventMapper>::make("claude", req, claude_argv, "--resume");
    }
};

const void *get_interface(const char *id) {
    return std::strcmp(id, VIK_AGENT_RUNTIME_V1) == 0 ? vik::sdk::process_runtime<ClaudeSession>() : nullptr;
}

} // namespace

VIK_PLUGIN("claude-code", "0.2.0", "Runs Claude Code sessions (claude -p --output-format stream-json)", get_interface);
