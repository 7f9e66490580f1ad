#pragma once
// An issue as the scheduler sees it, and the intake rules of vik-compat §3 that turn a
// tracker's JSON into issues.

#include <boost/json/object.hpp>

#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <vector>

namespace vik::orchestrator {

struct Issue {
    std::string id;
    std::string title;
    std::string description;
    std::string state;
    boost::json::object fields; // every field as normalized (id/title/state/description + extras)
    // Optional scheduling hints a tracker may give.
    std::optional<int64_t> priority;
    std::string created_at;
    std::vector<std::string> blocked_by;
};

struct IntakeResult {
    std::vector<Issue> issues;         // in tracker order, duplicates removed
    std::vector<std::string> warnings; // duplicate ids, ...
};

// Parses a JSON array of issues. One bad element fails the whole batch (vik), with a message
// naming its index and field.
std::expected<IntakeResult, std::string> parse_issues(const std::string &json_text);

} // namespace vik::orchestrator
