#pragma once
// Schedules (the workflow's `schedules:`; docs/scheduling.md, "Schedules"): one timer per
// schedule, armed for its next firing in its time zone (schedule/cron.hpp). A firing is handed
// to `fire` (the scheduler sets the schedule's issue to its state through the tracker); once it
// was attempted, its time is recorded in the store, so after downtime the missed-run policy can
// tell a missed firing: `run_once` fires once at start, `skip` waits for the next one. A host
// that never fired a schedule before waits for its next firing.
//
// Threading: the loop's thread.

#include "orchestrator/fault_guard.hpp"
#include "orchestrator/scheduler_clock.hpp"
#include "schedule/cron.hpp"
#include "store/store.hpp"
#include "workflow/config.hpp"

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace vik::orchestrator {

class ScheduleRunner {
  public:
    // Fires `schedule` (its due time given); the runner has recorded the firing already.
    using Fire = std::function<void(const workflow::Schedule &schedule, std::chrono::sys_seconds due)>;

    ScheduleRunner(boost::asio::io_context &io, SchedulerClock &clock, const FaultGuard &guard, store::Store *store, Fire fire)
        : io_(io), clock_(clock), guard_(guard), store_(store), fire_(std::move(fire)) {}

    // Several hosts on one workflow: asks whether this host fires a due time (only the first
    // host to record it does), and calls `decided` on the loop with the answer.
    using Claim =
        std::function<void(const std::string &schedule, std::chrono::sys_seconds due, std::function<void(bool)> decided)>;
    void set_claim(Claim claim) { claim_ = std::move(claim); }

    // Arms every schedule; `last_fired` is what the store kept (by name). Schedules whose
    // expression or zone cannot be used (checked at load, so only a changed tzdata) are logged
    // and left out.
    void start(const std::vector<workflow::Schedule> &schedules, const std::vector<store::ScheduleRecord> &last_fired);
    void stop();

  private:
    struct Entry {
        workflow::Schedule schedule;
        schedule::CronExpr cron;
        schedule::TimeZone zone;
        std::chrono::sys_seconds next{};
        std::unique_ptr<SchedulerTimer> timer;
    };
    void arm(Entry &e, std::chrono::sys_seconds after);
    void wait(Entry &e);
    void fire(Entry &e, std::chrono::sys_seconds due);
    void fire_now(const workflow::Schedule &schedule, std::chrono::sys_seconds due);
    std::chrono::sys_seconds wall_now() const;

    boost::asio::io_context &io_;
    SchedulerClock &clock_;
    const FaultGuard &guard_;
    store::Store *store_;
    Fire fire_;
    Claim claim_; // none: this host alone fires the workflow's schedules
    std::map<std::string, Entry> entries_;
    bool stopped_ = false; // a stop, or max_iterations reached: nothing fires any more
};

} // namespace vik::orchestrator
