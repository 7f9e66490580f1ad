#pragma once
// Pure dispatch rules: candidate order and limits (beyond-vik.md, Scheduling).

#include "orchestrator/issue.hpp"
#include "workflow/config.hpp"

#include <map>
#include <set>
#include <string>
#include <vector>

namespace vik::orchestrator {

// Priority 1..n first (lower first, issues without one after), then oldest created_at (issues
// without one after), then id. Stable for equal keys.
std::vector<const Issue *> order_candidates(const std::vector<Issue> &issues);

// Whether an issue waits for a blocker: a `blocked_by` id that is in the pull and not terminal.
bool waits_on_blocker(const Issue &issue, const std::map<std::string, std::string> &state_by_id,
                      const std::vector<std::string> &terminal_states);

// Whether one more issue in `state` may start, given the current states of running issues.
bool state_has_room(const workflow::SchedulingPolicy &policy, const std::string &state,
                    const std::vector<std::string> &running_issue_states);

} // namespace vik::orchestrator
