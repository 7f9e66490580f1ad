// github-tracker: GitHub issues as a vik-host tracker.
//
// State models: `labels` (a map from label to state; an issue with exactly one state label has
// that state), `project` (the single-select Status field of a Projects v2 board, over GraphQL),
// or `issue_state` (open / closed). Pull requests are never issues. Reads are conditional
// (ETag) and paginated; writes swap state labels, set the project Status, reopen/close, or
// comment. The token comes from the environment variable named by `token_env` and is never
// logged. See docs/trackers/github.md.
#include "github_client.hpp"
#include "issue_ids.hpp"

#include <vik/plugin.hpp>

#include <boost/json.hpp>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <set>

namespace {

namespace json = boost::json;
using vik::github::Clock;
using vik::github::GithubClient;
using vik::github::GithubError;
using vik::github::GraphqlError;
using vik::github::IssueIds;
using vik::github::IssueRef;
using vik::sdk::Error;

struct Repo {
    std::string full; // owner/name
};

struct Settings {
    std::vector<Repo> repos;
    std::string api_url = "https://api.github.com";
    std::string token_env = "GITHUB_TOKEN";
    std::string state_from;                                        // labels | project | issue_state
    std::vector<std::pair<std::string, std::string>> state_labels; // label -> state, in order
    std::vector<std::string> required_labels, excluded_labels;
    std::string assignee;
    // project mode
    std::string project_owner, project_owner_type = "organization", status_field = "Status";
    int64_t project_number = 0;
};

std::vector<std::string> strings(const json::object &o, const char *key) {
    std::vector<std::string> out;
    if (auto *v = o.if_contains(key)) {
        if (v->is_string())
            out.emplace_back(v->get_string());
        else if (v->is_array())
            for (auto &x : v->get_array())
                if (x.is_string())
                    out.emplace_back(x.get_string());
                else
                    throw Error(std::string("github-tracker: '") + key + "' must be a list of strings", VIK_INVALID_ARGUMENT);
        else
            throw Error(std::string("github-tracker: '") + key + "' must be a string or a list of strings", VIK_INVALID_ARGUMENT);
    }
    return out;
}

std::string string_setting(const json::object &o, const char *key, const std::string &def) {
    auto *v = o.if_contains(key);
    if (!v) return def;
    if (!v->is_string()) throw Error(std::string("github-tracker: '") + key + "' must be a string", VIK_INVALID_ARGUMENT);
    return std::string(v->get_string());
}

Settings parse_settings(const char *settings_json) {
    json::value v = json::parse(settings_json);
    const json::object &o = v.as_object();
    Settings s;
    for (auto &r : strings(o, "repos"))
        s.repos.push_back({r});
    for (auto &r : strings(o, "repo"))
        s.repos.push_back({r});
    for (auto &r : s.repos)
        if (!vik::github::valid_repo(r.full))
            throw Error("github-tracker: repository " + vik::github::shown_id(r.full) +
                            " in issues.tracker.repos must be written owner/name (GitHub's letters, digits, '-', and for the "
                            "name '.', '_')",
                        VIK_INVALID_ARGUMENT);
    s.api_url = string_setting(o, "api_url", s.api_url);
    s.token_env = string_setting(o, "token_env", s.token_env);
    if (auto *sl = o.if_contains("state_labels")) {
        if (!sl->is_object()) throw Error("github-tracker: 'state_labels' must map label names to states", VIK_INVALID_ARGUMENT);
        for (auto &kv : sl->get_object()) {
            if (!kv.value().is_string())
                throw Error("github-tracker: state_labels." + std::string(kv.key()) + " must be a state name",
                            VIK_INVALID_ARGUMENT);
            s.state_labels.emplace_back(std::string(kv.key()), std::string(kv.value().get_string()));
        }
    }
    if (auto *p = o.if_contains("project")) {
        if (!p->is_object()) throw Error("github-tracker: 'project' must be a map with owner and number", VIK_INVALID_ARGUMENT);
        const auto &po = p->get_object();
        s.project_owner = string_setting(po, "owner", "");
        s.project_owner_type = string_setting(po, "owner_type", s.project_owner_type);
        s.status_field = string_setting(po, "status_field", s.status_field);
        if (auto *n = po.if_contains("number"); n && n->is_int64()) s.project_number = n->get_int64();
        if (s.project_owner.empty() || s.project_number <= 0)
            throw Error("github-tracker: 'project' needs owner (a login) and number (the board's number)", VIK_INVALID_ARGUMENT);
        if (s.project_owner_type != "organization" && s.project_owner_type != "user")
            throw Error("github-tracker: project.owner_type must be organization or user", VIK_INVALID_ARGUMENT);
    }
    s.required_labels = strings(o, "required_labels");
    s.excluded_labels = strings(o, "excluded_labels");
    s.assignee = string_setting(o, "assignee", "");
    s.state_from = string_setting(o, "state_from",
                                  !s.project_owner.empty()  ? "project"
                                  : !s.state_labels.empty() ? "labels"
                                                            : "issue_state");
    if (s.state_from != "labels" && s.state_from != "project" && s.state_from != "issue_state")
        throw Error("github-tracker: state_from must be labels, project or issue_state", VIK_INVALID_ARGUMENT);
    if (s.state_from == "labels" && s.state_labels.empty())
        throw Error("github-tracker: state_from labels needs state_labels (a map from label to state)", VIK_INVALID_ARGUMENT);
    if (s.state_from == "project" && s.project_owner.empty())
        throw Error("github-tracker: state_from project needs project: {owner, number}", VIK_INVALID_ARGUMENT);
    if (s.repos.empty() && s.state_from != "project")
        throw Error("github-tracker: 'repos' (a list of owner/name) is required", VIK_INVALID_ARGUMENT);
    return s;
}

class Tracker {
  public:
    Tracker(const vik_host_api *host, Settings s)
        : host_(host), s_(std::move(s)), ids_(repo_names(s_)),
          client_(s_.api_url, token(),
                  [host](int level, const std::string &m) { vik::sdk::log(host, level, "github-tracker: " + m); }) {}

