#include "orchestrator/durable_state.hpp"

#include <boost/json.hpp>

#include <stdexcept>

namespace vik::orchestrator {

namespace json = boost::json;

namespace {

store::ClaimState stored_state(ClaimState s) {
    switch (s) {
    case ClaimState::running:
        return store::ClaimState::running;
    case ClaimState::retry_queued:
        return store::ClaimState::retry_queued;
    case ClaimState::blocked:
        return store::ClaimState::blocked;
    }
    return store::ClaimState::running;
}

store::ClaimRecord record_of(const PairKey &key, const Claim &c) {
    store::ClaimRecord r;
    r.issue_id = key.first;
    r.stage = key.second;
    r.state = stored_state(c.state);
    r.failures = c.failures;
    r.continuations = c.continuations;
    r.runs = c.runs;
    r.retry_kind = c.retry_kind;
    r.last_error = c.last_error;
    r.issue_state = c.issue_state;
    r.updated_at = c.since;
    if (c.state == ClaimState::retry_queued)
        r.due_at = c.since +
                   std::chrono::duration_cast<std::chrono::system_clock::duration>(std::chrono::duration<double>(c.due_in_sec));
    if (c.state == ClaimState::blocked) {
        r.blocked_reason = c.last_error;
        r.blocked_at = c.since;
    }
    r.conversation_id = c.conversation_id;
    r.conversation_agent = c.conversation_agent;
    r.conversation_turns = c.conversation_turns;
    r.operator_message = c.operator_message;
    r.question = c.question;
    r.routed_to = c.routed_to;
    r.route_reason = c.route_reason;
    r.routes = c.routes;
    r.awaiting_approval = c.awaiting_approval;
    r.gate_feedback = c.gate_feedback;
    return r;
}

Claim claim_of(const store::ClaimRecord &r, ClaimState state) {
    Claim c;
    c.state = state;
    c.failures = r.failures;
    c.continuations = r.continuations;
    c.runs = r.runs;
    c.retry_kind = r.retry_kind;
    c.last_error = state == ClaimState::blocked && !r.blocked_reason.empty() ? r.blocked_reason : r.last_error;
    c.issue_state = r.issue_state;
    c.since = state == ClaimState::blocked && r.blocked_at ? *r.blocked_at : r.updated_at;
    c.conversation_id = r.conversation_id;
    c.conversation_agent = r.conversation_agent;
    c.conversation_turns = r.conversation_turns;
    c.operator_message = r.operator_message;
    c.question = r.question;
    c.routed_to = r.routed_to;
    c.route_reason = r.route_reason;
    c.routes = r.routes;
    c.awaiting_approval = r.awaiting_approval && state == ClaimState::blocked;
    c.gate_feedback = r.gate_feedback;
    return c;
}

int64_t number(const json::object &o, const char *key) {
    const json::value *v = o.if_contains(key);
    if (v == nullptr) return 0;
    if (v->is_int64()) return v->get_int64();
    if (v->is_uint64()) return static_cast<int64_t>(v->get_uint64());
    if (v->is_double()) return static_cast<int64_t>(v->get_double());
    return 0;
}

} // namespace

void DurableState::observe(ClaimTable &claims) {
    if (!store_) return;
    claims.set_observer([this](const PairKey &key, const Claim *c) {
        if (c)
            store_->record_claim(record_of(key, *c));
        else
            store_->release_claim(key.first, key.second);
    });
}

DurableState::Resumed DurableState::recover(ClaimTable &claims, std::chrono::system_clock::time_point now) {
    Resumed out;
    if (!store_) return out;
    auto rec = store_->recover(now);
    if (!rec) throw std::runtime_error("cannot resume from the store: " + rec.error().message);
    std::string summary = rec->summary();
    out = adopt(claims, std::move(*rec));
    out.summary = std::move(summary);
    return out;
}

DurableState::Resumed DurableState::adopt(ClaimTable &claims, store::Recovery taken) {
    Resumed out;
    store::Recovery *rec = &taken;
    std::erase_if(rec->blocked, [&](const store::ClaimRecord &c) { return claims.claimed({c.issue_id, c.stage}); });
    std::erase_if(rec->retries, [&](const store::PendingRetry &p) { return claims.claimed({p.claim.issue_id, p.claim.stage}); });
    std::erase_if(rec->interrupted_claims, [&](const store::ClaimRecord &c) { return claims.claimed({c.issue_id, c.stage}); });
    for (const auto &b : rec->blocked)
        claims.restore({b.issue_id, b.stage}, claim_of(b, ClaimState::blocked));
    for (const auto &p : rec->retries) {
        PairKey key{p.claim.issue_id, p.claim.stage};
        Claim c = claim_of(p.claim, ClaimState::retry_queued);
        c.due_in_sec = std::chrono::duration<double>(p.remaining).count();
        uint64_t token = claims.restore(key, c);
        out.retries.push_back({key, token, c.due_in_sec});
    }
    // Their processes died with the old host: a failure under the retry policy, counters kept.
    for (const auto &i : rec->interrupted_claims) {
        PairKey key{i.issue_id, i.stage};
        claims.restore(key, claim_of(i, ClaimState::running));
        auto d = claims.failed(key, kInterruptedReason);
        if (d && d->kind == Decision::retry) out.retries.push_back({key, d->token, d->delay_sec});
    }
    out.outcomes = std::move(rec->outcomes);
    out.schedules = std::move(rec->schedules);
    if (!rec->blocked.empty() || !rec->retries.empty() || !rec->interrupted_claims.empty() || !rec->interrupted_runs.empty())
        out.summary = rec->summary();
    return out;
}

void DurableState::run_started(const RunStart &run) {
    if (!store_) return;
    store::RunRecord r;
    r.run_id = run.run_id;
    r.issue_id = run.issue_id;
    r.stage = run.stage;
    r.agent = run.agent;
    r.attempt = run.attempt;
    r.session_file = run.session_file;
    r.started_at = run.started_at;
    r.outcome = store::RunOutcome::running;
    store_->record_run(r);
}

void DurableState::run_ended(const RunStart &run, const std::string &outcome, const std::string &error,
                             const json::object &snapshot, std::chrono::system_clock::time_point ended_at) {
    if (!store_) return;
    store::RunRecord r;
    r.run_id = run.run_id;
    r.issue_id = run.issue_id;
    r.stage = run.stage;
    r.agent = run.agent;
    r.attempt = run.attempt;
    r.session_file = run.session_file;
    r.started_at = run.started_at;
    r.ended_at = ended_at;
    r.outcome = outcome == "completed"        ? store::RunOutcome::succeeded
                : outcome == "failed"         ? store::RunOutcome::failed
                : outcome == "input_required" ? store::RunOutcome::input_required
                                              : store::RunOutcome::cancelled;
    r.error = error;
    if (const auto *sid = snapshot.if_contains("provider_session_id"); sid && sid->is_string())
        r.session_id = std::string(sid->as_string());
    if (const auto *t = snapshot.if_contains("tokens"); t && t->is_object()) {
        r.tokens_in = number(t->as_object(), "input");
        r.tokens_out = number(t->as_object(), "output");
        r.tokens_cache_read = number(t->as_object(), "cache_read");
    }
    if (const auto *c = snapshot.if_contains("cost_usd"); c && c->is_double() && c->get_double() > 0)
        r.cost_usd = c->get_double();
    r.duration_sec = std::chrono::duration<double>(ended_at - run.started_at).count();
    store_->record_run(r);
}

} // namespace vik::orchestrator
