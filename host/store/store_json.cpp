#include "store/store_json.hpp"

#include "util/ids_and_time.hpp"

#include <boost/json.hpp>

namespace vik::store {

namespace json = boost::json;

namespace {

std::string when(const std::optional<WallTime> &t) { return t ? util::rfc3339_utc(*t) : std::string(); }

} // namespace

json::object to_json(const RunRecord &r) {
    auto opt_int = [](const std::optional<int> &v) { return v ? json::value(*v) : json::value(nullptr); };
    return json::object{{"run_id", r.run_id},
                        {"issue_id", r.issue_id},
                        {"stage", r.stage},
                        {"agent", r.agent},
                        {"attempt", r.attempt},
                        {"session_id", r.session_id},
                        {"session_file", r.session_file},
                        {"started_at", util::rfc3339_utc(r.started_at)},
                        {"ended_at", r.ended_at ? json::value(when(r.ended_at)) : json::value(nullptr)},
                        {"outcome", run_outcome_name(r.outcome)},
                        {"error", r.error},
                        {"exit_status", opt_int(r.exit_status)},
                        {"signal", opt_int(r.signal)},
                        {"tokens_in", r.tokens_in},
                        {"tokens_out", r.tokens_out},
                        {"tokens_cache_read", r.tokens_cache_read},
                        {"cost_usd", r.cost_usd ? json::value(*r.cost_usd) : json::value(nullptr)},
                        {"duration_sec", r.duration_sec}};
}

json::object to_json(const Totals &t) {
    return json::object{{"runs", t.runs},           {"successes", t.successes},   {"failures", t.failures},
                        {"tokens_in", t.tokens_in}, {"tokens_out", t.tokens_out}, {"tokens_cache_read", t.tokens_cache_read},
                        {"cost_usd", t.cost_usd},   {"seconds", t.seconds}};
}

json::object to_json(const Stats &st) {
    auto groups = [](const std::vector<GroupTotals> &g) {
        json::array a;
        for (const auto &x : g) {
            json::object o = to_json(x.totals);
            o.emplace("key", x.key);
            a.push_back(std::move(o));
        }
        return a;
    };
    return json::object{{"overall", to_json(st.overall)},
                        {"per_issue", groups(st.per_issue)},
                        {"per_stage", groups(st.per_stage)},
                        {"per_agent", groups(st.per_agent)}};
}

json::object cluster_json(const std::string &this_host, const std::vector<HostRecord> &hosts,
                          const std::vector<LeaseRecord> &leases) {
    json::array h, l;
    for (const auto &x : hosts)
        h.push_back(json::object{{"host_id", x.host_id},
                                 {"address", x.address},
                                 {"pid", x.pid},
                                 {"running", x.running},
                                 {"heartbeat_age_sec", x.heartbeat_age},
                                 {"started_at", util::rfc3339_utc(x.started_at)}});
    for (const auto &x : leases)
        l.push_back(json::object{{"issue_id", x.issue_id},
                                 {"stage", x.stage},
                                 {"host_id", x.host_id},
                                 {"generation", x.generation},
                                 {"expires_in_sec", x.expires_in}});
    return json::object{{"this_host", this_host}, {"hosts", std::move(h)}, {"leases", std::move(l)}};
}

} // namespace vik::store
