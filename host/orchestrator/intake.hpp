#pragma once
// Intake: everything the host learns from, and writes to, the tracker.
//
// Owns the tracker plugin instance and its calls (pull, fetch by id, set-state, comment), each
// run on a worker with the tracker's deadline (budgets.hpp); parsing their answers into issues
// (issue.hpp); the newest known state of each issue with the time it was observed (the "stale
// observation" rule below); and reconciliation: which running sessions must stop because their
// issue moved, closed or vanished. It decides; the scheduler acts on the decisions.
//
// Observation times: for a pull or a fetch, the time it STARTED (the tracker may answer with
// what it read then); for a state the host wrote itself (`vik-host issue set-state`), the time
// the write was done. An observation older than what the host knows never overrides it.
//
// Threading: the loop's thread only; done callbacks run there too (not guarded: the caller
// wraps them in its FaultGuard).

#include "orchestrator/blocking_runner.hpp"
#include "orchestrator/budgets.hpp"
#include "orchestrator/claims.hpp"
#include "orchestrator/fault_guard.hpp"
#include "orchestrator/issue.hpp"
#include "orchestrator/live_config.hpp"
#include "orchestrator/outcome.hpp"
#include "plugins/instances.hpp"
#include "workflow/config.hpp"

#include <chrono>
#include <expected>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace vik::orchestrator {

using Clock = std::chrono::steady_clock;
// Where observation times come from: Clock::now in the host, a test's own clock in tests. (The
// loop's timers keep Asio's steady clock.)
using Now = std::function<Clock::time_point()>;

// A tracker's answer (or why there is none), with when the call started.
struct Observation {
    std::expected<IntakeResult, std::string> result;
    Clock::time_point started; // what the answer is dated: earlier than the call for a shared pull
    // When this host made the call, where that differs from `started` (a shared pull): what the
    // intake's duration is measured from.
    std::optional<Clock::time_point> called;
};

// A running session reconciliation stops, and why.
struct Stop {
    PairKey key;
    CancelReason why;
    std::string detail;
};

class Intake {
  public:
    // `now` empty: Clock::now.
    Intake(const LiveConfig &config, std::unique_ptr<plugins::TrackerInstance> tracker, BlockingRunner &runner,
           CallBudgets budgets, const FaultGuard &guard, Now now = {});

    // The observation clock.
    Clock::time_point now() const { return now_(); }

    const std::string &tracker_id() const;

    // ---- tracker calls ---------------------------------------------------------------------
    // Pulls and parses on a worker; only the issues `interest` names are built (IssueInterest).
    void pull(IssueInterest interest, std::function<void(Observation)> done);
    void fetch(const std::set<std::string> &ids, std::function<void(Observation)> done);
    // `set-state` (value: the new state) or `comment` (value: the text).
    // `stage`, when given: the write is made for that (issue, stage) pair's run, and the write
    // fence (set_write_fence) is asked first, on the worker.
    void write(const std::string &command, const std::string &id, const std::string &value, std::function<void(StepResult)> done,
               const std::string &stage = {});
    // Several hosts: a tracker write made for a pair goes out only while this host still holds
    // the pair's lease. The fence returns why a write is refused, or nothing. Asked on the loop,
    // when the write is asked for.
    using WriteFence = std::function<std::optional<std::string>(const std::string &issue_id, const std::string &stage)>;
    void set_write_fence(WriteFence fence) { fence_ = std::move(fence); }
    // Several hosts: where a pull's text comes from. Given the call that pulls the tracker, it
    // returns the text and its source (store/leases.hpp, "one intake for the cluster"). Runs on
    // the worker that makes the pull.
    struct PulledText {
        std::string text;
        std::string source;
        double age_sec = 0; // how old the text already was (a shared pull): the observation is that much older
    };
    using PullText = std::function<std::expected<std::string, std::string>()>;
    using SharedPull = std::function<std::expected<PulledText, std::string>(const PullText &from_tracker)>;
    void set_shared_pull(SharedPull shared) { shared_ = std::move(shared); }

