#include "orchestrator/operator_surface.hpp"

#include <boost/json.hpp>

namespace vik::orchestrator {

namespace json = boost::json;

namespace {
template <class T> json::array array_of(const std::vector<T> &items) {
    json::array a;
    a.reserve(items.size());
    for (const auto &i : items)
        a.push_back(to_json(i));
    return a;
}
json::object intake_histogram(const TotalsView &v) {
    json::array buckets;
    for (const auto &[le, n] : v.intake_duration_le)
        buckets.push_back(json::array{le, n});
    return json::object{{"buckets", std::move(buckets)}, {"sum", v.intake_duration_sum_sec}};
}

} // namespace

json::object to_json(const RunningView &v) {
    return json::object{{"issue_id", v.issue_id},
                        {"issue_title", v.issue_title},
                        {"issue_state", v.issue_state},
                        {"stage", v.stage},
                        {"agent", v.agent},
                        {"attempt", v.attempt},
                        {"retry_kind", v.retry_kind},
                        {"started_at", v.started_at},
                        {"session_file", v.session_file},
                        {"finishing", v.finishing},
                        {"review", v.review},
                        {"session", v.session}};
}

json::object to_json(const RetryView &v) {
    return json::object{{"issue_id", v.issue_id}, {"stage", v.stage},   {"attempt", v.attempt},
                        {"kind", v.kind},         {"due_at", v.due_at}, {"last_error", v.last_error}};
}

json::object to_json(const BlockedView &v) {
    return json::object{{"issue_id", v.issue_id},
                        {"stage", v.stage},
                        {"reason", v.reason},
                        {"since", v.since},
                        {"issue_state", v.issue_state},
                        {"input_required", v.question.empty() ? json::value(nullptr) : json::value(v.question)},
                        {"awaiting_approval", v.awaiting_approval}};
}

json::object to_json(const WaitingView &v) {
    return json::object{
        {"issue_id", v.issue_id}, {"issue_title", v.issue_title}, {"issue_state", v.issue_state}, {"reason", v.reason}};
}

json::object to_json(const TotalsView &v) {
    return json::object{{"sessions_started", v.sessions_started},
                        {"sessions_completed", v.sessions_completed},
                        {"sessions_failed", v.sessions_failed},
                        {"sessions_cancelled", v.sessions_cancelled},
                        {"tokens_input", v.tokens_input},
                        {"tokens_output", v.tokens_output},
                        {"tokens_cache_read", v.tokens_cache_read},
                        {"cost_usd", v.cost_usd},
                        {"intake_cycles", v.intake_cycles},
                        {"intake_failures", v.intake_failures},
                        {"intake_duration_seconds", intake_histogram(v)}};
}

json::object to_json(const SchedulerView &v) {
    auto opt = [](const std::string &s) -> json::value { return s.empty() ? json::value(nullptr) : json::value(s); };
    return json::object{{"generated_at", v.generated_at},
                        {"started_at", v.started_at},
                        {"workflow", v.workflow},
                        {"tracker", v.tracker},
                        {"max_issue_concurrency", v.max_issue_concurrency},
                        {"last_intake_at", opt(v.last_intake_at)},
                        {"next_intake_at", opt(v.next_intake_at)},
                        {"last_intake_error", opt(v.last_intake_error)},
                        {"stopping", v.stopping},
                        {"running", array_of(v.running)},
                        {"retrying", array_of(v.retrying)},
                        {"blocked", array_of(v.blocked)},
                        {"waiting", array_of(v.waiting)},
                        {"totals", to_json(v.totals)},
                        {"rate_limits", v.rate_limits}};
}

json::object to_json(const IssueView &v) {
    json::array files;
    for (const auto &f : v.session_files)
        files.push_back(json::value(f));
    return json::object{{"id", v.id},
                        {"title", v.title},
                        {"state", v.state},
                        {"url", v.url},
                        {"workspace", v.workspace},
                        {"running", array_of(v.running)},
                        {"retrying", array_of(v.retrying)},
                        {"blocked", array_of(v.blocked)},
                        {"session_files", std::move(files)}};
}

json::object to_json(const Change &c) {
    return json::object{{"kind", c.kind}, {"issue_id", c.issue_id}, {"stage", c.stage}, {"at", c.at}, {"data", c.data}};
}

} // namespace vik::orchestrator
