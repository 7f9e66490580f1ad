#pragma once
// The durable store the scheduler talks to: claim transitions, runs, restart recovery, history
// and stats. An interface, so a second backend (PostgreSQL for several hosts) can implement it
// without touching scheduling; `SqliteStore` (sqlite_store.hpp) is the embedded default.
//
// Threading contract, for every implementation:
// - Writes (`record_claim`, `release_claim`, `release_issue`, `record_run`) are called from the
//   scheduler's loop thread and never wait on I/O: they queue the record and return. Records are
//   applied in the order they were given. A write that fails (disk full, database locked) is
//   kept and retried; the failure is logged once and shown by `write_error()`. Nothing is dropped.
// - `flush` waits (up to its timeout) until every record queued before the call is durable. For
//   tests and shutdown; the loop thread does not call it.
// - Reads (`recover`, `history`, `stats`) are synchronous: for start-up and operator commands.
//   They see durable records only (call `flush` first to read your own writes).
// - Every method may be called from any thread; an implementation serialises internally.
//
// Times are wall-clock (system_clock): they must mean the same after a restart.

#include <chrono>
#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <vector>

namespace vik::store {

using WallTime = std::chrono::system_clock::time_point;

struct StoreError {
    enum class Kind {
        locked,       // another process holds the database; try again or stop that process
        corrupt,      // the file is not a database or fails its integrity check
        newer_schema, // written by a newer vik-host
        io,           // any other failure to read or write (disk full, permissions)
        timeout,      // `flush` did not finish in time (the records are still queued)
    };
    Kind kind = Kind::io;
    std::string message; // names the database path and what to do
};

// The persisted mirror of orchestrator::ClaimState.
enum class ClaimState { running, retry_queued, blocked };
const char *claim_state_name(ClaimState s);

// One (issue, stage) claim as it stands after a transition. An upsert: the newest record of a
// pair replaces the previous one. Released pairs are deleted (`release_claim`).
struct ClaimRecord {
    std::string issue_id;
    std::string stage;
    ClaimState state = ClaimState::running;
    int64_t failures = 0;             // failed attempts in a row
    int64_t continuations = 0;        // clean finishes in a row
    int64_t runs = 0;                 // sessions started for this claim (the prompt's `attempt`)
    std::string retry_kind = "first"; // first | continuation | failure | operator
    std::string last_error;
    std::string issue_state;            // the issue's state when claimed
    std::optional<WallTime> due_at;     // retry_queued: when the retry timer fires
    std::string blocked_reason;         // blocked: why
    std::optional<WallTime> blocked_at; // blocked: since when
    WallTime updated_at{};              // when this transition happened
    // The agent conversation the pair's runs continue (empty: none), its profile and turns.
    std::string conversation_id, conversation_agent;
    int64_t conversation_turns = 0;
    std::string operator_message; // for the next run's prompt
    std::string question;         // a parked pair: what the agent asked
    // on_fail routing: the stage the issue was sent to (a blocked claim waiting for its issue to
    // come back), the failure that sent it, and the routes taken.
    std::string routed_to, route_reason;
    int64_t routes = 0;
    // A human gate: the blocked claim's completed run waits for `gate approve|reject`; the
    // feedback of a rejection is for the next run's prompt.
    bool awaiting_approval = false;
    std::string gate_feedback;
    int64_t fence = 0; // the lease generation the write was queued under (leases.hpp); 0: none
};

// How a run ended. `running` is written at start; recovery turns a `running` left behind by a
// host that died into `interrupted`.
// `input_required`: the agent stopped to ask a human; its pair is parked.
enum class RunOutcome { running, succeeded, failed, cancelled, interrupted, input_required };
const char *run_outcome_name(RunOutcome o);
std::optional<RunOutcome> parse_run_outcome(const std::string &name);

// One run of a stage for an issue. An upsert keyed by `run_id` (the caller's unique id, e.g. the
// session's uuidv7): record it at start with outcome `running`, and again when it ends.
struct RunRecord {
    std::string run_id;
    std::string issue_id;
    std::string stage;
    std::string agent; // the agent profile
    int64_t attempt = 1;
    std::string session_id; // the provider's session id, when known
    std::string session_file;
    WallTime started_at{};
    std::optional<WallTime> ended_at;
    RunOutcome outcome = RunOutcome::running;
    std::string error;
    std::optional<int> exit_status; // the agent process's exit code, when it exited
    std::optional<int> signal;      // the signal that ended it, when one did
    int64_t tokens_in = 0;
    int64_t tokens_out = 0;
    int64_t tokens_cache_read = 0;
    std::optional<double> cost_usd; // when the agent reports one
    double duration_sec = 0;
    int64_t fence = 0; // as ClaimRecord::fence
};

// A stage's structured outcome (docs/scheduling.md, "Structured outcomes"): the newest valid one
// per issue and stage, as JSON text.
struct OutcomeRecord {
    std::string issue_id;
    std::string stage;
    std::string json;
    WallTime recorded_at{};
    int64_t fence = 0; // as ClaimRecord::fence
};

// A schedule's newest firing (docs/scheduling.md, "Schedules"): what the missed-run policy
// compares with after downtime.
struct ScheduleRecord {
    std::string name;
    WallTime last_fired{};
};

// A queued retry as recovered: the claim and the part of its delay still to wait.
struct PendingRetry {
    ClaimRecord claim;
    std::chrono::milliseconds remaining{0}; // 0 when it was already due
};

// Everything the scheduler needs to resume after a restart.
struct Recovery {
    // Claims that were running when the host died: their processes are gone. The scheduler
    // treats each as a failure ("interrupted") under the retry policy, with `runs` kept.
    std::vector<ClaimRecord> interrupted_claims;
    // Runs that were `running`, now recorded as `interrupted` (by `recover`).
    std::vector<RunRecord> interrupted_runs;
    std::vector<PendingRetry> retries;
    std::vector<ClaimRecord> blocked;
    std::vector<OutcomeRecord> outcomes;   // each issue's newest outcome per stage
    std::vector<ScheduleRecord> schedules; // each schedule's newest firing
    // Sorts a claim as the store kept it: running -> interrupted_claims, blocked -> blocked,
    // retry_queued -> retries with what is left of its delay at `now` (none when overdue).
    void add(ClaimRecord claim, WallTime now);
    // One line for the start-up log: what was resumed.
    std::string summary() const;
};

struct HistoryQuery {
    std::optional<std::string> issue_id; // only this issue's runs
    size_t limit = 100;                  // newest first
};

struct Totals {
    int64_t runs = 0;
    int64_t successes = 0; // succeeded
    int64_t failures = 0;  // failed or interrupted (cancelled counts in neither)
    int64_t tokens_in = 0;
    int64_t tokens_out = 0;
    int64_t tokens_cache_read = 0;
    double cost_usd = 0; // sum of the costs reported
    double seconds = 0;  // sum of durations
};

struct GroupTotals {
    std::string key; // the issue id, stage or agent profile
    Totals totals;
};

struct Stats {
    Totals overall;
    std::vector<GroupTotals> per_issue; // each list ordered by key
    std::vector<GroupTotals> per_stage;
    std::vector<GroupTotals> per_agent;
};

class Leases;

class Store {
  public:
    virtual ~Store() = default;

