#include "orchestrator/scheduler_surface.hpp"

#include "orchestrator/tracker_factory.hpp"
#include "util/ids_and_time.hpp"

namespace vik::orchestrator {

namespace {
std::string stamp(std::chrono::system_clock::time_point t) { return util::rfc3339_utc(t); }
} // namespace

RetryView SchedulerSurface::retry_view(const PairKey &key, const Claim &c) const {
    RetryView v;
    v.issue_id = key.first;
    v.stage = key.second;
    v.attempt = c.runs + 1;
    v.kind = c.retry_kind;
    v.last_error = c.last_error;
    if (auto due = act_.retry_due(key))
        v.due_at = stamp(p_.clock.wall_at(*due));
    else // the timer is being re-armed (a fetch runs): its planned delay from the transition
        v.due_at = stamp(c.since + std::chrono::milliseconds(seconds_to_ms(c.due_in_sec)));
    return v;
}

BlockedView SchedulerSurface::blocked_view(const PairKey &key, const Claim &c) const {
    return BlockedView{key.first, key.second, c.last_error, stamp(c.since), c.issue_state, c.question, c.awaiting_approval};
}

std::vector<RunningView> SchedulerSurface::running(const std::string *only) const {
    std::vector<RunningView> out;
    for (RunningView &v : p_.sessions.views()) {
        if (only && v.issue_id != *only) continue;
        if (const Claim *c = p_.claims.find({v.issue_id, v.stage})) {
            v.attempt = c->runs;
            v.retry_kind = c->retry_kind;
        }
        out.push_back(std::move(v));
    }
    return out;
}

SchedulerView SchedulerSurface::view() const {
    SchedulerView v;
    const SchedulerStatus &s = p_.status;
    v.generated_at = stamp(p_.clock.wall_now());
    v.started_at = stamp(s.started_at);
    v.workflow = p_.cfg->workflow_path.string();
    v.tracker = p_.intake.tracker_id();
    v.max_issue_concurrency = p_.cfg->max_issue_concurrency;
    if (s.last_intake_at) v.last_intake_at = stamp(*s.last_intake_at);
    if (s.next_intake_at) v.next_intake_at = stamp(*s.next_intake_at);
    v.last_intake_error = s.last_intake_error;
    v.stopping = s.stopping;
    v.running = running(nullptr);
    for (const auto &[key, c] : p_.claims.all()) {
        if (c.state == ClaimState::retry_queued) v.retrying.push_back(retry_view(key, c));
        if (c.state == ClaimState::blocked) v.blocked.push_back(blocked_view(key, c));
    }
    v.waiting = s.waiting;
    for (const auto &[agent, limit] : p_.sessions.rate_limits())
        v.rate_limits[agent] = limit;
    v.totals = p_.sessions.totals();
    v.totals.intake_cycles = s.intake_cycles;
    v.totals.intake_failures = s.intake_failures;
    int64_t cumulative = 0;
    for (size_t i = 0; i < SchedulerStatus::kIntakeDurationBounds.size(); ++i) {
        cumulative += s.intake_duration_counts[i];
        v.totals.intake_duration_le.emplace_back(SchedulerStatus::kIntakeDurationBounds[i], cumulative);
    }
    v.totals.intake_duration_sum_sec = s.intake_duration_sum_sec;
    return v;
}

bool SchedulerSurface::knows(const std::string &id) const {
    return p_.intake.newest(id) != nullptr || p_.claims.has_issue(id) || !p_.layout.session_files(id).empty();
}

std::optional<IssueView> SchedulerSurface::issue(const std::string &id) const {
    if (id.empty() || !knows(id)) return std::nullopt;
    IssueView v;
    v.id = id;
    if (const Issue *known = p_.intake.newest(id)) {
        v.title = known->title;
        v.state = known->state;
        if (const auto *u = known->fields.if_contains("url"); u && u->is_string()) v.url = std::string(u->as_string());
    }
    if (p_.layout.has_workspace(id))
        if (auto w = p_.layout.workspace(id)) v.workspace = w->string();
    v.running = running(&id);
    for (const auto &[key, c] : p_.claims.all()) {
        if (key.first != id) continue;
        if (c.state == ClaimState::retry_queued) v.retrying.push_back(retry_view(key, c));
        if (c.state == ClaimState::blocked) v.blocked.push_back(blocked_view(key, c));
    }
    for (const auto &f : p_.layout.session_files(id))
        v.session_files.push_back(f.string());
    return v;
}

std::expected<size_t, std::string> SchedulerSurface::retry(const std::string &id, const std::string &message) {
    if (id.empty()) return std::unexpected("an issue id is required");
    if (!knows(id)) return std::unexpected("issue '" + id + "' is not known to this host");
    return act_.retry(id, message);
}

std::expected<size_t, std::string> SchedulerSurface::cancel(const std::string &id) {
    if (id.empty()) return std::unexpected("an issue id is required");
    if (!knows(id)) return std::unexpected("issue '" + id + "' is not known to this host");
    return act_.cancel(id);
}

std::expected<size_t, std::string> SchedulerSurface::gate(const std::string &id, bool approve, const std::string &feedback) {
    if (id.empty()) return std::unexpected("an issue id is required");
    if (!knows(id)) return std::unexpected("issue '" + id + "' is not known to this host");
    return act_.gate(id, approve, feedback);
}

} // namespace vik::orchestrator
