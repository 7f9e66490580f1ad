// The claude-code agent runtime: `claude --verbose --output-format stream-json --model <model>
// -p <args...>` in the issue workspace, the prompt on stdin, stdout mapped by ClaudeEventMapper.
#include "../common/agent_cli.hpp"
#include "claude_events.hpp"

#include <vik/process_session.hpp>

#include <cstring>

namespace {

class ClaudeSession final : public vik::sdk::ProcessSession {
public:
    static std::unique_ptr<ClaudeSession> make(const vik_host_api *, const vik_session_request *req) {
        auto s = std::make_unique<ClaudeSession>();
        s->profile_ = vik::agents::parse_profile(req->profile_json);
        if (s->profile_.model.empty())
            throw vik::sdk::Error("claude-code: agent profile '" + s->profile_.name + "' has no model", VIK_INVALID_ARGUMENT);
        return s;
    }

    std::vector<std::string> argv() const override {
        std::vector<std::string> a{profile_.command.empty() ? "claude" : profile_.command, "--verbose", "--output-format", "stream-json",
                                   "--model", profile_.model, "-p"};
        for (auto &f : vik::agents::args_to_flags(profile_.args)) a.push_back(f);
        return a;
    }

    void on_stdout_line(std::string_view line, bool truncated) override {
        for (const auto &e : mapper_.map(line, truncated)) emit(e);
        if (mapper_.terminal >= 0) settle(mapper_.terminal, mapper_.terminal_detail);
    }

    int32_t outcome(int32_t code, int32_t sig, bool cancelled, std::string &detail) override {
        return vik::agents::cli_outcome("claude", settled(), settled_detail(), code, sig, cancelled, mapper_.last_notice, stderr_tail(),
                                        detail);
    }

private:
    vik::agents::Profile profile_;
    vik::agents::ClaudeEventMapper mapper_;
};

const void *get_interface(const char *id) {
    return std::strcmp(id, VIK_AGENT_RUNTIME_V1) == 0 ? vik::sdk::process_runtime<ClaudeSession>() : nullptr;
}

} // namespace

VIK_PLUGIN("claude-code", "0.2.0", "Runs Claude Code sessions (claude -p --output-format stream-json)", get_interface);
