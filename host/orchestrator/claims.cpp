#include "orchestrator/claims.hpp"

#include <algorithm>
#include <cmath>

namespace vik::orchestrator {

const Claim *ClaimTable::find(const PairKey &key) const {
    auto it = claims_.find(key);
    return it == claims_.end() ? nullptr : &it->second;
}

Claim *ClaimTable::get(const PairKey &key) {
    auto it = claims_.find(key);
    return it == claims_.end() ? nullptr : &it->second;
}

namespace {
std::unexpected<std::string> no_claim(const PairKey &key) {
    return std::unexpected("no claim for " + key.first + "/" + key.second);
}
} // namespace

bool ClaimTable::dispatchable(const PairKey &key) const {
    const Claim *c = find(key);
    return !c || (c->state == ClaimState::blocked && !c->routed_to.empty() && !c->route_pending);
}

const Claim &ClaimTable::start(const PairKey &key, const std::string &issue_state) {
    Claim &c = claims_[key];    // a fresh claim when unclaimed
    if (!c.routed_to.empty()) { // back from a route: a new first run, the route count kept
        c.routed_to.clear();
        c.failures = 0;
        c.continuations = 0;
        c.retry_kind = "first";
    }
    c.state = ClaimState::running;
    c.since = wall_now_();
    c.issue_state = issue_state;
    c.token = 0;
    ++c.runs;
    notify(key);
    return c;
}

uint64_t ClaimTable::restore(const PairKey &key, Claim claim) {
    claim.token = claim.state == ClaimState::retry_queued ? next_token_++ : 0;
    uint64_t token = claim.token;
    claims_[key] = std::move(claim);
    return token;
}

double ClaimTable::backoff_sec(const workflow::SchedulingPolicy &p, int64_t attempt) {
    double d = p.retry_base_sec * std::pow(2.0, static_cast<double>(std::max<int64_t>(attempt, 1) - 1));
    return std::min(d, p.retry_max_backoff_sec);
}

Decision ClaimTable::queue(Claim &c, const std::string &kind, double delay, const std::string &reason) {
    c.state = ClaimState::retry_queued;
    c.since = wall_now_();
    c.retry_kind = kind;
    c.token = next_token_++;
    c.due_in_sec = delay;
    return Decision{Decision::retry, delay, c.token, reason, {}};
}

std::expected<Decision, std::string> ClaimTable::completed(const PairKey &key, bool still_in_state) {
    Claim *found = get(key);
    if (!found) return no_claim(key);
    Claim &c = *found;
    c.failures = 0;
    c.last_error.clear();
    if (!still_in_state) {
        release(key);
        return Decision{Decision::release, 0, 0, "the issue moved on", {}};
    }
    if (c.continuations >= policy_.max_continuations) {
        std::string reason = "stage finished " + std::to_string(c.continuations + 1) +
                             " time(s) in a row but the issue stayed in state '" + c.issue_state +
                             "' (scheduling.max_continuations = " + std::to_string(policy_.max_continuations) + ")";
        block(key, reason);
        return Decision{Decision::block, 0, 0, reason, {}};
    }
    ++c.continuations;
    Decision d = queue(c, "continuation", policy_.continuation_delay_sec, "continuation " + std::to_string(c.continuations));
    notify(key);
    return d;
}

std::expected<Decision, std::string> ClaimTable::failed(const PairKey &key, const std::string &reason, double not_before_sec,
                                                        const workflow::FailurePolicy &on_fail,
                                                        const std::string &gate_feedback) {
    Claim *found = get(key);
    if (!found) return no_claim(key);
    Claim &c = *found;
    c.continuations = 0;
    c.last_error = reason;
    if (!gate_feedback.empty()) c.gate_feedback = gate_feedback;
    ++c.failures;
    bool rate_limited = not_before_sec > 0;
    if (!rate_limited && on_fail.kind != workflow::FailurePolicy::retry && c.failures >= on_fail.after_attempts) {
        std::string attempts = "failed " + std::to_string(c.failures) + " time(s)";
        if (on_fail.kind == workflow::FailurePolicy::block) {
            std::string why = attempts + " (on_fail: block); last error: " + reason;
            block(key, why);
            return Decision{Decision::block, 0, 0, why, {}};
        }
        if (c.routes >= policy_.max_routes) {
            std::string why = attempts + " after " + std::to_string(c.routes) + " route(s) to stage '" + on_fail.stage +
                              "' (scheduling.max_routes = " + std::to_string(policy_.max_routes) + "); last error: " + reason;
            block(key, why);
            return Decision{Decision::block, 0, 0, why, {}};
        }
        std::string why = attempts + "; routed to stage '" + on_fail.stage + "' (route " + std::to_string(c.routes + 1) + " of " +
                          std::to_string(policy_.max_routes) + "); last error: " + reason;
        c.state = ClaimState::blocked;
        c.since = wall_now_();
        c.token = 0;
        c.last_error = why;
        ++c.routes;
        c.route_reason = reason;
        c.routed_to = on_fail.stage;
        c.route_pending = true; // until the scheduler has moved the issue (routed) or could not
        notify(key);
        return Decision{Decision::route, 0, 0, reason, on_fail.stage};
    }
    if (c.failures >= policy_.max_attempts) {
        std::string why = "failed " + std::to_string(c.failures) +
                          " time(s) (scheduling.max_attempts = " + std::to_string(policy_.max_attempts) +
                          "); last error: " + reason;
        block(key, why);
        return Decision{Decision::block, 0, 0, why, {}};
    }
    Decision d = queue(c, "failure", std::max(backoff_sec(policy_, c.failures), not_before_sec), reason);
    notify(key);
    return d;
}

bool ClaimTable::routed(const PairKey &key) {
    Claim *c = get(key);
    if (!c || !c->route_pending) return false;
    c->route_pending = false;
    notify(key);
    return true;
}

void ClaimTable::route_failed(const PairKey &key, const std::string &reason) {
    Claim *c = get(key);
    if (!c || !c->route_pending) return;
    --c->routes;
    block(key, reason);
}

std::optional<std::pair<PairKey, Claim>> ClaimTable::routed_to(const std::string &issue_id, const std::string &stage) const {
    std::optional<std::pair<PairKey, Claim>> newest;
    for (auto it = claims_.lower_bound(PairKey{issue_id, std::string()}); it != claims_.end() && it->first.first == issue_id;
         ++it)
        if (it->second.routed_to == stage && (!newest || it->second.since > newest->second.since)) newest = *it;
    return newest;
}

std::expected<Decision, std::string> ClaimTable::parked(const PairKey &key, const std::string &question) {
    Claim *c = get(key);
    if (!c) return no_claim(key);
    c->continuations = 0;
    c->failures = 0;
    c->question = question;
    std::string reason = "input required: " + question;
    block(key, reason);
    return Decision{Decision::block, 0, 0, reason, {}};
}

std::expected<Decision, std::string> ClaimTable::resume_failed(const PairKey &key, const std::string &reason) {
    Claim *c = get(key);
    if (!c) return no_claim(key);
    c->conversation_id.clear();
    c->conversation_agent.clear();
    c->conversation_turns = 0;
    Decision d = queue(*c, c->retry_kind, 0, reason);
    notify(key);
    return d;
}

void ClaimTable::note_conversation(const PairKey &key, const ConversationUse &use) {
    Claim *c = get(key);
    if (!c || !use.delivered) return;
    c->operator_message.clear();
    c->question.clear();
    c->gate_feedback.clear();
    if (use.id.empty()) { // the agent named no conversation: only one this run continued goes on
        if (use.resumed) {
            ++c->conversation_turns;
        } else {
            c->conversation_id.clear();
            c->conversation_agent.clear();
            c->conversation_turns = 0;
        }
        return;
    }
    c->conversation_turns = use.resumed && c->conversation_id == use.id ? c->conversation_turns + 1 : 1;
    c->conversation_id = use.id;
    c->conversation_agent = use.agent;
}

std::expected<Decision, std::string> ClaimTable::requeue_no_slot(const PairKey &key) {
    Claim *c = get(key);
    if (!c) return no_claim(key);
    ++c->failures;
    Decision d = queue(*c, c->retry_kind, backoff_sec(policy_, c->failures), "no available orchestrator slots");
    notify(key);
    return d;
}

void ClaimTable::set_blocked(const PairKey &key, Claim &c, const std::string &reason, bool awaiting_approval) {
    c.state = ClaimState::blocked;
    c.since = wall_now_();
    c.token = 0;
    c.last_error = reason;
    c.routed_to.clear();
    c.route_pending = false;
    c.awaiting_approval = awaiting_approval;
    notify(key);
}

void ClaimTable::block(const PairKey &key, const std::string &reason, const std::optional<std::string> &issue_state) {
    Claim &c = claims_[key];
    if (issue_state) c.issue_state = *issue_state;
    set_blocked(key, c, reason, false);
}

std::expected<Decision, std::string> ClaimTable::await_approval(const PairKey &key, const std::string &why) {
    Claim *c = get(key);
    if (!c) return no_claim(key);
    std::string reason = (why.empty() ? std::string() : why + "; ") + "waits for approval: `vik-host gate approve " + key.first +
                         "` or `vik-host gate reject " + key.first + " --feedback TEXT`";
    c->failures = 0;
    set_blocked(key, *c, reason, true);
    return Decision{Decision::block, 0, 0, reason, {}};
}

std::expected<Decision, std::string> ClaimTable::approved(const PairKey &key, bool issue_still_in_state) {
    Claim *c = get(key);
    if (!c || !c->awaiting_approval)
        return std::unexpected("stage " + key.second + " of issue " + key.first + " awaits no approval");
    c->awaiting_approval = false;
    c->state = ClaimState::running; // for the instant completed() decides
    return completed(key, issue_still_in_state);
}

std::expected<Decision, std::string> ClaimTable::rejected(const PairKey &key, const std::string &feedback) {
    Claim *c = get(key);
    if (!c || !c->awaiting_approval)
        return std::unexpected("stage " + key.second + " of issue " + key.first + " awaits no approval");
    c->awaiting_approval = false;
    c->continuations = 0;
    c->gate_feedback = feedback;
    c->last_error.clear();
    Decision d = queue(*c, "rejected", 0, "rejected at its gate");
    notify(key);
    return d;
}

std::vector<PairKey> ClaimTable::awaiting_approval(const std::string &issue_id) const {
    std::vector<PairKey> out;
    for (auto it = claims_.lower_bound(PairKey{issue_id, std::string()}); it != claims_.end() && it->first.first == issue_id;
         ++it)
        if (it->second.awaiting_approval) out.push_back(it->first);
    return out;
}

void ClaimTable::release(const PairKey &key) {
    if (claims_.erase(key)) notify(key);
}

void ClaimTable::release_issue(const std::string &issue_id) {
    std::vector<PairKey> gone;
    for (auto it = claims_.begin(); it != claims_.end();)
        if (it->first.first == issue_id) {
            gone.push_back(it->first);
            it = claims_.erase(it);
        } else {
            ++it;
        }
    for (const auto &k : gone)
        notify(k);
}

size_t ClaimTable::release_idle(const std::string &issue_id) {
    size_t n = 0;
    for (auto it = claims_.begin(); it != claims_.end();) {
        if (it->first.first == issue_id && it->second.state != ClaimState::running) {
            PairKey k = it->first;
            it = claims_.erase(it);
            notify(k);
            ++n;
        } else {
            ++it;
        }
    }
    return n;
}

bool ClaimTable::has_issue(const std::string &issue_id) const {
    auto it = claims_.lower_bound(PairKey{issue_id, std::string()});
    return it != claims_.end() && it->first.first == issue_id;
}

std::set<std::string> ClaimTable::issue_ids() const {
    std::set<std::string> out;
    for (const auto &[key, claim] : claims_)
        out.insert(out.end(), key.first);
    return out;
}

bool ClaimTable::token_current(const PairKey &key, uint64_t token) const {
    const Claim *c = find(key);
    return c && c->state == ClaimState::retry_queued && c->token == token;
}

size_t ClaimTable::clear_blocks_on_state_change(const std::string &issue_id, const std::string &current_state) {
    size_t n = 0;
    for (auto it = claims_.begin(); it != claims_.end();) {
        if (it->first.first == issue_id && it->second.state == ClaimState::blocked && it->second.routed_to.empty() &&
            !it->second.awaiting_approval && it->second.issue_state != current_state) {
            PairKey k = it->first;
            it = claims_.erase(it);
            notify(k);
            ++n;
        } else {
            ++it;
        }
    }
    return n;
}

std::vector<std::pair<PairKey, Decision>> ClaimTable::retry_now(const std::string &issue_id, const std::string &message) {
    std::vector<std::pair<PairKey, Decision>> out;
    for (auto it = claims_.lower_bound(PairKey{issue_id, std::string()}); it != claims_.end() && it->first.first == issue_id;
         ++it) {
        Claim &c = it->second;
        // A verdict answers a gate; a rejected run is already queued to run at once (its issue may
        // be on its way back to the stage's state).
        if (c.state == ClaimState::running || c.awaiting_approval ||
            (c.state == ClaimState::retry_queued && c.retry_kind == "rejected"))
            continue;
        c.failures = 0;
        c.continuations = 0;
        c.routes = 0;
        c.routed_to.clear();
        c.route_pending = false;
        c.question.clear();
        c.operator_message = message;
        out.emplace_back(it->first, queue(c, "operator", 0, "retried by an operator"));
        notify(it->first);
    }
    return out;
}

std::vector<std::pair<PairKey, Claim>> ClaimTable::all() const { return {claims_.begin(), claims_.end()}; }

} // namespace vik::orchestrator
