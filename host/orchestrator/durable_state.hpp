#pragma once
// Durable state: the scheduler's link to the store (store/store.hpp). It mirrors every claim
// transition of the ClaimTable (as its observer) and every run's start and end into the store,
// and at start-up turns what the store recovered back into claims, by the rules of
// docs/store.md ("Recovery rules"):
//   - runs left `running` by a host that died are recorded `interrupted` (by the store);
//   - claims that were running fail with reason "interrupted" under the retry policy, their
//     attempt count kept;
//   - pending retries keep their attempt and wait only the rest of their delay;
//   - blocked pairs stay blocked (until their issue's state changes or an operator retries);
//   - finished runs are history only: nothing runs again because of them.
// Without a store (tests, `store: none`) every call is a no-op.
//
// Writes never block the loop: the store queues them (its writer thread applies them).
// Threading: the loop's thread.

#include "orchestrator/claims.hpp"
#include "store/store.hpp"

#include <boost/json/object.hpp>

#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace vik::orchestrator {

// The failure of a claim whose run was under way when the host stopped (its retry's last_error).
inline constexpr const char *kInterruptedReason = "interrupted: vik-host stopped while this run was running";

class DurableState {
  public:
    // `store` may be null; it must outlive this object.
    explicit DurableState(store::Store *store) : store_(store) {}

    bool enabled() const { return store_ != nullptr; }
    std::string location() const { return store_ ? store_->location() : std::string(); }

    // Mirrors `claims` into the store from now on.
    void observe(ClaimTable &claims);

    // What start-up must do after recovery: the retries to arm (with their tokens and the
    // delay left) and the interrupted claims, already failed under the retry policy.
    struct Resumed {
        struct Retry {
            PairKey key;
            uint64_t token = 0;
            double delay_sec = 0;
        };
        std::vector<Retry> retries;
        std::vector<store::OutcomeRecord> outcomes;   // structured outcomes kept (stage_outcomes.hpp)
        std::vector<store::ScheduleRecord> schedules; // each schedule's newest firing (schedule_runner.hpp)
        std::string summary;                          // the start-up log line
    };
    // Loads the store's claims into `claims` (before the first intake). Throws
    // std::runtime_error naming the store when it cannot be read.
    Resumed recover(ClaimTable &claims, std::chrono::system_clock::time_point now);
    // Pairs taken over from another host (leases.hpp) go into `claims` by the same rules; a pair
    // this host still has a claim on is left as it is. Its outcomes are those of the issues taken.
    Resumed adopt(ClaimTable &claims, store::Recovery taken);

    // A session started / ended. `run_id` is the host's session id (uuidv7).
    struct RunStart {
        std::string run_id, issue_id, stage, agent, session_file;
        int64_t attempt = 1;
        std::chrono::system_clock::time_point started_at;
    };
    void run_started(const RunStart &run);
    // `outcome`: completed | failed | cancelled (the session record's final state);
    // `snapshot`: the recorder's snapshot (provider session id, tokens, cost).
    void run_ended(const RunStart &run, const std::string &outcome, const std::string &error, const boost::json::object &snapshot,
                   std::chrono::system_clock::time_point ended_at);

  private:
    store::Store *store_;
};

} // namespace vik::orchestrator