    json::array pull(Clock::time_point deadline) {
        if (s_.state_from == "project") return project_issues(deadline, nullptr);
        json::array out;
        for (const auto &repo : s_.repos) {
            std::string path = "/repos/" + repo.full + "/issues?state=open&per_page=100";
            if (!s_.required_labels.empty()) {
                std::string labels;
                for (auto &l : s_.required_labels)
                    labels += (labels.empty() ? "" : ",") + vik::github::url_encode(l);
                path += "&labels=" + labels;
            }
            if (!s_.assignee.empty()) path += "&assignee=" + vik::github::url_encode(s_.assignee);
            for (auto &item : client_.get_all(path, deadline)) {
                auto issue = to_issue(item.as_object(), repo, false);
                if (issue) out.push_back(std::move(*issue));
            }
        }
        return out;
    }

    json::array fetch(const std::vector<std::string> &ids, Clock::time_point deadline) {
        if (s_.state_from == "project") {
            std::set<std::string> wanted(ids.begin(), ids.end());
            return project_issues(deadline, &wanted);
        }
        json::array out;
        for (const auto &id : ids) {
            auto ref = ids_.parse(id);
            if (!ref) { // not an issue of this tracker: absent, like an issue that no longer exists
                vik::sdk::log(host_, VIK_LOG_WARN, "github-tracker: fetch: " + ref.error());
                continue;
            }
            json::value item = client_.get("/repos/" + ref->repo + "/issues/" + ref->number, deadline);
            if (item.is_null() || !item.is_object()) continue;
            auto issue = to_issue(item.as_object(), Repo{ref->repo}, true);
            if (issue) out.push_back(std::move(*issue));
        }
        return out;
    }

