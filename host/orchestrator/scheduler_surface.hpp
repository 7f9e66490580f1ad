#pragma once
// The scheduler's OperatorSurface (operator_surface.hpp): builds the views from the parts that
// own each piece (claims, sessions, intake, the retry timers' due times) and forwards the
// operator's requests to the scheduler's actions. It owns nothing but the listeners' feed
// reference; every answer is read fresh from the owners.
//
// Threading: the loop's thread.

#include "orchestrator/change_feed.hpp"
#include "orchestrator/claims.hpp"
#include "orchestrator/intake.hpp"
#include "orchestrator/live_config.hpp"
#include "orchestrator/operator_surface.hpp"
#include "orchestrator/scheduler_clock.hpp"
#include "orchestrator/session_supervisor.hpp"
#include "workspace/layout.hpp"

#include <array>
#include <functional>
#include <optional>

namespace vik::orchestrator {

// What the scheduler itself knows about its loop, for the views.
struct SchedulerStatus {
    std::chrono::system_clock::time_point started_at{};
    std::optional<std::chrono::system_clock::time_point> last_intake_at, next_intake_at;
    std::string last_intake_error;
    int64_t intake_cycles = 0, intake_failures = 0;
    bool stopping = false;
    std::vector<WaitingView> waiting; // rebuilt by every dispatch
    // Pull durations: counts per bucket (not cumulative) of kIntakeDurationBounds, and the sum.
    static constexpr std::array<double, 10> kIntakeDurationBounds{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
    std::array<int64_t, kIntakeDurationBounds.size()> intake_duration_counts{};
    double intake_duration_sum_sec = 0;
    void record_intake_duration(double sec) {
        intake_duration_sum_sec += sec;
        for (size_t i = 0; i < kIntakeDurationBounds.size(); ++i)
            if (sec <= kIntakeDurationBounds[i]) {
                ++intake_duration_counts[i];
                break;
            }
    }
};

class SchedulerSurface final : public OperatorSurface {
  public:
    struct Actions {
        std::function<bool()> refresh;
        std::function<size_t(const std::string &id, const std::string &message)> retry;
        std::function<size_t(const std::string &id)> cancel;
        // The due time of a queued retry's timer.
        std::function<std::optional<SchedulerClock::time_point>(const PairKey &)> retry_due;
        std::function<std::expected<size_t, std::string>(const std::string &id, bool approve, const std::string &feedback)> gate;
    };
    struct Parts {
        const LiveConfig &cfg;
        const ClaimTable &claims;
        const SessionSupervisor &sessions;
        const Intake &intake;
        const workspace::Layout &layout;
        const SchedulerClock &clock;
        const SchedulerStatus &status;
        ChangeFeed &feed;
    };
    SchedulerSurface(Parts parts, Actions actions) : p_(parts), act_(std::move(actions)) {}

    SchedulerView view() const override;
    std::optional<IssueView> issue(const std::string &id) const override;
    bool refresh() override { return act_.refresh(); }
    std::expected<size_t, std::string> retry(const std::string &id, const std::string &message) override;
    std::expected<size_t, std::string> cancel(const std::string &id) override;
    std::expected<size_t, std::string> gate(const std::string &id, bool approve, const std::string &feedback) override;
    uint64_t subscribe(Listener listener, bool with_session_events) override {
        return p_.feed.subscribe(std::move(listener), with_session_events);
    }
    void unsubscribe(uint64_t handle) override { p_.feed.unsubscribe(handle); }

    // The views of one claim (a retry or a block) also published as changes.
    RetryView retry_view(const PairKey &key, const Claim &c) const;
    BlockedView blocked_view(const PairKey &key, const Claim &c) const;

  private:
    std::vector<RunningView> running(const std::string *only) const;
    bool knows(const std::string &id) const;
    Parts p_;
    Actions act_;
};

} // namespace vik::orchestrator
