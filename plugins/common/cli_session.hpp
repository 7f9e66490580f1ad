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

    // Reads the profile and builds the argv; a profile without a model is refused.
    static std::unique_ptr<CliSession> make(const char *cli, const vik_session_request *req, ArgvBuilder build) {
        Profile profile = parse_profile(req->profile_json);
        if (profile.model.empty())
            throw vik::sdk::Error(std::string(cli) + ": agent profile '" + profile.name + "' has no model", VIK_INVALID_ARGUMENT);
        return std::make_unique<CliSession>(cli, build(profile));
    }

    CliSession(std::string cli, std::vector<std::string> argv) : cli_(std::move(cli)), argv_(std::move(argv)) {}

    std::vector<std::string> argv() const override { return argv_; }

    void on_stdout_line(std::string_view line, bool truncated) override {
        for (const auto &e : mapper_.map(line, truncated))
            emit(e);
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