    void set_state(const std::string &id, const std::string &state, Clock::time_point deadline) {
        IssueRef ref = locate(id);
        std::string base = "/repos/" + ref.repo + "/issues/" + ref.number;
        if (s_.state_from == "issue_state") {
            if (state != "open" && state != "closed")
                throw Error("github-tracker: with state_from issue_state the states are open and closed, not '" + state + "'",
                            VIK_INVALID_ARGUMENT);
            client_.send("PATCH", base, json::serialize(json::object{{"state", state}}), deadline);
            return;
        }
        if (s_.state_from == "project") {
            set_project_status(ref, state, deadline, true);
            return;
        }
        std::string target;
        std::string known;
        for (auto &[label, st] : s_.state_labels) {
            known += (known.empty() ? "" : ", ") + st;
            if (st == state && target.empty()) target = label;
        }
        if (target.empty())
            throw Error("github-tracker: no label in issues.tracker.state_labels stands for state '" + state +
                            "' (known: " + known + ")",
                        VIK_INVALID_ARGUMENT);
        json::value issue = client_.get(base, deadline);
        if (issue.is_null()) throw Error("github-tracker: issue " + id + " does not exist in " + ref.repo, VIK_NOT_FOUND);
        bool has_target = false;
        for (auto &name : label_names(issue.as_object())) {
            if (name == target)
                has_target = true;
            else if (is_state_label(name))
                client_.send("DELETE", base + "/labels/" + vik::github::url_encode(name), "", deadline);
        }
        if (!has_target)
            client_.send("POST", base + "/labels", json::serialize(json::object{{"labels", json::array{json::string(target)}}}),
                         deadline);
    }

    void comment(const std::string &id, const std::string &body, Clock::time_point deadline) {
        IssueRef ref = locate(id);
        // In project mode the board is the tracker's scope: an issue of a configured repository
        // that is not on it is not ours to comment on.
        if (s_.state_from == "project") item_for(ref, deadline);
        client_.send("POST", "/repos/" + ref.repo + "/issues/" + ref.number + "/comments",
                     json::serialize(json::object{{"body", body}}), deadline);
    }

  private:
    std::string token() const {
        const char *t = std::getenv(s_.token_env.c_str());
        if (!t || !*t) {
            vik::sdk::log(host_, VIK_LOG_WARN,
                          "github-tracker: $" + s_.token_env +
                              " is not set; calling GitHub without a token (low rate limits, public repositories only)");
            return "";
        }
        return t;
    }

    static std::vector<std::string> repo_names(const Settings &s) {
        std::vector<std::string> out;
        for (const auto &r : s.repos)
            out.push_back(r.full);
        return out;
    }

    // Issue ids: the number alone with one repository (vik's GitHub flow), else owner/name#number.
    std::string id_for(const Repo &repo, int64_t number) const { return ids_.id_for(repo.full, number); }

    // The issue an id names; ids outside the configured repositories are refused (they come
    // from agents and go into API paths).
    IssueRef locate(const std::string &id) const {
        auto ref = ids_.parse(id);
        if (!ref) throw Error("github-tracker: " + ref.error(), VIK_INVALID_ARGUMENT);
        return *ref;
    }

    static std::vector<std::string> label_names(const json::object &issue) {
        std::vector<std::string> out;
        if (auto *ls = issue.if_contains("labels"); ls && ls->is_array())
            for (auto &l : ls->get_array()) {
                if (l.is_string())
                    out.emplace_back(l.get_string());
                else if (l.is_object() && l.as_object().contains("name") && l.as_object().at("name").is_string())
                    out.emplace_back(l.as_object().at("name").get_string());
            }
        return out;
    }

    bool is_state_label(const std::string &name) const {
        for (auto &[label, st] : s_.state_labels)
            if (label == name) return true;
        return false;
    }

    bool passes_filters(const std::vector<std::string> &labels, const std::vector<std::string> &assignees) const {
        for (auto &r : s_.required_labels)
            if (std::find(labels.begin(), labels.end(), r) == labels.end()) return false;
        for (auto &x : s_.excluded_labels)
            if (std::find(labels.begin(), labels.end(), x) != labels.end()) return false;
        if (!s_.assignee.empty() && std::find(assignees.begin(), assignees.end(), s_.assignee) == assignees.end()) return false;
        return true;
    }

