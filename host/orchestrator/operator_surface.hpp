#pragma once
// What operator surfaces (the HTTP API, the dashboard, /metrics, notifications) may see of the
// scheduler and ask of it. The scheduler implements it (Orchestrator::surface()); a surface
// never reaches into the claim table or the sessions itself.
//
// Threading: every member is called on the loop's thread (the io_context the orchestrator runs),
// and listeners are called there too. A surface that serves clients on that loop (Beast on the
// same io_context) needs no locking; anything on another thread posts to the loop first.
//
// Times are wall-clock RFC 3339 UTC strings ("2026-11-23T13:45:01.123Z") so that they mean the
// same to a browser, a log reader and after a restart.

#include <boost/json/object.hpp>

#include <cstdint>
#include <expected>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace vik::orchestrator {

// A stage in a session now (or finishing: its after_run runs).
struct RunningView {
    std::string issue_id;
    std::string issue_title;
    std::string issue_state;
    std::string stage;
    std::string agent;        // the stage's agent profile
    int64_t attempt = 1;      // the prompt's `attempt`
    std::string retry_kind;   // first | continuation | failure | operator
    std::string started_at;   // RFC 3339
    std::string session_file; // absolute path of its JSONL record
    bool finishing = false;   // the session ended, after_run runs
    bool review = false;      // a reviewer's session (the stage's agent gate), not the stage's run
    // The recorder's live snapshot (vik-compat §6): session_id, state, last_event_at,
    // last_message, tokens {input, output, cache_read, total}, rate_limits, ...
    boost::json::object session;
};

// A claim waiting for its retry timer.
struct RetryView {
    std::string issue_id;
    std::string stage;
    int64_t attempt = 1; // the attempt the retry will be
    std::string kind;    // continuation | failure | operator
    std::string due_at;  // RFC 3339
    std::string last_error;
};

// A claim that waits for a state change or an operator.
struct BlockedView {
    std::string issue_id;
    std::string stage;
    std::string reason;
    std::string since;              // RFC 3339
    std::string issue_state;        // the state whose change clears the block
    std::string question;           // parked: what the agent asked (empty for other blocks)
    bool awaiting_approval = false; // a human gate: answered by approve or reject, not by a state change
};

// An issue with a stage it could run now that waits for capacity (a slot, a per-state limit) or
// for its blockers, as of the last dispatch.
struct WaitingView {
    std::string issue_id;
    std::string issue_title;
    std::string issue_state;
    std::string reason; // "no free slot (loop.max_issue_concurrency = 2)", ...
};

// Counters since the host started (the durable store keeps totals across restarts).
struct TotalsView {
    int64_t sessions_started = 0;
    int64_t sessions_completed = 0;
    int64_t sessions_failed = 0;
    int64_t sessions_cancelled = 0;
    int64_t tokens_input = 0;
    int64_t tokens_output = 0;
    int64_t tokens_cache_read = 0;
    double cost_usd = 0; // where agents report a cost
    int64_t intake_cycles = 0;
    int64_t intake_failures = 0;
    // How long pulls took (start to processed), as a cumulative histogram: (upper bound in
    // seconds, pulls that took at most that); the +Inf bucket is intake_cycles.
    std::vector<std::pair<double, int64_t>> intake_duration_le;
    double intake_duration_sum_sec = 0;
};

struct SchedulerView {
    std::string generated_at; // RFC 3339
    std::string started_at;   // when the host started
    std::string workflow;     // the workflow file
    std::string tracker;      // the tracker plugin's id
    int64_t max_issue_concurrency = 0;
    std::string last_intake_at;    // RFC 3339, empty before the first pull
    std::string next_intake_at;    // RFC 3339, empty while a pull runs or after max_iterations
    std::string last_intake_error; // empty when the last pull succeeded
    bool stopping = false;
    std::vector<RunningView> running;
    std::vector<RetryView> retrying;
    std::vector<BlockedView> blocked;
    std::vector<WaitingView> waiting; // as of the last intake, in dispatch order
    TotalsView totals;
    // The latest rate limit each agent profile's sessions reported (the event, with agent,
    // observed_at and reset_at when known), by profile name.
    boost::json::object rate_limits;
};

// One issue as the host knows it.
struct IssueView {
    std::string id;
    std::string title;
    std::string state;
    std::string url;
    std::string workspace; // empty when it has none
    std::vector<RunningView> running;
    std::vector<RetryView> retrying;
    std::vector<BlockedView> blocked;
    // Session files of this issue, newest first (absolute paths), finished ones included.
    std::vector<std::string> session_files;
};

// A change, pushed to listeners as it happens. `kind` is one of:
//   intake            a pull was processed (data: {count, error (null when it succeeded),
//                     duration_ms: from the pull's start to its processing})
//   session_started   (issue_id, stage; data: the RunningView as JSON)
//   session_event     one agent event of a running session (data: the event as recorded)
//   session_ended     (data: {outcome, reason})
//   retry_queued      (data: the RetryView as JSON)
//   blocked           (data: the BlockedView as JSON)
//   released          a claim ended with nothing to follow
//   operator          an operator's retry or cancel (data: {action, count})
//   stopping          the host begins to stop
struct Change {
    std::string kind;
    std::string issue_id; // empty for host-wide changes
    std::string stage;
    std::string at; // RFC 3339
    boost::json::object data;
};

class OperatorSurface {
  public:
    virtual ~OperatorSurface() = default;

    virtual SchedulerView view() const = 0;
    // nullopt when the host knows nothing of the issue.
    virtual std::optional<IssueView> issue(const std::string &id) const = 0;

    // Intake now instead of after idle_sec (a pull in flight is not doubled). False while
    // stopping or after max_iterations.
    virtual bool refresh() = 0;
    // The operator's `issue retry` / `issue cancel`: how many stages were affected, or an error
    // message for the client (unknown issue, nothing to do is 0, not an error). A retry's
    // `message` (may be empty) reaches the next prompt as `operator_message`.
    virtual std::expected<size_t, std::string> retry(const std::string &id, const std::string &message) = 0;
    virtual std::expected<size_t, std::string> cancel(const std::string &id) = 0;
    // A human's verdict on the issue's stages awaiting approval (`vik-host gate approve|reject`):
    // how many it answered, or why none (none awaits, unknown issue). A rejection's `feedback`
    // reaches the stage's next prompt as `gate_feedback`.
    virtual std::expected<size_t, std::string> gate(const std::string &id, bool approve, const std::string &feedback) = 0;

    using Listener = std::function<void(const Change &)>;
    // Listeners are called on the loop for every change; session_event changes only reach
    // listeners that asked for them (they are the bulk). Returns a handle for unsubscribe.
    virtual uint64_t subscribe(Listener listener, bool with_session_events) = 0;
    virtual void unsubscribe(uint64_t handle) = 0;
};

// The JSON shapes of the views, shared by every surface (docs/http-api.md documents them).
boost::json::object to_json(const RunningView &v);
boost::json::object to_json(const RetryView &v);
boost::json::object to_json(const BlockedView &v);
boost::json::object to_json(const WaitingView &v);
boost::json::object to_json(const TotalsView &v);
boost::json::object to_json(const SchedulerView &v);
boost::json::object to_json(const IssueView &v);
boost::json::object to_json(const Change &c);

} // namespace vik::orchestrator
