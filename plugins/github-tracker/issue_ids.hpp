#pragma once
// Issue ids of the GitHub tracker, read strictly.
//
// Ids reach the tracker from agents (`vik-host issue set-state ID ...`), so they are untrusted
// input: an id is accepted only in the exact forms the tracker itself produces (the number with
// one repository, `owner/name#N` otherwise) and only for a configured repository. The text goes
// into API paths, so nothing outside GitHub's own name alphabet may pass.

#include <expected>
#include <string>
#include <string_view>
#include <vector>

namespace vik::github {

// GitHub's alphabets: a login is 1-39 letters, digits and hyphens, not starting with a hyphen;
// a repository name is 1-100 letters, digits, '.', '-', '_', and neither "." nor "..".
bool valid_owner(std::string_view owner);
bool valid_repo_name(std::string_view name);
bool valid_repo(std::string_view owner_slash_name);
// A positive decimal without sign, leading zeros or other characters, within GraphQL's Int.
bool valid_issue_number(std::string_view number);

// An id as it may appear in an error message: quoted, control bytes escaped, long ids cut.
std::string shown_id(std::string_view id);

struct IssueRef {
    std::string repo;   // owner/name, spelled as configured (GitHub names ignore case)
    std::string number; // canonical decimal
};

class IssueIds {
  public:
    // `repos`: the configured repositories (already valid). With none (project mode without
    // repos) every well-formed owner/name#N passes here and the board decides.
    explicit IssueIds(std::vector<std::string> repos);

    // The configured spelling of `repo`, or "" when it is not configured.
    std::string configured(std::string_view repo) const;
    bool single_repo() const { return repos_.size() == 1; }
    // The id the tracker gives the issue `number` of `repo`.
    std::string id_for(const std::string &repo, long long number) const;
    // The issue an id names, or an error naming the id and the configured repositories.
    std::expected<IssueRef, std::string> parse(std::string_view id) const;
    // "acme/app, acme/lib" (or a note that none are configured).
    std::string repos_text() const;

  private:
    std::vector<std::string> repos_;
};

} // namespace vik::github
