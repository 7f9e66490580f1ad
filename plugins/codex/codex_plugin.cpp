// The codex agent runtime: `codex exec <args...> --json -m <model>` in the issue workspace, the
// prompt on stdin, stdout mapped by CodexEventMapper. Supervision (process group, timeouts,
// stall watchdog, no orphans) is the host's.
#include "../common/agent_cli.hpp"
#include "codex_events.hpp"

#include <vik/process_session.hpp>

#include <cstring>

namespace {

class CodexSession final : public vik::sdk::ProcessSession {
public:
    static std::unique_ptr<CodexSession> make(const vik_host_api *, const vik_session_request *req) {
        auto s = std::make_unique<CodexSession>();
        s->profile_ = vik::agents::parse_profile(req->profile_json);
        if (s->profile_.model.empty())
            throw vik::sdk::Error("codex: agent profile '" + s->profile_.name + "' has no model", VIK_INVALID_ARGUMENT);
        return s;
    }

    std::vector<std::string> argv() const override {
        std::vector<std::string> a{profile_.command.empty() ? "codex" : profile_.command, "exec"};
        for (auto &f : vik::agents::args_to_flags(profile_.args)) a.push_back(f);
        a.insert(a.end(), {"--json", "-m", profile_.model});
        return a;
    }

    void on_stdout_line(std::string_view line, bool truncated) override {
        for (const auto &e : mapper_.map(line, truncated)) emit(e);
        if (mapper_.terminal >= 0) settle(mapper_.terminal, mapper_.terminal_detail);
    }

    int32_t outcome(int32_t code, int32_t sig, bool cancelled, std::string &detail) override {
        return vik::agents::cli_outcome("codex", settled(), settled_detail(), code, sig, cancelled, mapper_.last_notice, stderr_tail(),
                                        detail);
    }

private:
    vik::agents::Profile profile_;
    vik::agents::CodexEventMapper mapper_;
};

const void *get_interface(const char *id) {
    return std::strcmp(id, VIK_AGENT_RUNTIME_V1) == 0 ? vik::sdk::process_runtime<CodexSession>() : nullptr;
}

} // namespace

VIK_PLUGIN("codex", "0.2.0", "Runs OpenAI Codex CLI sessions (codex exec --json)", get_interface);
