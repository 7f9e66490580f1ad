// The gemini agent runtime: `gemini --output-format stream-json -m <model> <args...>` in the
// issue workspace, the prompt on stdin (headless mode), stdout mapped by GeminiEventMapper.
// Headless gemini never prompts: a tool that would need approval is simply not offered to the
// model. Without `approval-mode` or `yolo` in the profile's args this runtime passes
// `--approval-mode auto_edit`: file edits (confined to the workspace directories) are approved,
// shell commands are not available. `--resume <session_id>` continues a conversation (gemini keeps
// it under $HOME/.gemini, keyed by the working directory). See docs/runtimes.md.
#include "../common/cli_session.hpp"
#include "gemini_events.hpp"

#include <cstring>
#include <memory>

namespace {

std::vector<std::string> gemini_argv(const vik::agents::Profile &p) {
    std::vector<std::string> a{p.command.empty() ? "gemini" : p.command, "--output-format", "stream-json", "-m", p.model};
    bool approval = false;
    for (const auto &kv : p.args) {
        std::string k(kv.key());
        while (!k.empty() && k.front() == '-')
            k.erase(0, 1);
        approval = approval || k == "approval-mode" || k == "yolo" || k == "y";
    }
    if (!approval) a.insert(a.end(), {"--approval-mode", "auto_edit"});
    for (auto &f : vik::agents::args_to_flags(p.args))
        a.push_back(f);
    return a;
}

struct GeminiSession {
    static std::unique_ptr<vik::agents::CliSession<vik::agents::GeminiEventMapper>> make(const vik_host_api *,
                                                                                         const vik_session_request *req) {
        return vik::agents::CliSession<vik::agents::GeminiEventMapper>::make("gemini", req, gemini_argv, "--resume");
    }
};

const void *get_interface(const char *id) {
    return std::strcmp(id, VIK_AGENT_RUNTIME_V1) == 0 ? vik::sdk::process_runtime<GeminiSession>() : nullptr;
}

} // namespace

VIK_PLUGIN("gemini", "0.1.0", "Runs Gemini CLI sessions (gemini --output-format stream-json)", get_interface);
