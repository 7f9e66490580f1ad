#pragma once
// An issue as the scheduler sees it, and the intake rules of vik-compat §3 that turn a
// tracker's JSON into issues.

#include <boost/json/object.hpp>

#include <cstdint>
#include <expected>
#include <map>
#include <optional>
#include <set>
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

// Nesting allowed in a pull's JSON (the array is level 1). Rich-text bodies (Atlassian's ADF,
// ProseMirror trees) nest a few dozen levels; Boost.JSON's default of 32 refused real ones.
constexpr size_t kMaxIssueJsonDepth = 128;

struct SkippedIssue {
    size_t index = 0;
    std::string id;     // when the element had a string `id`, else empty
    std::string reason; // "issue 'A-1' at index 3: field `title` must be a string, found a number"
};

struct IntakeResult {
    std::vector<Issue> issues;         // in tracker order, duplicates and bad elements removed
    std::vector<std::string> warnings; // skipped elements, duplicate ids, replaced bytes
    std::vector<SkippedIssue> skipped; // elements that were not valid issues
    // Valid issues the pull held, including those an IssueInterest left out of `issues`.
    size_t pulled = 0;
    // With an IssueInterest: the states of issues left out that a kept issue names in
    // blocked_by (a blocker is judged by its state wherever it is).
    std::map<std::string, std::string> blocker_states;
    // Several hosts: where the pull came from ("tracker", or "leader": the cluster's shared
    // pull); empty for a single host.
    std::string source;
};

// Which issues of a pull the scheduler needs whole. A tracker may return every issue of a
// project (a hundred thousand, most in states no stage takes); building each into an Issue and
// keeping it costs more than the whole pull. Issues in `states`, or whose id is in `ids` (the
// host holds something for them: a claim, a run, a workspace), are kept; the others are checked
// and counted only.
struct IssueInterest {
    std::set<std::string, std::less<>> states; // std::less<>: looked up by views into the document
    std::set<std::string, std::less<>> ids;
};

// Parses a JSON array of issues. Text that is not JSON, or not an array, fails the whole batch.
// A bad element (wrong type, missing or empty id, a name and its alias both set, an id that is
// not valid UTF-8) is skipped with a warning naming its index and, when it has one, its id: one
// malformed issue never stops the others (vik fails the whole cycle). Invalid UTF-8 elsewhere
// becomes U+FFFD, with a warning.
// With `interest`, only the issues it names are built (see IssueInterest), and each element is
// first looked at without a tree (a SAX scan of its top-level members): only the issues the
// scheduler needs, and elements that are not clean issues, are parsed whole.
std::expected<IntakeResult, std::string> parse_issues(const std::string &json_text, const IssueInterest *interest = nullptr);

// The same reading with the whole pull parsed as one tree: what parse_issues falls back to when
// the pull is not valid JSON (so that its refusal reads as always), and its reference in tests.
std::expected<IntakeResult, std::string> parse_issues_as_tree(const std::string &json_text,
                                                              const IssueInterest *interest = nullptr);

} // namespace vik::orchestrator
