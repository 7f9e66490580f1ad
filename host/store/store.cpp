#include "store/store.hpp"

#include <algorithm>
#include <fmt/format.h>

namespace vik::store {

const char *claim_state_name(ClaimState s) {
    switch (s) {
    case ClaimState::running:
        return "running";
    case ClaimState::retry_queued:
        return "retry_queued";
    case ClaimState::blocked:
        return "blocked";
    }
    return "running";
}

const char *run_outcome_name(RunOutcome o) {
    switch (o) {
    case RunOutcome::running:
        return "running";
    case RunOutcome::succeeded:
        return "succeeded";
    case RunOutcome::failed:
        return "failed";
    case RunOutcome::cancelled:
        return "cancelled";
    case RunOutcome::interrupted:
        return "interrupted";
    case RunOutcome::input_required:
        return "input_required";
    }
    return "running";
}

std::optional<RunOutcome> parse_run_outcome(const std::string &name) {
    for (auto o : {RunOutcome::running, RunOutcome::succeeded, RunOutcome::failed, RunOutcome::cancelled, RunOutcome::interrupted,
                   RunOutcome::input_required})
        if (name == run_outcome_name(o)) return o;
    return std::nullopt;
}

void Recovery::add(ClaimRecord claim, WallTime now) {
    switch (claim.state) {
    case ClaimState::running:
        interrupted_claims.push_back(std::move(claim));
        break;
    case ClaimState::blocked:
        blocked.push_back(std::move(claim));
        break;
    case ClaimState::retry_queued: {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(claim.due_at.value_or(now) - now);
        retries.push_back(PendingRetry{std::move(claim), std::max(left, std::chrono::milliseconds{0})});
        break;
    }
    }
}

std::string Recovery::summary() const {
    return fmt::format("store resumed: {} interrupted run(s), {} interrupted claim(s) to retry, {} pending retr{}, {} "
                       "blocked pair(s)",
                       interrupted_runs.size(), interrupted_claims.size(), retries.size(), retries.size() == 1 ? "y" : "ies",
                       blocked.size());
}

void Store::claim_running(ClaimRecord claim, WallTime at) {
    claim.state = ClaimState::running;
    claim.due_at.reset();
    claim.blocked_reason.clear();
    claim.blocked_at.reset();
    claim.updated_at = at;
    record_claim(claim);
}

void Store::claim_retry_queued(ClaimRecord claim, WallTime due_at, WallTime at) {
    claim.state = ClaimState::retry_queued;
    claim.due_at = due_at;
    claim.blocked_reason.clear();
    claim.blocked_at.reset();
    claim.updated_at = at;
    record_claim(claim);
}

void Store::claim_blocked(ClaimRecord claim, const std::string &reason, WallTime at) {
    claim.state = ClaimState::blocked;
    claim.due_at.reset();
    claim.blocked_reason = reason;
    claim.blocked_at = at;
    claim.updated_at = at;
    record_claim(claim);
}

} // namespace vik::store
