// github-tracker: GitHub issues as a vik-host tracker.
//
// State models: `labels` (a map from label to state; an issue with exactly one state label has
// that state), `project` (the single-select Status field of a Projects v2 board, over GraphQL),
// or `issue_state` (open / closed). Pull requests are never issues. Reads are conditional
// (ETag) and paginated; writes swap state labels, set the project Status, reopen/close, or
// comment. The token comes from the environment variable named by `token_env` and is never
// logged. See docs/trackers/github.md.
#include "github_client.hpp"

#include <vik/plugin.hpp>

#include <boost/json.hpp>

#include <cstdlib>
#include <cstring>
#include <set>

namespace {

namespace json = boost::json;
using vik::github::Clock;
using vik::github::GithubClient;
using vik::github::GithubError;
using vik::sdk::Error;

struct Repo {
    std::string full; // owner/name
};

struct Settings {
    std::vector<Repo> repos;
    std::string api_url = "https://api.github.com";
    std::string token_env = "GITHUB_TOKEN";
    std::string state_from; // labels | project | issue_state
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
        if (v->is_string()) out.emplace_back(v->get_string());
        else if (v->is_array())
            for (auto &x : v->get_array())
                if (x.is_string()) out.emplace_back(x.get_string());
                else throw Error(std::string("github-tracker: '") + key + "' must be a list of strings", VIK_INVALID_ARGUMENT);
        else throw Error(std::string("github-tracker: '") + key + "' must be a string or a list of strings", VIK_INVALID_ARGUMENT);
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
    for (auto &r : strings(o, "repos")) s.repos.push_back({r});
    for (auto &r : strings(o, "repo")) s.repos.push_back({r});
    for (auto &r : s.repos)
        if (r.full.find('/') == std::string::npos || r.full.front() == '/' || r.full.back() == '/')
            throw Error("github-tracker: repository '" + r.full + "' must be written owner/name", VIK_INVALID_ARGUMENT);
    s.api_url = string_setting(o, "api_url", s.api_url);
    s.token_env = string_setting(o, "token_env", s.token_env);
    if (auto *sl = o.if_contains("state_labels")) {
        if (!sl->is_object()) throw Error("github-tracker: 'state_labels' must map label names to states", VIK_INVALID_ARGUMENT);
        for (auto &kv : sl->get_object()) {
            if (!kv.value().is_string()) throw Error("github-tracker: state_labels." + std::string(kv.key()) + " must be a state name", VIK_INVALID_ARGUMENT);
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
    s.state_from = string_setting(o, "state_from", !s.project_owner.empty() ? "project" : !s.state_labels.empty() ? "labels" : "issue_state");
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
        : host_(host), s_(std::move(s)),
          client_(s_.api_url, token(), [host](int level, const std::string &m) { vik::sdk::log(host, level, "github-tracker: " + m); }) {}

    json::array pull(Clock::time_point deadline) {
        if (s_.state_from == "project") return project_issues(deadline, nullptr);
        json::array out;
        for (const auto &repo : s_.repos) {
            std::string path = "/repos/" + repo.full + "/issues?state=open&per_page=100";
            if (!s_.required_labels.empty()) {
                std::string labels;
                for (auto &l : s_.required_labels) labels += (labels.empty() ? "" : ",") + vik::github::url_encode(l);
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
            auto [repo, number] = locate(id);
            json::value item = client_.get("/repos/" + repo.full + "/issues/" + number, deadline);
            if (item.is_null() || !item.is_object()) continue;
            auto issue = to_issue(item.as_object(), repo, true);
            if (issue) out.push_back(std::move(*issue));
        }
        return out;
    }

    void set_state(const std::string &id, const std::string &state, Clock::time_point deadline) {
        auto [repo, number] = locate(id);
        std::string base = "/repos/" + repo.full + "/issues/" + number;
        if (s_.state_from == "issue_state") {
            if (state != "open" && state != "closed")
                throw Error("github-tracker: with state_from issue_state the states are open and closed, not '" + state + "'",
                            VIK_INVALID_ARGUMENT);
            client_.send("PATCH", base, json::serialize(json::object{{"state", state}}), deadline);
            return;
        }
        if (s_.state_from == "project") {
            set_project_status(repo, number, state, deadline);
            return;
        }
        std::string target;
        std::string known;
        for (auto &[label, st] : s_.state_labels) {
            known += (known.empty() ? "" : ", ") + st;
            if (st == state && target.empty()) target = label;
        }
        if (target.empty())
            throw Error("github-tracker: no label in issues.tracker.state_labels stands for state '" + state + "' (known: " + known + ")",
                        VIK_INVALID_ARGUMENT);
        json::value issue = client_.get(base, deadline);
        if (issue.is_null()) throw Error("github-tracker: issue " + id + " does not exist in " + repo.full, VIK_NOT_FOUND);
        bool has_target = false;
        for (auto &name : label_names(issue.as_object())) {
            if (name == target) has_target = true;
            else if (is_state_label(name))
                client_.send("DELETE", base + "/labels/" + vik::github::url_encode(name), "", deadline);
        }
        if (!has_target) client_.send("POST", base + "/labels", json::serialize(json::object{{"labels", json::array{json::string(target)}}}), deadline);
    }

    void comment(const std::string &id, const std::string &body, Clock::time_point deadline) {
        auto [repo, number] = locate(id);
        client_.send("POST", "/repos/" + repo.full + "/issues/" + number + "/comments", json::serialize(json::object{{"body", body}}), deadline);
    }

private:
    std::string token() const {
        const char *t = std::getenv(s_.token_env.c_str());
        if (!t || !*t) {
            vik::sdk::log(host_, VIK_LOG_WARN,
                          "github-tracker: $" + s_.token_env + " is not set; calling GitHub without a token (low rate limits, public repositories only)");
            return "";
        }
        return t;
    }

    bool single_repo() const { return s_.repos.size() == 1; }

    // Issue ids: the number alone with one repository (vik's GitHub flow), else owner/name#number.
    std::string id_for(const Repo &repo, int64_t number) const {
        return single_repo() ? std::to_string(number) : repo.full + "#" + std::to_string(number);
    }

    std::pair<Repo, std::string> locate(const std::string &id) const {
        auto hash = id.rfind('#');
        std::string number = hash == std::string::npos ? id : id.substr(hash + 1);
        if (number.empty() || number.find_first_not_of("0123456789") != std::string::npos)
            throw Error("github-tracker: '" + id + "' is not an issue id of this tracker (expected a number or owner/name#number)",
                        VIK_INVALID_ARGUMENT);
        if (hash == std::string::npos) {
            if (s_.repos.empty()) throw Error("github-tracker: issue ids need owner/name#number when no repos are configured", VIK_INVALID_ARGUMENT);
            return {s_.repos.front(), number};
        }
        return {Repo{id.substr(0, hash)}, number};
    }

    static std::vector<std::string> label_names(const json::object &issue) {
        std::vector<std::string> out;
        if (auto *ls = issue.if_contains("labels"); ls && ls->is_array())
            for (auto &l : ls->get_array()) {
                if (l.is_string()) out.emplace_back(l.get_string());
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
            if (found.size() == 1) state = found[0];
            else if (!for_fetch) {
                if (found.size() > 1)
                    vik::sdk::log(host_, VIK_LOG_WARN, "github-tracker: issue " + id_for(repo, number) + " has " + std::to_string(found.size()) +
                                                           " state labels; skipped until it has exactly one");
                return std::nullopt;
            }
        }
        json::array label_arr, assignee_arr;
        for (auto &l : labels) label_arr.push_back(json::string(l));
        for (auto &a : assignees) assignee_arr.push_back(json::string(a));
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

    std::string project_query(bool with_fields) const {
        std::string owner = s_.project_owner_type == "user" ? "user" : "organization";
        std::string fields = with_fields ? "id field(name: $field) { ... on ProjectV2SingleSelectField { id options { id name } } } " : "";
        return "query($owner: String!, $number: Int!, $field: String!, $after: String) { " + owner +
               "(login: $owner) { projectV2(number: $number) { " + fields +
               "items(first: 100, after: $after) { pageInfo { hasNextPage endCursor } nodes { id "
               "fieldValueByName(name: $field) { ... on ProjectV2ItemFieldSingleSelectValue { name } } "
               "content { ... on Issue { number title body url state createdAt updatedAt repository { nameWithOwner } "
               "author { login } labels(first: 50) { nodes { name } } assignees(first: 20) { nodes { login } } } } } } } } }";
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
    json::array project_issues(Clock::time_point deadline, const std::set<std::string> *wanted, std::string *item_id_for = nullptr,
                               const std::string &want_repo = "", const std::string &want_number = "") {
        json::array out;
        json::value after = nullptr;
        for (int page = 0; page < 100; ++page) {
            json::object vars{{"owner", s_.project_owner}, {"number", s_.project_number}, {"field", s_.status_field}, {"after", after}};
            json::value proj = project(client_.graphql(project_query(false), vars, deadline));
            const auto &items = proj.as_object().at("items").as_object();
            for (auto &node : items.at("nodes").as_array()) {
                if (!node.is_object()) continue;
                const auto &n = node.as_object();
                if (!n.contains("content") || !n.at("content").is_object() || !n.at("content").as_object().contains("number")) continue;
                const auto &c = n.at("content").as_object();
                std::string repo = c.contains("repository") ? str(c.at("repository").as_object(), "nameWithOwner") : "";
                if (!s_.repos.empty() && std::none_of(s_.repos.begin(), s_.repos.end(), [&](const Repo &r) { return r.full == repo; })) continue;
                int64_t number = c.at("number").is_int64() ? c.at("number").get_int64() : 0;
                if (item_id_for && repo == want_repo && std::to_string(number) == want_number) *item_id_for = str(n, "id");
                std::string status;
                if (auto *f = n.if_contains("fieldValueByName"); f && f->is_object()) status = str(f->as_object(), "name");
                std::vector<std::string> labels, assignees;
                if (auto *l = c.if_contains("labels"); l && l->is_object())
                    for (auto &x : l->as_object().at("nodes").as_array()) labels.push_back(str(x.as_object(), "name"));
                if (auto *a = c.if_contains("assignees"); a && a->is_object())
                    for (auto &x : a->as_object().at("nodes").as_array()) assignees.push_back(str(x.as_object(), "login"));
                Repo r{repo};
                std::string id = single_repo() ? std::to_string(number) : repo + "#" + std::to_string(number);
                if (wanted) {
                    if (!wanted->count(id)) continue;
                } else if (status.empty() || str(c, "state") == "CLOSED" || !passes_filters(labels, assignees)) {
                    continue;
                }
                json::array la, aa;
                for (auto &x : labels) la.push_back(json::string(x));
                for (auto &x : assignees) aa.push_back(json::string(x));
                std::string author = c.contains("author") && c.at("author").is_object() ? str(c.at("author").as_object(), "login") : "";
                out.push_back(json::object{{"id", id}, {"title", str(c, "title")}, {"description", str(c, "body")}, {"state", status},
                                           {"number", number}, {"url", str(c, "url")}, {"labels", la}, {"assignees", aa}, {"author", author},
                                           {"created_at", str(c, "createdAt")}, {"updated_at", str(c, "updatedAt")}, {"repo", repo},
                                           {"project_item_id", str(n, "id")}});
            }
            const auto &info = items.at("pageInfo").as_object();
            if (!info.at("hasNextPage").is_bool() || !info.at("hasNextPage").get_bool()) break;
            after = info.at("endCursor");
        }
        return out;
    }

    void set_project_status(const Repo &repo, const std::string &number, const std::string &state, Clock::time_point deadline) {
        json::object vars{{"owner", s_.project_owner}, {"number", s_.project_number}, {"field", s_.status_field}, {"after", nullptr}};
        json::value proj = project(client_.graphql(project_query(true), vars, deadline));
        const auto &p = proj.as_object();
        std::string project_id = str(p, "id");
        if (!p.contains("field") || !p.at("field").is_object())
            throw Error("github-tracker: the project has no single-select field named '" + s_.status_field + "'", VIK_INVALID_ARGUMENT);
        const auto &field = p.at("field").as_object();
        std::string option_id, known;
        for (auto &o : field.at("options").as_array()) {
            std::string name = str(o.as_object(), "name");
            known += (known.empty() ? "" : ", ") + name;
            if (name == state) option_id = str(o.as_object(), "id");
        }
        if (option_id.empty())
            throw Error("github-tracker: the project's " + s_.status_field + " field has no option '" + state + "' (options: " + known + ")",
                        VIK_INVALID_ARGUMENT);
        std::string item_id;
        project_issues(deadline, nullptr, &item_id, repo.full, number);
        if (item_id.empty()) throw Error("github-tracker: issue " + repo.full + "#" + number + " is not on the project", VIK_NOT_FOUND);
        std::string mutation =
            "mutation($project: ID!, $item: ID!, $field: ID!, $option: String!) { updateProjectV2ItemFieldValue(input: {projectId: $project, "
            "itemId: $item, fieldId: $field, value: {singleSelectOptionId: $option}}) { projectV2Item { id } } }";
        client_.graphql(mutation, json::object{{"project", project_id}, {"item", item_id}, {"field", str(field, "id")}, {"option", option_id}},
                        deadline);
    }

    const vik_host_api *host_;
    Settings s_;
    GithubClient client_;
};

Clock::time_point deadline_in(uint32_t timeout_ms) { return Clock::now() + std::chrono::milliseconds(timeout_ms); }

// GitHub failures keep their text; a 401/403 says what to check.
template <class F>
vik_status call(vik_errbuf *err, F &&f) {
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
