#pragma once
// The workspaces the host already has, beyond what a pull shows: the inventory that finds
// workspaces of issues closed while the host was down or idle, and the retention rule for
// terminal workspaces (docs/store.md, "Workspace inventory").
//
// Inventory: at the first pull and then every kInventoryEvery, the issues that have a workspace
// but were not in the pull (and are not busy: holding a slot or being cleaned) are fetched by
// id; those the tracker now reports in a terminal state are handed to the owner's cleanup (the
// same as a pull would: before_remove, then removal). An issue the fetch does not return is
// kept: trackers whose fetch is a filtered pull cannot tell "gone" from "not pulled"
// (docs/decisions.md).
//
// Retention (scheduling.keep_terminal_workspaces_days): a terminal issue's workspace stays until
// its directory has been untouched that long; said once per issue.
//
// Threading: the loop's thread.

#include "orchestrator/fault_guard.hpp"
#include "orchestrator/intake.hpp"
#include "orchestrator/live_config.hpp"
#include "orchestrator/scheduler_clock.hpp"
#include "workflow/config.hpp"
#include "workspace/layout.hpp"

#include <functional>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace vik::orchestrator {

class WorkspaceJanitor {
  public:
    static constexpr std::chrono::minutes kInventoryEvery{10};
    using Busy = std::function<bool(const std::string &id)>;
    using Clean = std::function<void(const Issue &issue)>;

    WorkspaceJanitor(const LiveConfig &cfg, const workspace::Layout &layout, Intake &intake, const SchedulerClock &clock,
                     const FaultGuard &guard)
        : cfg_(cfg), layout_(layout), intake_(intake), clock_(clock), guard_(guard) {}

    // After a processed pull: the inventory when it is due. `busy` ids are left alone; `clean`
    // runs (on the loop) for each issue found terminal; `live` says whether the host still runs.
    void after_pull(const std::vector<Issue> &pulled, const Busy &busy, Clean clean, std::function<bool()> live);

    // Whether a terminal issue's workspace must stay for now (retention).
    bool retained(const std::string &id);

  private:
    const LiveConfig &cfg_;
    const workspace::Layout &layout_;
    Intake &intake_;
    const SchedulerClock &clock_;
    const FaultGuard &guard_;
    bool running_ = false;
    std::optional<SchedulerClock::time_point> next_; // unset: at the first pull
    std::set<std::string> retention_announced_;
};

} // namespace vik::orchestrator
