#pragma once
// One agent CLI session: the argv, the CLI's event mapper, and vik-host's outcome rules. The codex
// and claude-code plugins differ only in their argv and their mapper.

#include "agent_cli.hpp"

#include <vik/process_session.hpp>

#include <memory>
#include <string>
#include <vector>

namespace vik::agents {

template <class Mapper> class CliSession final : public vik::sdk::ProcessSession {
  public:
    using ArgvBuilder = std::vector<std::string> (*)(const Profile &);

    // Reads the profile and builds the argv; a profile without a model is refused. A session that
    // continues a conversation gets `resume_flag <id>` at the end (every CLI here takes it there;
    // codex's `resume` subcommand must follow the exec flags).
    static std::unique_ptr<CliSession> make(const char *cli, const vik_session_request *req, ArgvBuilder build,
                                            const char *resume_flag) {
        Profile profile = parse_profile(req->profile_json);
        if (profile.model.empty())
            throw vik::sdk::Error(std::string(cli) + ": agent profile '" + profile.name + "' has no model", VIK_INVALID_ARGUMENT);
        std::vector<std::string> argv = build(profile);
        append_resume(argv, req, resume_flag);
        return std::make_unique<CliSession>(cli, std::move(argv));
    }

    static void append_resume(std::vector<std::string> &argv, const vik_session_request *req, const char *resume_flag) {
        if (VIK_SESSION_RESUMES(req)) argv.insert(argv.end(), {resume_flag, req->resume_conversation});
    }

    CliSession(std::string cli, std::vector<std::string> argv) : cli_(std::move(cli)), argv_(std::move(argv)) {}

    std::vector<std::string> argv() const override { return argv_; }

    void on_stdout_line(std::string_view line, bool truncated) override {
        const EventList &events = mapper_.map_line(line, truncated);
        for (size_t i = 0; i < events.size(); ++i)
            emit(events[i]);
        if (mapper_.terminal >= 0) settle(mapper_.terminal, mapper_.terminal_detail);
    }

    int32_t outcome(int32_t code, int32_t sig, bool cancelled, std::string &detail) override {
        return cli_outcome(cli_, settled(), settled_detail(), code, sig, cancelled, mapper_.last_notice, stderr_tail(), detail);
    }

  private:
    std::string cli_;
    std::vector<std::string> argv_;
    Mapper mapper_;
};

} // namespace vik::agents
