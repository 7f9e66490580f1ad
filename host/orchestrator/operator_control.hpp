#pragma once
// Operator control: the requests that arrive on the control channel (control_channel.hpp) and
// what they do: `retry` clears an issue's blocked and queued stages, `cancel` stops its runs and
// blocks its queued retries, `approve` and `reject` answer its human gates, `set-state` and
// `comment` are tracker writes done by the host (so agents never hold the tracker's token).
//
// A request from a process an agent runtime started (found by the peer's session) may only
// concern that agent's own issue, and may not retry or cancel runs: an agent follows its
// instructions, and those come partly from issue text. This is a guard, not authentication: a
// same-user process can leave its session (docs/security.md).
//
// Owns the listening channel. Threading: the loop's thread.

#include "orchestrator/claims.hpp"
#include "orchestrator/control_channel.hpp"
#include "orchestrator/fault_guard.hpp"
#include "orchestrator/intake.hpp"
#include "orchestrator/session_supervisor.hpp"

#include <boost/asio/io_context.hpp>

#include <expected>

#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace vik::orchestrator {

class OperatorControl {
  public:
    // Runs after `retry` queued stages of `id` to run now: the scheduler arms their timers.
    using OnRetry = std::function<void(const std::string &id, const std::vector<std::pair<PairKey, Decision>> &queued)>;
    // A human's verdict on the gates (the scheduler's, which owns what follows): how many
    // stages it answered, or why none.
    using OnVerdict =
        std::function<std::expected<size_t, std::string>(const std::string &id, bool approve, const std::string &feedback)>;

    // Stops what the scheduler runs for the issue outside a session (a gate's review being
    // prepared): how many.
    using OnCancel = std::function<size_t(const std::string &id)>;

    // Opens the channel of the workflow's scoped root; throws std::runtime_error when it cannot
    // (another vik-host for this workflow?).
    OperatorControl(boost::asio::io_context &io, const std::filesystem::path &scoped_root, Intake &intake,
                    SessionSupervisor &sessions, ClaimTable &claims, const FaultGuard &guard, OnRetry on_retry,
                    OnVerdict on_verdict, OnCancel on_cancel);

    // The operator's `issue retry` / `issue cancel`, from the channel or another surface: how
    // many stages were queued / runs stopped. `message` (may be empty) reaches the next prompt as
    // `operator_message`.
    size_t retry(const std::string &id, const std::string &message = "");
    size_t cancel(const std::string &id);

  private:
    void on_request(const std::string &command, const std::string &id, const std::string &value, const Peer &peer,
                    ControlServer::Reply reply);
    std::string claim_command(const std::string &command, const std::string &id, const std::string &value);

    Intake &intake_;
    SessionSupervisor &sessions_;
    ClaimTable &claims_;
    const FaultGuard &guard_;
    OnRetry on_retry_;
    OnVerdict on_verdict_;
    OnCancel on_cancel_;
    std::unique_ptr<ControlServer> server_;
};

} // namespace vik::orchestrator
