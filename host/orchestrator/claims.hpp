#pragma once
// Claims on (issue, stage) pairs: the single owner of "may this pair be dispatched?".
//
// A pair with no claim is unclaimed. A claim is running (launching or in a session),
// retry_queued (waiting for its timer) or blocked (waiting for a state change or an operator).
// Intake never dispatches a claimed pair. Every transition is a method here, so the rules live
// in one place and can be persisted later. Timers belong to the orchestrator; each queued retry
// carries a token, and only the newest token of a claim may fire it.
//
// Every method is total: a transition asked of a pair that has no claim (released meanwhile,
// e.g. by terminal cleanup) returns an error instead of throwing, so no caller on the event loop
// can be brought down by a race.

#include "workflow/config.hpp"

#include <chrono>
#include <cstdint>
#include <expected>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace vik::orchestrator {

enum class ClaimState { running, retry_queued, blocked };

struct Claim {
    ClaimState state = ClaimState::running;
    int64_t failures = 0;             // failed attempts in a row
    int64_t continuations = 0;        // clean finishes in a row while the issue stayed in the state
    int64_t runs = 0;                 // sessions started for this claim (the prompt's `attempt`)
    std::string retry_kind = "first"; // first | continuation | failure | operator | rejected: why the next run happens
    std::string last_error;
    std::string issue_state;                       // the issue's state when claimed: a change clears a block
    uint64_t token = 0;                            // the live retry timer's token
    double due_in_sec = 0;                         // the delay of the queued retry
    std::chrono::system_clock::time_point since{}; // when it entered its state (wall clock)
    // The agent conversation the pair's runs continue (agents.X.resume): the agent's own id, the
    // profile that holds it, and how many runs it has served. Empty: the next run starts fresh.
    std::string conversation_id, conversation_agent;
    int64_t conversation_turns = 0;
    std::string operator_message; // `issue retry --message`: for the next run's prompt, then cleared
    std::string question;         // parked: what the agent asked (the block's reason says it too)
    // on_fail routing (docs/scheduling.md, "Failure routing"): the stage the issue was sent to
    // after this pair failed (set once the tracker took the new state; the claim then waits,
    // blocked, for the issue to come back), the failure that sent it (for the target's prompt),
    // and how many routes this claim has taken (scheduling.max_routes).
    std::string routed_to, route_reason;
    int64_t routes = 0;
    // The tracker write that moves the issue is in flight: the claim keeps its route (a pull that
    // sees the new state first clears nothing) but is not dispatched again before routed().
    // Not persisted: after a restart the route stands, wherever the issue is.
    bool route_pending = false;
    // A human gate (docs/scheduling.md, "Gates"): a blocked claim whose completed run waits for
    // `vik-host gate approve|reject`. It holds the whole issue, survives a state change (the agent
    // may have moved the issue on) and is cleared only by the operator, a terminal state or a
    // release. A rejection's feedback is for the next run's prompt (`gate_feedback`).
    bool awaiting_approval = false;
    std::string gate_feedback;
};

// How a run used its conversation, told when it ended (note_conversation).
struct ConversationUse {
    std::string agent;      // the profile that ran
    std::string id;         // the agent's conversation id, when it reported one
    bool resumed = false;   // the run continued the claim's conversation
    bool delivered = false; // the agent got the run's prompt: an operator's message was read
};

// What happens after a run ended.
struct Decision {
    enum Kind { release, retry, block, route } kind = release;
    double delay_sec = 0;
    uint64_t token = 0; // for retry
    std::string reason;
    std::string target; // for route: the stage the issue goes to
};

using PairKey = std::pair<std::string, std::string>; // (issue id, stage)

class ClaimTable {
  public:
    // `wall_now` stamps each transition (Claim::since); empty: std::chrono::system_clock::now.
    using WallNow = std::function<std::chrono::system_clock::time_point()>;
    explicit ClaimTable(workflow::SchedulingPolicy policy, WallNow wall_now = {})
        : policy_(std::move(policy)),
          wall_now_(wall_now ? std::move(wall_now) : [] { return std::chrono::system_clock::now(); }) {}

    // Called after every transition with the pair's claim as it now stands (nullptr: released).
    // The durable store mirrors the table through it (durable_state.hpp).
    using Observer = std::function<void(const PairKey &key, const Claim *claim)>;
    void set_observer(Observer observer) { observer_ = std::move(observer); }

    // A claim as a restart recovered it (durable_state.hpp): put back as it was, without telling
    // the observer (the store has it already). A retry_queued claim gets a fresh live token,
    // which is returned.
    uint64_t restore(const PairKey &key, Claim claim);

    const Claim *find(const PairKey &key) const;
    bool claimed(const PairKey &key) const { return find(key) != nullptr; }

