#pragma once
// Which agent profile runs a stage for an issue: the stage's `agent`, unless the issue carries a
// label listed in the stage's `agent_by_label` (the first label listed there that the issue
// carries wins). Labels are the issue's `labels` field as the tracker gives it: strings, or
// objects with a string `name` (GitHub's shape). Tracker data only picks among the profiles the
// workflow defines (doctor checks each); it never names a command.

#include "orchestrator/issue.hpp"
#include "workflow/config.hpp"

#include <algorithm>
#include <string>
#include <vector>

namespace vik::orchestrator {

inline std::vector<std::string> issue_labels(const Issue &issue) {
    std::vector<std::string> out;
    const boost::json::value *ls = issue.fields.if_contains("labels");
    if (ls == nullptr || !ls->is_array()) return out;
    for (const auto &l : ls->as_array()) {
        if (l.is_string())
            out.emplace_back(l.as_string());
        else if (l.is_object())
            if (const auto *n = l.as_object().if_contains("name"); n && n->is_string()) out.emplace_back(n->as_string());
    }
    return out;
}

inline const std::string &agent_for(const workflow::Stage &s, const Issue &issue) {
    if (s.agent_by_label.empty()) return s.agent;
    std::vector<std::string> labels = issue_labels(issue);
    for (const auto &[label, agent] : s.agent_by_label)
        if (std::find(labels.begin(), labels.end(), label) != labels.end()) return agent;
    return s.agent;
}

} // namespace vik::orchestrator