    static std::string str(const json::object &o, const char *k) {
        auto *v = o.if_contains(k);
        return v && v->is_string() ? std::string(v->get_string()) : "";
    }

    // A REST issue as vik-host issue JSON; nullopt when it is not a candidate.
    std::optional<json::object> to_issue(const json::object &item, const Repo &repo, bool for_fetch) const {
        if (item.contains("pull_request")) return std::nullopt; // pull requests are never issues
        int64_t number = item.contains("number") && item.at("number").is_int64() ? item.at("number").get_int64() : 0;
        if (number == 0) return std::nullopt;
        auto labels = label_names(item);
        std::vector<std::string> assignees;
        if (auto *as = item.if_contains("assignees"); as && as->is_array())
            for (auto &a : as->get_array())
                if (a.is_object()) assignees.push_back(str(a.as_object(), "login"));
        if (!for_fetch && !passes_filters(labels, assignees)) return std::nullopt;
        std::string state;
        std::string gh_state = str(item, "state");
        if (s_.state_from == "issue_state") {
            state = gh_state;
        } else if (gh_state == "closed") {
            state = "closed"; // a closed issue has left every label state
        } else {
            std::vector<std::string> found;
            for (auto &l : labels)
                for (auto &[label, st] : s_.state_labels)
                    if (l == label) found.push_back(st);
            if (found.size() == 1)
                state = found[0];
            else if (!for_fetch) {
                if (found.size() > 1)
                    vik::sdk::log(host_, VIK_LOG_WARN,
                                  "github-tracker: issue " + id_for(repo, number) + " has " + std::to_string(found.size()) +
                                      " state labels; skipped until it has exactly one");
                return std::nullopt;
            }
        }
        json::array label_arr, assignee_arr;
        for (auto &l : labels)
            label_arr.push_back(json::string(l));
        for (auto &a : assignees)
            assignee_arr.push_back(json::string(a));
        json::object user = item.contains("user") && item.at("user").is_object() ? item.at("user").as_object() : json::object();
        return json::object{{"id", id_for(repo, number)},
                            {"title", str(item, "title")},
                            {"description", str(item, "body")},
                            {"state", state},
                            {"number", number},
                            {"url", str(item, "html_url")},
                            {"labels", label_arr},
                            {"assignees", assignee_arr},
                            {"author", str(user, "login")},
                            {"created_at", str(item, "created_at")},
                            {"updated_at", str(item, "updated_at")},
                            {"repo", repo.full}};
    }

    // ---- Projects v2 -----------------------------------------------------------------------

    // The Status field's ids, cached across calls: a set-state with a warm cache is one mutation.
    struct StatusField {
        std::string project_id, field_id;
        std::vector<std::pair<std::string, std::string>> options; // name, option id (board order)
        std::string option_id(const std::string &name) const {
            for (const auto &[n, id] : options)
                if (n == name) return id;
            return "";
        }
    };

    std::string owner_field() const { return s_.project_owner_type == "user" ? "user" : "organization"; }

    std::string board_name() const { return "project " + std::to_string(s_.project_number) + " of '" + s_.project_owner + "'"; }

    std::string items_query() const {
        return "query($owner: String!, $number: Int!, $field: String!, $after: String) { " + owner_field() +
               "(login: $owner) { projectV2(number: $number) { "
               "items(first: 100, after: $after) { pageInfo { hasNextPage endCursor } nodes { id isArchived "
               "fieldValueByName(name: $field) { ... on ProjectV2ItemFieldSingleSelectValue { name } } "
               "content { ... on Issue { number title body url state createdAt updatedAt repository { nameWithOwner } "
               "author { login } labels(first: 50) { nodes { name } } assignees(first: 20) { nodes { login } } } } } } } } }";
    }