    // Whether intake may dispatch the pair: unclaimed, or routed away earlier and its issue is back.
    bool dispatchable(const PairKey &key) const;
    // unclaimed, retry_queued or routed -> running. Returns the claim (its `runs` counts this
    // run). A routed claim comes back as a first run (fresh conversation, failures reset) that
    // keeps its route count.
    const Claim &start(const PairKey &key, const std::string &issue_state);
    // running -> retry_queued (continuation) | blocked | released, after a clean finish.
    // An error (naming the pair) when the pair has no claim.
    std::expected<Decision, std::string> completed(const PairKey &key, bool issue_still_in_state);
    // running -> retry_queued (failure, with backoff) | blocked, after a failure of any kind.
    // `not_before_sec`: the retry waits at least this long (a rate limit's reported reset).
    // `on_fail`: the stage's failure policy; once it applies (after its after_attempts failures in
    // a row) the pair blocks, or is routed: blocked with `route_reason`, waiting for routed() once
    // the scheduler moved the issue (Decision::route); past scheduling.max_routes it blocks. A
    // rate-limited failure (`not_before_sec` > 0) always retries, up to max_attempts.
    // `gate_feedback`, when not empty: a reviewer rejected the run; the next run's prompt gets it.
    std::expected<Decision, std::string> failed(const PairKey &key, const std::string &reason, double not_before_sec = 0,
                                                const workflow::FailurePolicy &on_fail = {},
                                                const std::string &gate_feedback = {});
    // The tracker took the route's state: the claim waits for its issue to come back to its stage.
    // Returns false when the claim is no longer waiting for that write (an operator or a cleanup
    // acted meanwhile).
    bool routed(const PairKey &key);
    // The route's write failed: the pair is an ordinary block with `reason`, the route not counted.
    void route_failed(const PairKey &key, const std::string &reason);
    // The claim that routed the issue to `stage` most recently, if any (for the prompt's `failure`).
    std::optional<std::pair<PairKey, Claim>> routed_to(const std::string &issue_id, const std::string &stage) const;
    // retry_queued -> retry_queued one attempt later (no free slot when its timer fired).
    std::expected<Decision, std::string> requeue_no_slot(const PairKey &key);
    // running -> blocked, parked: the agent needs a human. Cleared by a state change or an
    // operator's retry (whose message the next run's prompt gets), which continues the conversation.
    std::expected<Decision, std::string> parked(const PairKey &key, const std::string &question);
    // running -> retry_queued at once: the run could not continue its conversation; the next run
    // starts a fresh one (same retry kind, no failure counted).
    std::expected<Decision, std::string> resume_failed(const PairKey &key, const std::string &reason);
    // Records the conversation a run that just ended used (before completed/failed/parked, which
    // tell the observer). When the agent got the prompt (`delivered`), the operator's message and
    // the question it answered are cleared; otherwise (the session never started, or the
    // conversation could not be continued) nothing changes and the next run gets them again.
    void note_conversation(const PairKey &key, const ConversationUse &use);
    // running (or a rejected retry whose issue could not be moved back) -> blocked, awaiting
    // approval: the completed run waits for a human's verdict. `why`, when given, opens the reason.
    std::expected<Decision, std::string> await_approval(const PairKey &key, const std::string &why = "");
    // Awaiting approval -> as completed(key, issue_still_in_state) decides: the run stands.
    std::expected<Decision, std::string> approved(const PairKey &key, bool issue_still_in_state);
    // Awaiting approval -> retry_queued at once (retry kind `rejected`, no failure counted), with
    // `feedback` for the next run's prompt.
    std::expected<Decision, std::string> rejected(const PairKey &key, const std::string &feedback);
    // The issue's pairs awaiting approval.
    std::vector<PairKey> awaiting_approval(const std::string &issue_id) const;
    // any -> blocked (a missing claim is created blocked; `issue_state`, when given, is the state
    // whose change clears the block). A route the claim held is dropped: the block is its own.
    void block(const PairKey &key, const std::string &reason, const std::optional<std::string> &issue_state = std::nullopt);
    // any -> unclaimed.
    void release(const PairKey &key);
    void release_issue(const std::string &issue_id);
    // The issue's claims that are not running (queued or blocked) -> unclaimed. Returns how many.
    size_t release_idle(const std::string &issue_id);
    // Whether any stage of the issue is claimed.
    bool has_issue(const std::string &issue_id) const;
    // The issues holding at least one claim.
    std::set<std::string> issue_ids() const;

    // Whether `token` is the live timer of a retry_queued claim.
    bool token_current(const PairKey &key, uint64_t token) const;

    // Blocked claims of an issue whose state is now different: unclaimed again (routed claims and
    // claims awaiting approval stay: their issue left on purpose). Returns how many.
    size_t clear_blocks_on_state_change(const std::string &issue_id, const std::string &current_state);
    // An operator's `issue retry`: the issue's blocked (not awaiting approval) and queued claims are queued to run now
    // (retry kind `operator`, failure, continuation and route counts reset, conversation kept, `message`
    // for the next prompt). Returns each queued pair with its decision (the timer to arm).
    std::vector<std::pair<PairKey, Decision>> retry_now(const std::string &issue_id, const std::string &message);

    std::vector<std::pair<PairKey, Claim>> all() const;
    // The claim as it stands goes to the observer (the store) again: a store shared by hosts
    // changed its row meanwhile (LeaseKeeper::resume) and the change did not come to pass.
    void resend(const PairKey &key) const { notify(key); }
    const workflow::SchedulingPolicy &policy() const { return policy_; }
    // A reloaded workflow's rules, for the transitions from now on (claims keep their counts).
    void set_policy(workflow::SchedulingPolicy policy) { policy_ = std::move(policy); }

    // min(base * 2^(attempt-1), cap), attempt >= 1.
    static double backoff_sec(const workflow::SchedulingPolicy &policy, int64_t attempt);

  private:
    Claim *get(const PairKey &key);
    // Any -> blocked with `reason` (its route dropped); awaiting a human's verdict or not.
    void set_blocked(const PairKey &key, Claim &c, const std::string &reason, bool awaiting_approval);
    void notify(const PairKey &key) const {
        if (observer_) observer_(key, find(key));
    }
    Observer observer_;
    Decision queue(Claim &c, const std::string &kind, double delay, const std::string &reason);
    workflow::SchedulingPolicy policy_;
    WallNow wall_now_;
    std::map<PairKey, Claim> claims_;
    uint64_t next_token_ = 1;
};

} // namespace vik::orchestrator
