#include "http/metrics.hpp"

#include "orchestrator/operator_surface.hpp"
#include "store/store.hpp"

#include <cmath>
#include <cstdio>
#include <ctime>
#include <map>

namespace vik::http {

namespace {

// Label values escape backslash, double quote and line feed (the exposition format's rule).
std::string label_value(const std::string &v) {
    std::string out;
    for (char c : v) {
        if (c == '\\')
            out += "\\\\";
        else if (c == '"')
            out += "\\\"";
        else if (c == '\n')
            out += "\\n";
        else
            out.push_back(c);
    }
    return out;
}

std::string number(double v) {
    if (std::isnan(v)) return "NaN";
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.17g", v);
    return buf;
}

class Exposition {
  public:
    void family(const std::string &name, const std::string &type, const std::string &help) {
        out_ += "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
    }
    void sample(const std::string &name, double value, const std::string &labels = "") {
        out_ += name + (labels.empty() ? "" : "{" + labels + "}") + " " + number(value) + "\n";
    }
    std::string take() { return std::move(out_); }

  private:
    std::string out_;
};

int64_t token(const boost::json::object &session, const char *key) {
    auto it = session.find("tokens");
    if (it == session.end() || !it->value().is_object()) return 0;
    const auto &t = it->value().get_object();
    auto v = t.find(key);
    if (v == t.end()) return 0;
    if (v->value().is_int64()) return v->value().get_int64();
    if (v->value().is_uint64()) return static_cast<int64_t>(v->value().get_uint64());
    return 0;
}

} // namespace

std::string render_metrics(const orchestrator::SchedulerView &view, const HttpStats &http,
                           std::chrono::system_clock::time_point now) {
    Exposition e;
    const double now_s = std::chrono::duration<double>(now.time_since_epoch()).count();

    e.family("vik_sessions_running", "gauge", "Stages in a session now, by agent profile.");
    std::map<std::string, int> by_agent;
    for (const auto &r : view.running)
        by_agent[r.agent]++;
    for (const auto &[agent, n] : by_agent)
        e.sample("vik_sessions_running", n, "agent=\"" + label_value(agent) + "\"");
    if (by_agent.empty()) e.sample("vik_sessions_running", 0, "agent=\"\"");
    e.family("vik_sessions_queued", "gauge", "Claims waiting for their retry timer (continuations and failure retries).");
    e.sample("vik_sessions_queued", static_cast<double>(view.retrying.size()));
    e.family("vik_sessions_blocked", "gauge", "Claims blocked until the issue's state changes or an operator retries.");
    e.sample("vik_sessions_blocked", static_cast<double>(view.blocked.size()));
    e.family("vik_issue_concurrency_limit", "gauge", "loop.max_issue_concurrency.");
    e.sample("vik_issue_concurrency_limit", static_cast<double>(view.max_issue_concurrency));
    e.family("vik_stopping", "gauge", "1 while the host stops.");
    e.sample("vik_stopping", view.stopping ? 1 : 0);

    const auto &t = view.totals;
    e.family("vik_sessions_started_total", "counter", "Sessions started since the host started.");
    e.sample("vik_sessions_started_total", static_cast<double>(t.sessions_started));
    e.family("vik_runs_total", "counter", "Finished sessions by outcome since the host started.");
    e.sample("vik_runs_total", static_cast<double>(t.sessions_completed), "outcome=\"completed\"");
    e.sample("vik_runs_total", static_cast<double>(t.sessions_failed), "outcome=\"failed\"");
    e.sample("vik_runs_total", static_cast<double>(t.sessions_cancelled), "outcome=\"cancelled\"");
    e.family("vik_tokens_total", "counter", "Tokens reported by finished sessions since the host started.");
    e.sample("vik_tokens_total", static_cast<double>(t.tokens_input), "kind=\"input\"");
    e.sample("vik_tokens_total", static_cast<double>(t.tokens_output), "kind=\"output\"");
    e.sample("vik_tokens_total", static_cast<double>(t.tokens_cache_read), "kind=\"cache_read\"");
    e.family("vik_cost_usd_total", "counter", "Cost in US dollars reported by agents since the host started.");
    e.sample("vik_cost_usd_total", t.cost_usd);
    e.family("vik_intake_cycles_total", "counter", "Intake cycles (tracker pulls) since the host started.");
    e.sample("vik_intake_cycles_total", static_cast<double>(t.intake_cycles));
    e.family("vik_intake_failures_total", "counter", "Intake cycles whose pull failed (tracker errors).");
    e.sample("vik_intake_failures_total", static_cast<double>(t.intake_failures));
    e.family("vik_intake_duration_seconds", "histogram", "How long intake cycles took, from the pull's start to its processing.");
    for (const auto &[le, n] : t.intake_duration_le) {
        char bound[32];
        std::snprintf(bound, sizeof bound, "%g", le); // 0.05, 2.5: the bounds as written
        e.sample("vik_intake_duration_seconds_bucket", static_cast<double>(n), std::string("le=\"") + bound + "\"");
    }
    e.sample("vik_intake_duration_seconds_bucket", static_cast<double>(t.intake_cycles), "le=\"+Inf\"");
    e.sample("vik_intake_duration_seconds_sum", t.intake_duration_sum_sec);
    e.sample("vik_intake_duration_seconds_count", static_cast<double>(t.intake_cycles));

    // Live sessions: tokens so far, and how long ago each last reported (the stall detector's
    // input; a growing age is an agent gone quiet or a loop falling behind).
    e.family("vik_session_tokens", "gauge", "Tokens of the sessions running now, by agent profile.");
    std::map<std::string, int64_t> live_tokens;
    double oldest_event = 0;
    for (const auto &r : view.running) {
        // The recorder's snapshot sums input and output; a "total" is used where one is given.
        int64_t total = token(r.session, "total");
        live_tokens[r.agent] += total ? total : token(r.session, "input") + token(r.session, "output");
        if (auto it = r.session.find("last_event_at"); it != r.session.end() && it->value().is_string()) {
            double at = rfc3339_seconds(std::string(it->value().get_string()));
            if (at > 0) oldest_event = std::max(oldest_event, now_s - at);
        }
    }
    for (const auto &[agent, n] : live_tokens)
        e.sample("vik_session_tokens", static_cast<double>(n), "agent=\"" + label_value(agent) + "\"");
    if (live_tokens.empty()) e.sample("vik_session_tokens", 0, "agent=\"\"");
    e.family("vik_session_event_age_seconds", "gauge", "Seconds since the quietest running session's last event.");
    e.sample("vik_session_event_age_seconds", std::max(0.0, oldest_event));
    if (double last = rfc3339_seconds(view.last_intake_at); last > 0) {
        e.family("vik_last_intake_timestamp_seconds", "gauge", "When the last intake cycle ended (Unix time).");
        e.sample("vik_last_intake_timestamp_seconds", last);
    }
    if (double started = rfc3339_seconds(view.started_at); started > 0) {
        e.family("vik_start_time_seconds", "gauge", "When the host started (Unix time).");
        e.sample("vik_start_time_seconds", started);
    }

    e.family("vik_http_requests_total", "counter", "HTTP requests answered, by route pattern and status code.");
    for (const auto &[key, n] : http.requests)
        e.sample("vik_http_requests_total", static_cast<double>(n),
                 "route=\"" + label_value(key.first) + "\",code=\"" + std::to_string(key.second) + "\"");
    e.family("vik_http_connections_refused_total", "counter", "Connections closed at once: the connection cap was reached.");
    e.sample("vik_http_connections_refused_total", static_cast<double>(http.connections_refused));
    e.family("vik_http_streams_dropped_total", "counter", "Event streams cut off because the client read too slowly.");
    e.sample("vik_http_streams_dropped_total", static_cast<double>(http.streams_dropped));
    e.family("vik_http_open_connections", "gauge", "HTTP connections open now.");
    e.sample("vik_http_open_connections", static_cast<double>(http.open_connections));
    e.family("vik_http_open_streams", "gauge", "Event streams open now.");
    e.sample("vik_http_open_streams", static_cast<double>(http.open_streams));
    return e.take();
}

std::string render_store_metrics(const store::Stats &stats) {
    Exposition e;
    e.family("vik_agent_runs_total", "counter", "Runs on record by agent profile and result (durable store).");
    for (const auto &g : stats.per_agent) {
        std::string a = "agent=\"" + label_value(g.key) + "\"";
        e.sample("vik_agent_runs_total", static_cast<double>(g.totals.successes), a + ",result=\"succeeded\"");
        e.sample("vik_agent_runs_total", static_cast<double>(g.totals.failures), a + ",result=\"failed\"");
        e.sample("vik_agent_runs_total", static_cast<double>(g.totals.runs - g.totals.successes - g.totals.failures),
                 a + ",result=\"other\"");
    }
    e.family("vik_agent_tokens_total", "counter", "Tokens on record by agent profile (durable store).");
    for (const auto &g : stats.per_agent) {
        std::string a = "agent=\"" + label_value(g.key) + "\"";
        e.sample("vik_agent_tokens_total", static_cast<double>(g.totals.tokens_in), a + ",kind=\"input\"");
        e.sample("vik_agent_tokens_total", static_cast<double>(g.totals.tokens_out), a + ",kind=\"output\"");
        e.sample("vik_agent_tokens_total", static_cast<double>(g.totals.tokens_cache_read), a + ",kind=\"cache_read\"");
    }
    e.family("vik_agent_cost_usd_total", "counter", "Cost in US dollars on record by agent profile (durable store).");
    for (const auto &g : stats.per_agent)
        e.sample("vik_agent_cost_usd_total", g.totals.cost_usd, "agent=\"" + label_value(g.key) + "\"");
    e.family("vik_agent_session_seconds_total", "counter", "Session time on record by agent profile (durable store).");
    for (const auto &g : stats.per_agent)
        e.sample("vik_agent_session_seconds_total", g.totals.seconds, "agent=\"" + label_value(g.key) + "\"");
    return e.take();
}

} // namespace vik::http