    std::string field_query() const {
        return "query($owner: String!, $number: Int!, $field: String!) { " + owner_field() +
               "(login: $owner) { projectV2(number: $number) { id "
               "field(name: $field) { ... on ProjectV2SingleSelectField { id options { id name } } } } } }";
    }

    json::value project(const json::value &data) const {
        const char *owner = s_.project_owner_type == "user" ? "user" : "organization";
        if (!data.is_object() || !data.as_object().contains(owner) || !data.as_object().at(owner).is_object())
            throw GithubError("GitHub project owner '" + s_.project_owner + "' not found");
        auto &p = data.as_object().at(owner).as_object();
        if (!p.contains("projectV2") || !p.at("projectV2").is_object())
            throw GithubError("GitHub project " + std::to_string(s_.project_number) + " of '" + s_.project_owner + "' not found");
        return p.at("projectV2");
    }

    // Every project item that is an issue (of the configured repos, when any), with its Status.
    // Candidates (wanted == nullptr): open, with a status, not archived, through the filters.
    // With `wanted`, those ids whatever their status (archived items stay absent: they left the
    // board's working set). With `stop_at`, paging ends once that issue's item is seen. Every
    // scan records issue id -> item id for set-state.
    json::array project_issues(Clock::time_point deadline, const std::set<std::string> *wanted,
                               const std::string *stop_at = nullptr) {
        json::array out;
        std::map<std::string, std::string> seen; // issue id -> item id
        bool complete = false;
        json::value after = nullptr;
        for (int page = 0; page < 100 && !complete; ++page) {
            json::object vars{
                {"owner", s_.project_owner}, {"number", s_.project_number}, {"field", s_.status_field}, {"after", after}};
            json::value proj = project(client_.graphql(items_query(), vars, deadline));
            const auto &items = proj.as_object().at("items").as_object();
            bool stopped = false;
            for (auto &node : items.at("nodes").as_array()) {
                if (!node.is_object()) continue;
                const auto &n = node.as_object();
                if (!n.contains("content") || !n.at("content").is_object() || !n.at("content").as_object().contains("number"))
                    continue;
                const auto &c = n.at("content").as_object();
                std::string repo = c.contains("repository") ? str(c.at("repository").as_object(), "nameWithOwner") : "";
                if (!s_.repos.empty()) {
                    repo = ids_.configured(repo); // GitHub names ignore case; ids use the configured spelling
                    if (repo.empty()) continue;
                }
                int64_t number = c.at("number").is_int64() ? c.at("number").get_int64() : 0;
                std::string id = id_for(Repo{repo}, number);
                seen[id] = str(n, "id");
                if (stop_at && id == *stop_at) {
                    stopped = true;
                    break;
                }
                bool archived = n.contains("isArchived") && n.at("isArchived").is_bool() && n.at("isArchived").get_bool();
                std::string status;
                if (auto *f = n.if_contains("fieldValueByName"); f && f->is_object()) status = str(f->as_object(), "name");
                std::vector<std::string> labels, assignees;
                if (auto *l = c.if_contains("labels"); l && l->is_object())
                    for (auto &x : l->as_object().at("nodes").as_array())
                        labels.push_back(str(x.as_object(), "name"));
                if (auto *a = c.if_contains("assignees"); a && a->is_object())
                    for (auto &x : a->as_object().at("nodes").as_array())
                        assignees.push_back(str(x.as_object(), "login"));
                if (wanted) {
                    if (!wanted->count(id) || archived) continue;
                } else if (archived || status.empty() || str(c, "state") == "CLOSED" || !passes_filters(labels, assignees)) {
                    continue;
                }
                json::array la, aa;
                for (auto &x : labels)
                    la.push_back(json::string(x));
                for (auto &x : assignees)
                    aa.push_back(json::string(x));
                std::string author =
                    c.contains("author") && c.at("author").is_object() ? str(c.at("author").as_object(), "login") : "";
                out.push_back(json::object{{"id", id},
                                           {"title", str(c, "title")},
                                           {"description", str(c, "body")},
                                           {"state", status},
                                           {"number", number},
                                           {"url", str(c, "url")},
                                           {"labels", la},
                                           {"assignees", aa},
                                           {"author", author},
                                           {"created_at", str(c, "createdAt")},
                                           {"updated_at", str(c, "updatedAt")},
                                           {"repo", repo},
                                           {"project_item_id", str(n, "id")}});
            }
            if (stopped) break;
            const auto &info = items.at("pageInfo").as_object();
            if (!info.at("hasNextPage").is_bool() || !info.at("hasNextPage").get_bool())
                complete = true;
            else
                after = info.at("endCursor");
        }
        std::lock_guard lock(mutex_);
        // A scan of the whole board replaces the map, so items removed from the board are forgotten.
        if (complete)
            item_ids_ = std::move(seen);
        else
            item_ids_.merge(seen);
        return out;
    }

