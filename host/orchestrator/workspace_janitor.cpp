#include "orchestrator/workspace_janitor.hpp"

#include "util/ids_and_time.hpp"

#include <spdlog/spdlog.h>

namespace vik::orchestrator {

void WorkspaceJanitor::after_pull(const std::vector<Issue> &pulled, const Busy &busy, Clean clean, std::function<bool()> live) {
    if (running_) return;
    if (next_ && clock_.now() < *next_) return;
    next_ = clock_.now() + kInventoryEvery;
    std::set<std::string> seen;
    for (const auto &i : pulled)
        seen.insert(i.id);
    std::set<std::string> ids;
    for (auto &id : layout_.issue_ids())
        if (!seen.count(id) && !busy(id)) ids.insert(id);
    if (ids.empty()) return;
    running_ = true;
    spdlog::debug("workspace inventory: fetching {} issue(s) not in the pull", ids.size());
    intake_.fetch(ids, guard_.wrap("", "", [this, clean = std::move(clean), live = std::move(live), busy](Observation o) {
        running_ = false;
        if (!live()) return;
        if (!o.result) {
            spdlog::warn("workspace inventory: cannot fetch issues by id; workspaces kept: {}", o.result.error());
            return;
        }
        for (const Issue &i : intake_.observe_all(o.result->issues, o.started))
            if (intake_.terminal(i.state) && !busy(i.id)) {
                spdlog::info("workspace inventory: issue is in terminal state issue_id={} state={}; cleaning its workspace", i.id,
                             i.state);
                guard_(i.id, "", [&] { clean(i); });
            }
    }));
}

bool WorkspaceJanitor::retained(const std::string &id) {
    double days = cfg_->scheduling.keep_terminal_workspaces_days;
    if (days <= 0) return false;
    auto changed = layout_.last_change(id);
    if (!changed) return false;
    auto keep = std::chrono::duration_cast<std::chrono::system_clock::duration>(std::chrono::duration<double>(days * 86400));
    if (clock_.wall_now() - *changed >= keep) {
        retention_announced_.erase(id);
        return false;
    }
    if (retention_announced_.insert(id).second)
        spdlog::info("terminal workspace kept issue_id={} until {} (scheduling.keep_terminal_workspaces_days = {})", id,
                     util::rfc3339_utc(*changed + keep), days);
    return true;
}

} // namespace vik::orchestrator
