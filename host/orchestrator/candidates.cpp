#include "orchestrator/candidates.hpp"

#include <algorithm>

namespace vik::orchestrator {

std::vector<const Issue *> order_candidates(const std::vector<Issue> &issues) {
    std::vector<const Issue *> out;
    for (const auto &i : issues)
        out.push_back(&i);
    std::stable_sort(out.begin(), out.end(), [](const Issue *a, const Issue *b) {
        bool pa = a->priority.has_value(), pb = b->priority.has_value();
        if (pa != pb) return pa;
        if (pa && *a->priority != *b->priority) return *a->priority < *b->priority;
        bool ca = !a->created_at.empty(), cb = !b->created_at.empty();
        if (ca != cb) return ca;
        if (ca && a->created_at != b->created_at) return a->created_at < b->created_at; // RFC 3339 UTC sorts as text
        return a->id < b->id;
    });
    return out;
}

bool waits_on_blocker(const Issue &issue, const std::map<std::string, std::string> &state_by_id,
                      const std::vector<std::string> &terminal_states) {
    for (const auto &b : issue.blocked_by) {
        auto it = state_by_id.find(b);
        if (it == state_by_id.end()) continue; // not visible: closed or unknown, so not blocking
        if (std::find(terminal_states.begin(), terminal_states.end(), it->second) == terminal_states.end()) return true;
    }
    return false;
}

bool state_has_room(const workflow::SchedulingPolicy &policy, const std::string &state, const std::vector<std::string> &running) {
    auto it = policy.max_concurrent_by_state.find(state);
    if (it == policy.max_concurrent_by_state.end()) return true;
    auto n = std::count(running.begin(), running.end(), state);
    return n < it->second;
}

} // namespace vik::orchestrator