    std::string known_item(const std::string &id) {
        std::lock_guard lock(mutex_);
        auto it = item_ids_.find(id);
        return it == item_ids_.end() ? "" : it->second;
    }

    // The project item of an issue: from the last scan, else by paging the board (set-state
    // before any pull, or an issue added since). Refused when the issue is not on the board.
    std::string item_for(const IssueRef &ref, Clock::time_point deadline) {
        std::string id = id_for(Repo{ref.repo}, std::stoll(ref.number));
        if (std::string item = known_item(id); !item.empty()) return item;
        std::set<std::string> none;
        project_issues(deadline, &none, &id);
        std::string item = known_item(id);
        if (item.empty())
            throw Error("github-tracker: issue " + ref.repo + "#" + ref.number + " is not on " + board_name(), VIK_NOT_FOUND);
        return item;
    }

    // The Status field, from the cache when it knows `state` (an option added on the board since
    // is found by asking again).
    StatusField status_field(const std::string &state, Clock::time_point deadline, bool &from_cache) {
        {
            std::lock_guard lock(mutex_);
            from_cache = field_ && !field_->option_id(state).empty();
            if (from_cache) return *field_;
        }
        json::object vars{{"owner", s_.project_owner}, {"number", s_.project_number}, {"field", s_.status_field}};
        json::value proj = project(client_.graphql(field_query(), vars, deadline));
        const auto &p = proj.as_object();
        if (!p.contains("field") || !p.at("field").is_object() || !p.at("field").as_object().contains("options"))
            throw Error("github-tracker: " + board_name() + " has no single-select field named '" + s_.status_field + "'",
                        VIK_INVALID_ARGUMENT);
        const auto &field = p.at("field").as_object();
        StatusField f{str(p, "id"), str(field, "id"), {}};
        for (auto &o : field.at("options").as_array())
            f.options.emplace_back(str(o.as_object(), "name"), str(o.as_object(), "id"));
        std::lock_guard lock(mutex_);
        field_ = f;
        return f;
    }

    // Cost: one mutation with the field cached and the item known from a pull; one more query
    // for a cold field cache; paging the board only for an item never seen.
    void set_project_status(const IssueRef &ref, const std::string &state, Clock::time_point deadline, bool may_retry) {
        bool field_cached = false;
        StatusField field = status_field(state, deadline, field_cached);
        std::string option_id = field.option_id(state);
        if (option_id.empty()) {
            std::string known;
            for (const auto &[name, id] : field.options)
                known += (known.empty() ? "" : ", ") + name;
            throw Error("github-tracker: the project's " + s_.status_field + " field has no option '" + state +
                            "' (options: " + known + ")",
                        VIK_INVALID_ARGUMENT);
        }
        std::string id = id_for(Repo{ref.repo}, std::stoll(ref.number));
        bool was_known = !known_item(id).empty();
        std::string item_id = item_for(ref, deadline);
        std::string mutation =
            "mutation($project: ID!, $item: ID!, $field: ID!, $option: String!) { updateProjectV2ItemFieldValue(input: "
            "{projectId: $project, "
            "itemId: $item, fieldId: $field, value: {singleSelectOptionId: $option}}) { projectV2Item { id } } }";
        try {
            client_.graphql(
                mutation,
                json::object{{"project", field.project_id}, {"item", item_id}, {"field", field.field_id}, {"option", option_id}},
                deadline);
        } catch (const GraphqlError &e) {
            // GitHub refused the ids: the board changed since they were cached (item removed or
            // re-added, field edited). Setting a field value is idempotent: look both up afresh once.
            {
                std::lock_guard lock(mutex_);
                item_ids_.erase(id);
                field_.reset();
            }
            if (!may_retry || !(was_known || field_cached)) throw;
            vik::sdk::log(host_, VIK_LOG_INFO,
                          "github-tracker: set-state " + id + ": " + e.what() + "; looking the project item and field up again");
            set_project_status(ref, state, deadline, false);
        }
    }