    // ---- observations ----------------------------------------------------------------------
    // Records that `seen` was observed by a call that started at `at`; returns what the host now
    // knows of the issue: `seen`, or the newer state the host learned meanwhile.
    Issue observe(const Issue &seen, Clock::time_point at);
    std::vector<Issue> observe_all(const std::vector<Issue> &seen, Clock::time_point at);
    // The host itself set the issue's state at `at`.
    void learn_state(const std::string &id, const std::string &state, Clock::time_point at);
    // The newest the host knows of the issue, if anything.
    const Issue *newest(const std::string &id) const;
    // What a fetch of `id` that started at `started` says, merged with what the host learned
    // since; nullopt when the issue is gone.
    std::optional<Issue> refreshed(const std::string &id, const IntakeResult &fetched, Clock::time_point started);
    // Forgets issues that are neither in `pulled`, nor kept by `keep`, nor learned about after
    // `started`; and the absence strikes of issues `keep` no longer holds.
    void prune(const std::vector<Issue> &pulled, Clock::time_point started, const std::function<bool(const std::string &)> &keep,
               const std::function<bool(const std::string &)> &active);

    // ---- reconciliation --------------------------------------------------------------------
    // Which of the `running` sessions (not finished, not cancelled) must stop: their issue
    // reached a terminal state, left the stage's state, or is no longer visible. `fresh` is the
    // newest knowledge (observe_all). Absence is judged only for the ids a refresh by id asked for
    // (`asked`; a pull's absence only triggers that refresh); it counts only when nothing newer
    // is known than the refresh that observed it, and stops runs only when two refreshes in a row
    // confirm it: a tracker's momentary hiccup cancels nothing.
    // `stage_state` gives the state a running pair's stage takes (the stage of the config it was
    // dispatched under, after a reload; nullptr: none); empty: the current config's.
    using StageState = std::function<const std::string *(const PairKey &)>;
    std::vector<Stop> reconcile(const std::vector<Issue> &fresh, const std::set<std::string> &asked, Clock::time_point started,
                                const std::vector<PairKey> &running, const StageState &stage_state = {});

    bool terminal(const std::string &state) const;

    // How long to wait before the next pull, after one that `pulled` (answered) or failed. A
    // tracker that keeps failing is asked less and less often: after n failed pulls in a row the
    // next waits idle_sec * 2^(n-1), at most kBackoffCap (or idle_sec when that is longer); the
    // first success resets it. One log line per change (docs/scheduling.md, "Intake backoff").
    static constexpr std::chrono::seconds kBackoffCap{300};
    std::chrono::milliseconds next_wait(bool pulled);

  private:
    struct Observed {
        Issue issue;
        Clock::time_point at;
        bool partial = false; // only id and state are known (the host wrote a state of an issue it had not seen)
    };
    bool known_since(const std::string &id, Clock::time_point at) const;
    const std::string *stage_state(const std::string &stage) const; // nullptr: not (any more) in the workflow

    const LiveConfig &cfg_;
    std::unique_ptr<plugins::TrackerInstance> tracker_;
    BlockingRunner &runner_;
    CallBudgets budgets_;
    WriteFence fence_;  // several hosts: asked before a pair's tracker write
    SharedPull shared_; // several hosts: the pull's source
    const FaultGuard &guard_;
    Now now_;
    Observation known_states(const std::set<std::string> &ids, Clock::time_point started);
    bool fetch_unsupported_logged_ = false;
    int64_t pull_failures_in_row_ = 0;
    std::chrono::milliseconds pull_backoff_{0}; // the wait last announced (0: none)
    std::map<std::string, Observed> latest_;    // newest known state of each issue
    std::map<std::string, int> absent_strikes_; // refreshes in a row that did not find a running issue
};

} // namespace vik::orchestrator
