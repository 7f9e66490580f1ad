#pragma once
// Session supervision: the agent sessions that are running, from start to the end of their
// record.
//
// Owns the runtime plugin instances and the agent profiles they are given; each running stage
// (StageRun): its session, its recorder (session/session_recorder.hpp, one file per session in
// the Layout), its overall timeout and its stall watchdog (the time of the last agent event,
// checked by one timer that is re-armed only when it fires, not per event); cancelling a session with a reason; and the one
// mapping from the runtime's final status and the cancel reason to an Outcome (outcome.hpp), reported to the owner once per
// started stage. A run stays listed after its session ended until the owner forgets it (after its after_run): until then it still
// holds its stage.
//
// Threading: the loop's thread. Runtime callbacks from other threads only post to the loop.

#include "orchestrator/change_feed.hpp"
#include "orchestrator/claims.hpp"
#include "orchestrator/durable_state.hpp"
#include "orchestrator/fault_guard.hpp"
#include "orchestrator/issue.hpp"
#include "orchestrator/live_config.hpp"
#include "orchestrator/outcome.hpp"
#include "orchestrator/scheduler_clock.hpp"
#include "plugins/instances.hpp"
#include "session/session_recorder.hpp"
#include "workflow/config.hpp"
#include "workspace/layout.hpp"

#include <boost/asio/io_context.hpp>

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace vik::orchestrator {

// The conversation a run is asked to continue: the agent profile that holds it and its id.
struct ConversationToResume {
    std::string agent, id;
};

// How a session ended, for the owner.
struct SessionEnd {
    SessionEnd() = default;
    SessionEnd(Outcome o, std::string why, bool with_after_run) : outcome(o), reason(std::move(why)), after_run(with_after_run) {}
    Outcome outcome = Outcome::failed;
    std::string reason;
    // Whether after_run follows: a session that completed or failed (vik: no after_run for a
    // cancelled session, nor for one that never got its record).
    bool after_run = false;
    ConversationUse conversation; // the agent conversation the run used (for the claim)
    std::string question;         // input_required: what the agent asked
    double not_before_sec = 0;    // a failure while rate limited: the retry waits for the reset
    bool review = false;          // the session was a reviewer's (a stage's agent gate), not the stage's run
    std::string gate_feedback;    // set by the owner: a reviewer's rejection, for the next run's prompt
};

// The longest a rate-limited failure's retry waits for the limit's reported reset.
inline constexpr double kMaxRateLimitWaitSec = 6 * 3600;

class SessionSupervisor {
  public:
    // Runs on the loop once per start(), when the session ended.
    using OnEnded = std::function<void(const PairKey &key, SessionEnd end)>;

    // Creates the runtime instances the profiles name; throws std::runtime_error naming the
    // runtime or plugin that could not start.
    SessionSupervisor(const LiveConfig &config, const plugins::Registry &registry, const workspace::Layout &layout,
                      boost::asio::io_context &io, SchedulerClock &clock, const FaultGuard &guard, ChangeFeed &feed,
                      DurableState &durable, std::string plugin_dirs, OnEnded on_ended);
    ~SessionSupervisor();

    // Starts the stage's agent session in `workdir`; `attempt` is the claim's run count (the
    // run's record keeps it). `resume_conversation`: the agent's conversation to continue (empty:
    // a fresh one), continued only when the profile the issue chooses now is still `agent`, the
    // profile that holds it (a label may have changed the choice since the prompt was made).
    // `stage` is the stage as the pair was dispatched (the config generation it started under).
    // `reviewer`, when given, makes the session a review of the stage's completed run (its agent
    // gate): that profile runs it, always in a fresh conversation, and its end is told with
    // SessionEnd::review set. The pair's earlier run must have been forgotten.
    void start(const Issue &issue, const std::filesystem::path &workdir, const workflow::Stage &stage, std::string prompt,
               int64_t attempt, const ConversationToResume &resume = {}, const std::optional<std::string> &reviewer = {});
    // Whether runs of the agent profile continue conversations (`resume: true` on a runtime whose
    // plugin can).
    bool resumes(const std::string &agent) const;
    // Takes the profiles and runtimes of `config` (a reload, before it adopts it). Throws
    // std::runtime_error naming a runtime that cannot start; nothing changes then.
    void configure(const workflow::Config &config, const plugins::Registry &registry);
    // The latest rate limit each agent profile's sessions reported: the event with `agent`,
    // `observed_at` and, when known, `reset_at` (RFC 3339).
    const std::map<std::string, boost::json::object> &rate_limits() const { return rate_limits_; }

    // Cancels a live session (not finished, not cancelled before); false when there was none.
    bool cancel(const PairKey &key, CancelReason why, const std::string &detail);
    // Cancels the live sessions of an issue; returns how many.
    size_t cancel_issue(const std::string &id, CancelReason why, const std::string &detail);
    void cancel_all(CancelReason why);

    // The run is done with (its after_run too): it no longer holds its stage.
    void forget(const PairKey &key);
    // Drops every run (the loop is gone); sessions are released.
    void clear();

    bool holds(const PairKey &key) const;     // listed, live or finishing
    bool finishing(const PairKey &key) const; // listed and its session ended
    bool empty() const { return runs_.empty(); }
    size_t size() const { return runs_.size(); }
    // Sessions not finished and not cancelled: what reconciliation judges.
    std::vector<PairKey> live() const;
    // Issues with a session not finished.
    std::set<std::string> unfinished_issues() const;
    // The runs listed now, as operator surfaces see them (attempt and retry_kind are the
    // claim's: the owner fills them in).
    std::vector<RunningView> views() const;
    // Session counters and token sums since the host started (intake fields left 0).
    const TotalsView &totals() const { return totals_; }
    // `run --strict`: an event outside the vocabulary fails its session (default: a warning once
    // per session).
    void set_strict_events(bool strict) { strict_events_ = strict; }
    // Whether a plugin is one of the agent runtimes (a control request from its child is an agent's).
    bool is_runtime_plugin(const std::string &plugin_id) const;

  private:
    struct StageRun;
    void on_event(StageRun &run, std::string_view event);
    void invalid_event(StageRun &run, const std::string &problem);
    void on_finish(const std::shared_ptr<StageRun> &run, int32_t status, const std::string &detail);
    void arm_stall(const std::shared_ptr<StageRun> &run, std::chrono::milliseconds after);
    RunningView view_of(const StageRun &run) const;
    void count_finished(const std::string &state, const boost::json::object &snapshot);
    bool cancel_run(StageRun &run, CancelReason why, const std::string &detail);
    std::set<std::string> withheld_secrets(const workflow::AgentProfile &profile) const;

    const LiveConfig &cfg_;
    const workspace::Layout &layout_;
    boost::asio::io_context &io_;
    SchedulerClock &clock_;
    const FaultGuard &guard_;
    ChangeFeed &feed_;
    DurableState &durable_;
    std::string plugin_dirs_;
    OnEnded on_ended_;
    std::map<std::string, std::unique_ptr<plugins::RuntimeInstance>> runtimes_; // by runtime name
    std::map<std::string, std::string> profile_json_;                           // by agent name
    std::set<std::string> resuming_agents_;                  // profiles with resume: true on a runtime that can
    std::map<std::string, boost::json::object> rate_limits_; // by agent name
    void note_rate_limit(StageRun &run);
    std::map<PairKey, std::shared_ptr<StageRun>> runs_;
    TotalsView totals_;
    bool strict_events_ = false;
};

} // namespace vik::orchestrator