    const vik_host_api *host_;
    Settings s_;
    IssueIds ids_;
    GithubClient client_;
    // Worker threads call pull, fetch and writes concurrently: the caches below are shared.
    std::mutex mutex_;
    std::map<std::string, std::string> item_ids_; // issue id -> project item id, from the last scans
    std::optional<StatusField> field_;
};

Clock::time_point deadline_in(uint32_t timeout_ms) { return Clock::now() + std::chrono::milliseconds(timeout_ms); }

// GitHub failures keep their text; a 401/403 says what to check.
template <class F> vik_status call(vik_errbuf *err, F &&f) {
    return vik::sdk::guarded(err, [&]() -> vik_status {
        try {
            return f();
        } catch (const GithubError &e) {
            std::string msg = e.what();
            if (e.status == 401) msg += " (check the token in issues.tracker.token_env)";
            throw Error("github-tracker: " + msg);
        }
    });
}

vik_status create(const vik_host_api *host, const char *settings_json, void **out, vik_errbuf *err) {
    return vik::sdk::guarded(err, [&] {
        *out = new Tracker(host, parse_settings(settings_json));
        return VIK_OK;
    });
}

void destroy(void *instance) { delete static_cast<Tracker *>(instance); }

vik_status pull(void *instance, uint32_t timeout_ms, const vik_sink *out, vik_errbuf *err) {
    return call(err, [&] {
        vik::sdk::write(out, json::serialize(static_cast<Tracker *>(instance)->pull(deadline_in(timeout_ms))));
        return VIK_OK;
    });
}

vik_status fetch(void *instance, const char *ids_json, uint32_t timeout_ms, const vik_sink *out, vik_errbuf *err) {
    return call(err, [&] {
        json::value ids = json::parse(ids_json);
        std::vector<std::string> list;
        if (ids.is_array())
            for (auto &v : ids.as_array())
                if (v.is_string()) list.emplace_back(v.get_string());
        vik::sdk::write(out, json::serialize(static_cast<Tracker *>(instance)->fetch(list, deadline_in(timeout_ms))));
        return VIK_OK;
    });
}

vik_status set_state(void *instance, const char *id, const char *state, uint32_t timeout_ms, vik_errbuf *err) {
    return call(err, [&] {
        static_cast<Tracker *>(instance)->set_state(id, state, deadline_in(timeout_ms));
        return VIK_OK;
    });
}

vik_status comment(void *instance, const char *id, const char *body, uint32_t timeout_ms, vik_errbuf *err) {
    return call(err, [&] {
        static_cast<Tracker *>(instance)->comment(id, body, deadline_in(timeout_ms));
        return VIK_OK;
    });
}

const vik_tracker_v1 tracker = {sizeof(vik_tracker_v1), create, destroy, pull, fetch, set_state, comment};

const void *get_interface(const char *id) { return std::strcmp(id, VIK_TRACKER_V1) == 0 ? &tracker : nullptr; }

} // namespace

VIK_PLUGIN("github-tracker", "0.2.0", "GitHub issues: labels, Projects v2 status or open/closed as state", get_interface);