    // --- writes: queued, in order, never blocking on I/O -------------------------------------
    virtual void record_claim(const ClaimRecord &claim) = 0;
    virtual void release_claim(const std::string &issue_id, const std::string &stage) = 0;
    virtual void release_issue(const std::string &issue_id) = 0;
    virtual void record_run(const RunRecord &run) = 0;
    // An upsert per (issue, stage); forget_outcomes drops an issue's (it is done).
    virtual void record_outcome(const OutcomeRecord &outcome) = 0;
    virtual void forget_outcomes(const std::string &issue_id) = 0;
    // An upsert per schedule name.
    virtual void record_schedule(const ScheduleRecord &fired) = 0;

    // Named transitions over `record_claim` / `release_claim`, one per ClaimTable edge.
    void claim_running(ClaimRecord claim, WallTime at);
    void claim_retry_queued(ClaimRecord claim, WallTime due_at, WallTime at);
    void claim_blocked(ClaimRecord claim, const std::string &reason, WallTime at);
    void claim_released(const std::string &issue_id, const std::string &stage) { release_claim(issue_id, stage); }

    // Waits until every record queued before the call is durable.
    virtual std::expected<void, StoreError> flush(std::chrono::milliseconds timeout) = 0;
    // The current write failure (records kept and being retried), or nothing when healthy.
    virtual std::optional<std::string> write_error() const = 0;

    // --- reads: synchronous ------------------------------------------------------------------
    // Loads the claims and marks runs left `running` as `interrupted` (at `now`). Call once at
    // start-up, before the scheduler writes.
    virtual std::expected<Recovery, StoreError> recover(WallTime now) = 0;
    virtual std::expected<std::vector<RunRecord>, StoreError> history(const HistoryQuery &query) = 0;
    virtual std::expected<Stats, StoreError> stats() = 0;
    // The claims as they stand, changing nothing (`run --dry-run`).
    virtual std::expected<std::vector<ClaimRecord>, StoreError> claims() = 0;

    // Where the data lives (a path or a connection description), for messages and state.json.
    virtual std::string location() const = 0;

    // The leases of a store several hosts share (leases.hpp); null for a store of one host.
    virtual Leases *leases() { return nullptr; }
};

} // namespace vik::store
