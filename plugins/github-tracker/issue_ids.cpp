#include "issue_ids.hpp"

#include <algorithm>
#include <cstdio>

namespace vik::github {

namespace {

// The longest id the tracker can produce is 39 + 1 + 100 + 1 + 10 bytes; anything longer is
// refused before it is looked at.
constexpr size_t kMaxIdBytes = 160;

bool alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool same_name(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return lower(x) == lower(y); });
}

} // namespace

bool valid_owner(std::string_view owner) {
    if (owner.empty() || owner.size() > 39 || owner.front() == '-') return false;
    return std::all_of(owner.begin(), owner.end(), [](char c) { return alnum(c) || c == '-'; });
}

bool valid_repo_name(std::string_view name) {
    if (name.empty() || name.size() > 100 || name == "." || name == "..") return false;
    return std::all_of(name.begin(), name.end(), [](char c) { return alnum(c) || c == '.' || c == '-' || c == '_'; });
}

bool valid_repo(std::string_view full) {
    auto slash = full.find('/');
    return slash != std::string_view::npos && valid_owner(full.substr(0, slash)) && valid_repo_name(full.substr(slash + 1));
}

bool valid_issue_number(std::string_view n) {
    if (n.empty() || n.size() > 10 || n.front() == '0') return false;
    if (!std::all_of(n.begin(), n.end(), [](char c) { return c >= '0' && c <= '9'; })) return false;
    return std::stoll(std::string(n)) <= 2147483647LL; // GraphQL's Int
}

std::string shown_id(std::string_view id) {
    constexpr size_t kShown = 64;
    std::string out = "'";
    for (unsigned char c : id.substr(0, kShown)) {
        if (c < 0x20 || c >= 0x7f || c == '\'' || c == '\\') {
            char buf[5];
            std::snprintf(buf, sizeof buf, "\\x%02X", c);
            out += buf;
        } else {
            out += static_cast<char>(c);
        }
    }
    out += id.size() > kShown ? "...' (" + std::to_string(id.size()) + " bytes)" : "'";
    return out;
}

IssueIds::IssueIds(std::vector<std::string> repos) : repos_(std::move(repos)) {}

std::string IssueIds::configured(std::string_view repo) const {
    for (const auto &r : repos_)
        if (same_name(r, repo)) return r;
    return "";
}

std::string IssueIds::id_for(const std::string &repo, long long number) const {
    return single_repo() ? std::to_string(number) : repo + "#" + std::to_string(number);
}

std::string IssueIds::repos_text() const {
    if (repos_.empty()) return "none configured; the project's issues only";
    std::string out;
    for (const auto &r : repos_)
        out += (out.empty() ? "" : ", ") + r;
    return out;
}

std::expected<IssueRef, std::string> IssueIds::parse(std::string_view id) const {
    std::string expected =
        single_repo() ? "expected the issue number N (a positive decimal without sign or leading zeros) of the configured "
                        "repository " +
                            repos_.front()
                      : "expected owner/name#N (N a positive decimal without sign or leading zeros) of the configured "
                        "repositories (" +
                            repos_text() + ")";
    auto refuse = [&](const std::string &why) { return std::unexpected("refusing issue id " + shown_id(id) + ": " + why); };
    if (id.size() > kMaxIdBytes) return refuse("too long for an issue id; " + expected);
    auto hash = id.find('#');
    if (single_repo()) {
        if (hash == std::string_view::npos && valid_issue_number(id)) return IssueRef{repos_.front(), std::string(id)};
        if (hash != std::string_view::npos && valid_repo(id.substr(0, hash)) && valid_issue_number(id.substr(hash + 1))) {
            if (configured(id.substr(0, hash)).empty())
                return refuse("repository " + std::string(id.substr(0, hash)) + " is not the configured repository " +
                              repos_.front());
            return refuse("with one configured repository ids are the issue number alone: use '" +
                          std::string(id.substr(hash + 1)) + "'");
        }
        return refuse("not an issue id of this tracker; " + expected);
    }
    if (hash == std::string_view::npos || !valid_repo(id.substr(0, hash)) || !valid_issue_number(id.substr(hash + 1)))
        return refuse("not an issue id of this tracker; " + expected);
    std::string_view repo = id.substr(0, hash);
    if (repos_.empty()) return IssueRef{std::string(repo), std::string(id.substr(hash + 1))};
    std::string canonical = configured(repo);
    if (canonical.empty())
        return refuse("repository " + std::string(repo) + " is not among the configured repositories (" + repos_text() + ")");
    return IssueRef{canonical, std::string(id.substr(hash + 1))};
}

} // namespace vik::github
