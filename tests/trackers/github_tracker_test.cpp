// The github-tracker plugin against a fake GitHub on 127.0.0.1 (tests/trackers/fake_github.py),
// loaded through the real loader: pagination, ETag, rate limits, retries, pull requests, state
// labels, Projects status, writes, secrets; and end to end through `vik-host run`.
#include "e2e/e2e_support.hpp"
#include "plugins/instances.hpp"
#include "plugins/registry.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <csignal>
#include <cstdlib>
#include <sys/wait.h>
#include <unistd.h>

using namespace vik::test;
namespace fs = std::filesystem;
namespace json = boost::json;
using namespace std::chrono_literals;

namespace {

json::object gh_issue(int64_t number, const std::string &title, std::vector<std::string> labels,
                      const std::string &state = "open", bool pull_request = false) {
    json::array ls;
    for (auto &l : labels)
        ls.push_back(json::object{{"name", l}});
    json::object o{{"number", number},
                   {"title", title},
                   {"body", "body of " + title},
                   {"state", state},
                   {"html_url", "https://github.com/acme/app/issues/" + std::to_string(number)},
                   {"labels", ls},
                   {"assignees", json::array{json::object{{"login", "dev1"}}}},
                   {"user", json::object{{"login", "reporter"}}},
                   {"created_at", "2026-01-0" + std::to_string(1 + number % 9) + "T00:00:00Z"},
                   {"updated_at", "2026-02-01T00:00:00Z"}};
    if (pull_request) o["pull_request"] = json::object{{"url", "x"}};
    return o;
}

struct FakeGithub {
    TempDir dir;
    pid_t pid = -1;
    int port = 0;
    // `extra`: more fake_github.py options, e.g. {"--page-delay-ms", "500"}.
    FakeGithub(const json::object &data, const json::array &faults = {}, const std::vector<std::string> &extra = {}) {
        write_file(dir / "data.json", json::serialize(data));
        write_file(dir / "faults.json", json::serialize(faults));
        std::vector<std::string> args = {"python3",     (source_dir() / "tests/trackers/fake_github.py").string(),
                                         "--port-file", (dir / "port").string(),
                                         "--data",      (dir / "data.json").string(),
                                         "--state",     (dir / "state.json").string(),
                                         "--log",       (dir / "requests.log").string(),
                                         "--faults",    (dir / "faults.json").string()};
        args.insert(args.end(), extra.begin(), extra.end());
        std::vector<char *> argv;
        for (auto &a : args)
            argv.push_back(a.data());
        argv.push_back(nullptr);
        pid = fork();
        if (pid == 0) {
            setpgid(0, 0);
            execvp("python3", argv.data());
            _exit(127);
        }
        REQUIRE(wait_until([&] { return fs::exists(dir / "port"); }, 10s));
        port = std::stoi(read_file(dir / "port"));
    }
    ~FakeGithub() {
        ::kill(-pid, SIGKILL);
        waitpid(pid, nullptr, 0);
    }
    std::string url() const { return "http://127.0.0.1:" + std::to_string(port); }
    // Someone edits the board behind the tracker's back (POST /_fake/project, not logged).
    void edit_project(const json::object &project) const {
        write_file(dir / "edit.json", json::serialize(project));
        std::string post = "import sys, urllib.request; urllib.request.urlopen(urllib.request.Request(sys.argv[1], "
                           "data=open(sys.argv[2], 'rb').read(), method='POST'))";
        std::string cmd = "python3 -c " + shell_quote(post) + " " + shell_quote(url() + "/_fake/project") + " " +
                          shell_quote((dir / "edit.json").string());
        REQUIRE(std::system(cmd.c_str()) == 0);
    }
    json::value state() const { return json::parse(read_file(dir / "state.json")); }
    std::vector<json::object> requests() const {
        std::vector<json::object> out;
        if (!fs::exists(dir / "requests.log")) return out;
        std::string text = read_file(dir / "requests.log");
        size_t start = 0, nl;
        while ((nl = text.find('\n', start)) != std::string::npos) {
            out.push_back(json::parse(text.substr(start, nl - start)).as_object());
            start = nl + 1;
        }
        return out;
    }
    json::object issue(const std::string &repo, int64_t number) const {
        json::value all = state(); // named: iterating a temporary's member would dangle
        for (auto &i : all.at("repos").at(repo).as_array())
            if (i.at("number") == number) return i.as_object();
        FAIL("no issue " << number);
        return {};
    }
};

std::unique_ptr<vik::plugins::TrackerInstance> tracker(const json::object &settings) {
    static auto registry = vik::plugins::load_plugins({plugin_dir()});
    auto t = vik::plugins::TrackerInstance::create(registry.find_tracker("github"), json::serialize(settings));
    if (!t) FAIL(t.error().message);
    return std::move(*t);
}

json::object label_settings(const FakeGithub &gh) {
    return json::object{{"repos", json::array{"acme/app"}},
                        {"api_url", gh.url()},
                        {"token_env", "VIK_TEST_GH_TOKEN"},
                        {"state_labels", json::object{{"vik:plan", "plan"}, {"vik:build", "build"}, {"vik:review", "review"}}}};
}

json::array pull(vik::plugins::TrackerInstance &t, uint32_t timeout_ms = 20000) {
    auto r = t.pull(timeout_ms);
    if (!r) FAIL(r.error().message);
    return json::parse(*r).as_array();
}

} // namespace

TEST_CASE("github: labels give states, pull requests, unlabeled and doubly labeled issues are not candidates", "[github]") {
    json::array issues;
    for (int n = 1; n <= 230; ++n)
        issues.push_back(gh_issue(n, "issue " + std::to_string(n), {"vik:plan"}));
    issues.push_back(gh_issue(301, "a pull request", {"vik:plan"}, "open", true));
    issues.push_back(gh_issue(302, "no state label", {"bug"}));
    issues.push_back(gh_issue(303, "two state labels", {"vik:plan", "vik:build"}));
    issues.push_back(gh_issue(304, "building", {"vik:build", "ui"}));
    issues.push_back(gh_issue(305, "closed", {"vik:plan"}, "closed"));
    ::setenv("VIK_TEST_GH_TOKEN", "ghp_testtoken_abc", 1);
    FakeGithub gh(json::object{{"repos", json::object{{"acme/app", issues}}}});
    auto t = tracker(label_settings(gh));
    auto got = pull(*t);
    CHECK(got.size() == 231); // 230 + #304: three pages of 100
    json::object building;
    for (auto &i : got)
        if (i.at("number") == 304) building = i.as_object();
    REQUIRE_FALSE(building.empty());
    CHECK(building.at("id") == "304");
    CHECK(building.at("state") == "build");
    CHECK(building.at("title") == "building");
    CHECK(building.at("description") == "body of building");
    CHECK(building.at("url") == "https://github.com/acme/app/issues/304");
    CHECK(building.at("labels") == json::array{"vik:build", "ui"});
    CHECK(building.at("assignees") == json::array{"dev1"});
    CHECK(building.at("author") == "reporter");
    CHECK(building.at("repo") == "acme/app");
    CHECK(building.at("created_at").as_string().size() == 20);
    for (auto &i : got)
        CHECK(i.at("number") != 301);
    auto reqs = gh.requests();
    REQUIRE(reqs.size() == 3);
    CHECK_THAT(std::string(reqs[0].at("query").as_string()), Catch::Contains("per_page=100"));
    CHECK_THAT(std::string(reqs[2].at("query").as_string()), Catch::Contains("page=3"));
    CHECK(reqs[0].at("auth") == "Bearer ghp_testtoken_abc");
}

TEST_CASE("github: unchanged pages are answered 304 from the ETag cache", "[github]") {
    json::array issues;
    for (int n = 1; n <= 150; ++n)
        issues.push_back(gh_issue(n, "i", {"vik:plan"}));
    FakeGithub gh(json::object{{"repos", json::object{{"acme/app", issues}}}});
    auto t = tracker(label_settings(gh));
    auto first = pull(*t);
    auto second = pull(*t);
    CHECK(first == second);
    CHECK(first.size() == 150);
    auto reqs = gh.requests();
    REQUIRE(reqs.size() == 4);
    CHECK(reqs[2].at("if_none_match").is_string());
    CHECK(reqs[2].at("status") == 304);
    CHECK(reqs[3].at("status") == 304);
}

TEST_CASE("github: a 502 is retried, a rate-limit 403 waits for the reset", "[github]") {
    FakeGithub gh(
        json::object{{"repos", json::object{{"acme/app", json::array{gh_issue(1, "one", {"vik:plan"})}}}}},
        json::array{json::object{{"match", "GET /repos/acme/app/issues"}, {"status", 502}, {"times", 1}},
                    json::object{{"match", "GET /repos/acme/app/issues"}, {"status", 403}, {"times", 1}, {"reset_in", 2}}});
    auto t = tracker(label_settings(gh));
    auto started = std::chrono::steady_clock::now();
    auto got = pull(*t);
    CHECK(got.size() == 1);
    CHECK(std::chrono::steady_clock::now() - started >= 1s); // it waited for the reset
    auto reqs = gh.requests();
    REQUIRE(reqs.size() == 3);
    CHECK(reqs[0].at("status") == 502);
    CHECK(reqs[1].at("status") == 403);
    CHECK(reqs[2].at("status") == 200);
}

TEST_CASE("github: a rate limit that outlasts the call's timeout fails the pull clearly", "[github]") {
    FakeGithub gh(
        json::object{{"repos", json::object{{"acme/app", json::array{gh_issue(1, "one", {"vik:plan"})}}}}},
        json::array{json::object{{"match", "GET /repos/acme/app/issues"}, {"status", 403}, {"times", 1}, {"reset_in", 600}}});
    auto t = tracker(label_settings(gh));
    auto r = t->pull(3000);
    REQUIRE_FALSE(r);
    CHECK_THAT(r.error().message, Catch::Contains("GitHub rate limit exhausted; it resets in"));
}

TEST_CASE("github: secondary limits with retry-after are honoured", "[github]") {
    FakeGithub gh(json::object{{"repos", json::object{{"acme/app", json::array{gh_issue(1, "one", {"vik:plan"})}}}}},
                  json::array{json::object{{"match", "GET /repos/acme/app/issues"},
                                           {"status", 429},
                                           {"times", 1},
                                           {"headers", json::object{{"retry-after", "1"}}}}});
    auto t = tracker(label_settings(gh));
    CHECK(pull(*t).size() == 1);
    CHECK(gh.requests().size() == 2);
}

TEST_CASE("github: set-state swaps state labels and comments reach the issue", "[github]") {
    FakeGithub gh(json::object{{"repos", json::object{{"acme/app", json::array{gh_issue(7, "seven", {"vik:plan", "bug"})}}}}});
    auto t = tracker(label_settings(gh));
    REQUIRE(t->set_state("7", "build", 10000));
    auto issue = gh.issue("acme/app", 7);
    CHECK(issue.at("labels") == json::parse(R"([{"name":"bug"},{"name":"vik:build"}])"));
    REQUIRE(t->comment("7", "plan written", 10000));
    CHECK(gh.issue("acme/app", 7).at("comments_list") == json::array{"plan written"});
    auto bad = t->set_state("7", "nowhere", 10000);
    REQUIRE_FALSE(bad);
    CHECK_THAT(
        bad.error().message,
        Catch::Contains("no label in issues.tracker.state_labels stands for state 'nowhere' (known: plan, build, review)"));
    auto missing = t->set_state("99", "build", 10000);
    REQUIRE_FALSE(missing);
    CHECK(missing.error().status == VIK_NOT_FOUND);
}

TEST_CASE("github: fetch by id sees closed issues as closed and skips missing ones", "[github]") {
    FakeGithub gh(json::object{{"repos", json::object{{"acme/app", json::array{gh_issue(1, "one", {"vik:plan"}, "closed"),
                                                                               gh_issue(2, "two", {"vik:review"})}}}}});
    auto t = tracker(label_settings(gh));
    auto r = t->fetch(R"(["1","2","404"])", 10000);
    REQUIRE(r);
    auto got = json::parse(*r).as_array();
    REQUIRE(got.size() == 2);
    CHECK(got[0].at("state") == "closed");
    CHECK(got[1].at("state") == "review");
}

TEST_CASE("github: open/closed as state, with label and assignee filters and several repos", "[github]") {
    auto blocked = gh_issue(2, "blocked one", {"agent", "blocked"});
    FakeGithub gh(json::object{{"repos", json::object{{"acme/app", json::array{gh_issue(1, "one", {"agent"}), blocked,
                                                                               gh_issue(3, "no agent label", {})}},
                                                      {"acme/lib", json::array{gh_issue(9, "lib issue", {"agent"})}}}}});
    auto t = tracker(json::object{{"repos", json::array{"acme/app", "acme/lib"}},
                                  {"api_url", gh.url()},
                                  {"token_env", "VIK_TEST_GH_TOKEN"},
                                  {"required_labels", json::array{"agent"}},
                                  {"excluded_labels", json::array{"blocked"}},
                                  {"assignee", "dev1"}});
    auto got = pull(*t);
    REQUIRE(got.size() == 2);
    CHECK(got[0].at("id") == "acme/app#1");
    CHECK(got[0].at("state") == "open");
    CHECK(got[1].at("id") == "acme/lib#9");
    REQUIRE(t->set_state("acme/lib#9", "closed", 10000));
    CHECK(gh.issue("acme/lib", 9).at("state") == "closed");
}

namespace {

json::object project_item(const std::string &id, int64_t number, const json::value &status, bool archived = false,
                          const std::string &repo = "acme/app") {
    return json::object{{"id", id}, {"repo", repo}, {"number", number}, {"status", status}, {"archived", archived}};
}

json::object board(json::array items, int64_t page_size = 2) {
    return json::object{{"id", "PVT_1"},
                        {"field_id", "FIELD_1"},
                        {"options", json::object{{"Todo", "opt_todo"}, {"In Progress", "opt_prog"}, {"Done", "opt_done"}}},
                        {"page_size", page_size},
                        {"items", std::move(items)}};
}

json::object project_settings(const FakeGithub &gh, json::array repos = {"acme/app"}) {
    json::object o{
        {"api_url", gh.url()}, {"token_env", "VIK_TEST_GH_TOKEN"}, {"project", json::object{{"owner", "acme"}, {"number", 7}}}};
    if (!repos.empty()) o["repos"] = std::move(repos);
    return o;
}

// GraphQL requests logged from index `from` on, by operation ("items", "field", "mutation").
std::vector<std::string> graphql_ops(const FakeGithub &gh, size_t from) {
    std::vector<std::string> out;
    auto reqs = gh.requests();
    for (size_t i = from; i < reqs.size(); ++i)
        if (reqs[i].at("path") == "/graphql") out.emplace_back(reqs[i].at("op").as_string());
    return out;
}

using Ops = std::vector<std::string>;

} // namespace

TEST_CASE("github: ids outside the configured repositories or not in the tracker's form are refused before any request",
          "[github][security]") {
    FakeGithub gh(json::object{{"repos", json::object{{"acme/app", json::array{gh_issue(1, "one", {})}},
                                                      {"acme/lib", json::array{gh_issue(9, "nine", {})}},
                                                      {"evil/app", json::array{gh_issue(1, "theirs", {})}}}}});
    auto t = tracker(
        json::object{{"repos", json::array{"acme/app", "acme/lib"}}, {"api_url", gh.url()}, {"token_env", "VIK_TEST_GH_TOKEN"}});
    const std::string configured = "configured repositories (acme/app, acme/lib)";
    struct Case {
        std::string id, shown, why;
    };
    std::string long_id = "acme/app#" + std::string(5000, '1');
    std::vector<Case> cases = {
        {"evil/app#1", "'evil/app#1'", "repository evil/app is not among the " + configured},
        {"acme/app2#1", "'acme/app2#1'", "repository acme/app2 is not among the " + configured},
        {"../acme/app#1", "'../acme/app#1'", "not an issue id of this tracker"},
        {"acme/app/../../evil/app#1", "'acme/app/../../evil/app#1'", "not an issue id of this tracker"},
        {"acme/..#1", "'acme/..#1'", "not an issue id of this tracker"},
        {"acme/app%2F..#1", "'acme/app%2F..#1'", "not an issue id of this tracker"},
        {"acme/app#0", "'acme/app#0'", "not an issue id of this tracker"},
        {"acme/app#01", "'acme/app#01'", "not an issue id of this tracker"},
        {"acme/app#+1", "'acme/app#+1'", "not an issue id of this tracker"},
        {"acme/app#-1", "'acme/app#-1'", "not an issue id of this tracker"},
        {"acme/app#1a", "'acme/app#1a'", "not an issue id of this tracker"},
        {"acme/app#1#2", "'acme/app#1#2'", "not an issue id of this tracker"},
        {"acme/app#99999999999", "'acme/app#99999999999'", "not an issue id of this tracker"},
        {"acme/app#", "'acme/app#'", "not an issue id of this tracker"},
        {"#1", "'#1'", "not an issue id of this tracker"},
        {"1", "'1'", "not an issue id of this tracker"}, // with several repositories the repository is part of the id
        {"", "''", "not an issue id of this tracker"},
        {" acme/app#1", "' acme/app#1'", "not an issue id of this tracker"},
        {"acme/app#1 ", "'acme/app#1 '", "not an issue id of this tracker"},
        {"acme/app #1", "'acme/app #1'", "not an issue id of this tracker"},
        {"acme/app#1\n", "'acme/app#1\\x0A'", "not an issue id of this tracker"},
        {"acme/app#1\tx", "'acme/app#1\\x09x'", "not an issue id of this tracker"},
        {long_id, "' (5009 bytes)", "too long for an issue id"},
    };
    for (const auto &c : cases) {
        INFO("id: " << c.shown);
        auto moved = t->set_state(c.id, "closed", 10000);
        REQUIRE_FALSE(moved);
        CHECK(moved.error().status == VIK_INVALID_ARGUMENT);
        CHECK_THAT(moved.error().message,
                   Catch::Contains("refusing issue id '") && Catch::Contains(c.shown) && Catch::Contains(c.why));
        CHECK_THAT(moved.error().message, Catch::Contains("acme/app, acme/lib"));
        CHECK(moved.error().message.size() < 600); // a 5000-byte id is not echoed back
        auto commented = t->comment(c.id, "hello", 10000);
        REQUIRE_FALSE(commented);
        CHECK_THAT(commented.error().message, Catch::Contains("refusing issue id '") && Catch::Contains(c.why));
    }
    // Refused ids are absent from fetch, like issues that do not exist.
    auto fetched = t->fetch(R"(["evil/app#1","acme/app#0","acme/lib#9"])", 10000);
    REQUIRE(fetched);
    auto got = json::parse(*fetched).as_array();
    REQUIRE(got.size() == 1);
    CHECK(got[0].at("id") == "acme/lib#9");
    auto reqs = gh.requests();
    REQUIRE(reqs.size() == 1); // none of the refused ids reached GitHub
    CHECK(reqs[0].at("path") == "/repos/acme/lib/issues/9");
    CHECK(gh.issue("evil/app", 1).at("state") == "open");
    // GitHub names ignore case: the configured repository in another spelling is the same one.
    REQUIRE(t->comment("Acme/Lib#9", "same repository", 10000));
    CHECK(gh.issue("acme/lib", 9).at("comments_list") == json::array{"same repository"});
}

TEST_CASE("github: with one repository an id is the bare issue number", "[github][security]") {
    FakeGithub gh(json::object{{"repos", json::object{{"acme/app", json::array{gh_issue(1, "one", {"vik:plan"})}},
                                                      {"evil/app", json::array{gh_issue(1, "theirs", {"vik:plan"})}}}}});
    auto t = tracker(label_settings(gh));
    for (std::string id : {"0", "01", "+1", "1a", " 1", "1 ", "../1", "1/../2", "0x1", "2147483648"}) {
        INFO("id: " << id);
        auto r = t->set_state(id, "build", 10000);
        REQUIRE_FALSE(r);
        CHECK_THAT(r.error().message, Catch::Contains("not an issue id of this tracker; expected the issue number N") &&
                                          Catch::Contains("of the configured repository acme/app"));
    }
    auto other = t->set_state("evil/app#1", "build", 10000);
    REQUIRE_FALSE(other);
    CHECK_THAT(other.error().message,
               Catch::Contains("refusing issue id 'evil/app#1': repository evil/app is not the configured repository acme/app"));
    auto longform = t->comment("acme/app#1", "x", 10000);
    REQUIRE_FALSE(longform);
    CHECK_THAT(longform.error().message, Catch::Contains("ids are the issue number alone: use '1'"));
    CHECK(gh.requests().empty());
    REQUIRE(t->set_state("1", "build", 10000));
    CHECK(gh.issue("evil/app", 1).at("labels") == json::parse(R"([{"name":"vik:plan"}])"));
}

TEST_CASE("github: repositories in the settings must be owner/name in GitHub's alphabet", "[github][security]") {
    static auto registry = vik::plugins::load_plugins({plugin_dir()});
    for (std::string repo : {"acme", "acme/../evil", "acme/app/x", "-acme/app", "acme/ app", "acme/.."}) {
        INFO("repo: " << repo);
        auto t = vik::plugins::TrackerInstance::create(registry.find_tracker("github"),
                                                       json::serialize(json::object{{"repos", json::array{json::string(repo)}}}));
        REQUIRE_FALSE(t);
        CHECK_THAT(t.error().message, Catch::Contains("in issues.tracker.repos must be written owner/name"));
    }
}

TEST_CASE("github: a Projects v2 Status is the state, and set-state moves the item", "[github]") {
    FakeGithub gh(json::object{{"repos", json::object{{"acme/app", json::array{gh_issue(1, "one", {}), gh_issue(2, "two", {}),
                                                                               gh_issue(3, "three", {})}}}},
                               {"project", board({project_item("ITEM_1", 1, "Todo"), project_item("ITEM_2", 2, "In Progress"),
                                                  project_item("ITEM_3", 3, nullptr)})}});
    auto t = tracker(project_settings(gh));
    auto got = pull(*t);
    REQUIRE(got.size() == 2); // item 3 has no status
    CHECK(got[0].at("state") == "Todo");
    CHECK(got[0].at("project_item_id") == "ITEM_1");
    CHECK(got[1].at("state") == "In Progress");
    REQUIRE(t->set_state("1", "Done", 10000));
    CHECK(gh.state().at("project").at("items").at(0).at("status") == "Done");
    auto bad = t->set_state("1", "Shipped", 10000);
    REQUIRE_FALSE(bad);
    CHECK_THAT(bad.error().message, Catch::Contains("has no option 'Shipped' (options: Todo, In Progress, Done)"));
}

TEST_CASE("github: archived project items are never candidates", "[github]") {
    FakeGithub gh(json::object{
        {"repos",
         json::object{{"acme/app", json::array{gh_issue(1, "one", {}), gh_issue(2, "archived", {}), gh_issue(3, "three", {})}}}},
        {"project", board({project_item("ITEM_1", 1, "Todo"), project_item("ITEM_2", 2, "Todo", true),
                           project_item("ITEM_3", 3, "Todo")})}});
    auto t = tracker(project_settings(gh));
    auto got = pull(*t);
    REQUIRE(got.size() == 2);
    CHECK(got[0].at("id") == "1");
    CHECK(got[1].at("id") == "3");
    // Fetched by id (a running issue being reconciled), an archived item is absent: it left the board.
    auto r = t->fetch(R"(["1","2"])", 10000);
    REQUIRE(r);
    auto fetched = json::parse(*r).as_array();
    REQUIRE(fetched.size() == 1);
    CHECK(fetched[0].at("id") == "1");
    // The query asks GitHub for the flag (a real GitHub answers only the fields asked for).
    CHECK(graphql_ops(gh, 0) == Ops{"items", "items", "items", "items"});
}

TEST_CASE("github: a project set-state after a pull is one field query and one mutation, then one mutation", "[github]") {
    json::array issues, items;
    for (int n = 1; n <= 6; ++n) {
        issues.push_back(gh_issue(n, "issue " + std::to_string(n), {}));
        items.push_back(project_item("ITEM_" + std::to_string(n), n, "Todo"));
    }
    FakeGithub gh(json::object{{"repos", json::object{{"acme/app", issues}}}, {"project", board(items)}});
    auto t = tracker(project_settings(gh));
    REQUIRE(pull(*t).size() == 6);
    size_t mark = gh.requests().size();
    CHECK(graphql_ops(gh, 0) == Ops{"items", "items", "items"}); // three pages of two
    REQUIRE(t->set_state("5", "In Progress", 10000));
    CHECK(graphql_ops(gh, mark) == Ops{"field", "mutation"});
    mark = gh.requests().size();
    REQUIRE(t->set_state("6", "Done", 10000));
    REQUIRE(t->set_state("5", "Done", 10000));
    CHECK(graphql_ops(gh, mark) == Ops{"mutation", "mutation"}); // the field is cached, the items known
    auto state = gh.state();
    CHECK(state.at("project").at("items").at(4).at("status") == "Done");
    CHECK(state.at("project").at("items").at(5).at("status") == "Done");
    CHECK(state.at("project").at("items").at(0).at("status") == "Todo");
}

TEST_CASE("github: a project item re-added since the pull is looked up again, and one removed is refused", "[github]") {
    json::array issues;
    for (int n = 1; n <= 3; ++n)
        issues.push_back(gh_issue(n, "issue " + std::to_string(n), {}));
    FakeGithub gh(json::object{{"repos", json::object{{"acme/app", issues}}},
                               {"project", board({project_item("ITEM_1", 1, "Todo"), project_item("ITEM_2", 2, "Todo"),
                                                  project_item("ITEM_3", 3, "Todo")})}});
    auto t = tracker(project_settings(gh));
    REQUIRE(pull(*t).size() == 3);
    REQUIRE(t->set_state("1", "In Progress", 10000)); // warms the field cache
    // Item 1 removed and added back (a new item id), item 2 removed.
    gh.edit_project(board({project_item("ITEM_1b", 1, "In Progress"), project_item("ITEM_3", 3, "Todo")}));
    size_t mark = gh.requests().size();
    REQUIRE(t->set_state("1", "Done", 10000));
    CHECK(graphql_ops(gh, mark) == Ops{"mutation", "field", "items", "mutation"});
    CHECK(gh.state().at("project").at("items").at(0).at("status") == "Done");
    auto gone = t->set_state("2", "Done", 10000);
    REQUIRE_FALSE(gone);
    CHECK(gone.error().status == VIK_NOT_FOUND);
    CHECK_THAT(gone.error().message, Catch::Contains("issue acme/app#2 is not on project 7 of 'acme'"));
}

TEST_CASE("github: a project set-state before any pull pages the board only up to the item", "[github]") {
    json::array issues, items;
    for (int n = 1; n <= 6; ++n) {
        issues.push_back(gh_issue(n, "issue " + std::to_string(n), {}));
        items.push_back(project_item("ITEM_" + std::to_string(n), n, "Todo"));
    }
    issues.push_back(gh_issue(9, "not on the board", {}));
    FakeGithub gh(json::object{{"repos", json::object{{"acme/app", issues}}}, {"project", board(items)}});
    auto t = tracker(project_settings(gh));
    REQUIRE(t->set_state("3", "Done", 10000));
    CHECK(graphql_ops(gh, 0) == Ops{"field", "items", "items", "mutation"}); // item 3 is on the second page
    CHECK(gh.state().at("project").at("items").at(2).at("status") == "Done");
    size_t mark = gh.requests().size();
    REQUIRE(t->set_state("1", "Done", 10000)); // seen while paging
    CHECK(graphql_ops(gh, mark) == Ops{"mutation"});
    // An issue of the repository that is not on the board is outside the tracker: refused.
    mark = gh.requests().size();
    auto off = t->set_state("9", "Done", 10000);
    REQUIRE_FALSE(off);
    CHECK(off.error().status == VIK_NOT_FOUND);
    CHECK_THAT(off.error().message, Catch::Contains("issue acme/app#9 is not on project 7 of 'acme'"));
    auto comment = t->comment("9", "hello", 10000);
    REQUIRE_FALSE(comment);
    CHECK_THAT(comment.error().message, Catch::Contains("issue acme/app#9 is not on project 7 of 'acme'"));
    for (auto &r : gh.requests())
        CHECK(r.at("path") != "/repos/acme/app/issues/9/comments");
}

TEST_CASE("github: the token never appears in errors", "[github][security]") {
    ::setenv("VIK_TEST_GH_TOKEN", "ghp_never_show_me", 1);
    FakeGithub gh(json::object{{"repos", json::object{{"acme/app", json::array{}}}}},
                  json::array{json::object{{"match", "GET /repos/acme/app/issues"}, {"status", 401}, {"times", 1}}});
    auto t = tracker(label_settings(gh));
    auto r = t->pull(5000);
    REQUIRE_FALSE(r);
    CHECK_THAT(r.error().message, Catch::Contains("HTTP 401"));
    CHECK_THAT(r.error().message, Catch::Contains("check the token in issues.tracker.token_env"));
    CHECK(r.error().message.find("ghp_never_show_me") == std::string::npos);
}

TEST_CASE("github: end to end, an agent's set-state reaches GitHub and the next cycle runs the next stage", "[github][e2e]") {
    FakeGithub gh(json::object{{"repos", json::object{{"acme/app", json::array{gh_issue(5, "five", {"vik:plan"})}}}}});
    Project p;
    p.agent("agent.sh", "#!/bin/sh\ncat >/dev/null\nenv > agent-env-$VIK_ISSUE_STAGE.txt\n"
                        "case \"$VIK_ISSUE_STAGE\" in plan) next=build ;; build) next=review ;; esac\n"
                        // The comment first: once the state moved, the next pull may stop this run.
                        "\"$VIK_HOST_BIN\" issue comment \"$VIK_ISSUE_ID\" \"$VIK_ISSUE_STAGE done\" >/dev/null || exit 4\n"
                        "\"$VIK_HOST_BIN\" issue set-state \"$VIK_ISSUE_ID\" \"$next\" >/dev/null || exit 3\n"
                        "echo '{\"kind\":\"completed\"}'\n");
    write_file(
        p.workflow(),
        "loop: {max_iterations: 3}\n"
        "agents:\n  bot: {runtime: scripted, model: none, settings: {command: " +
            (p.dir / "agent.sh").string() +
            "}}\n"
            "issues:\n  tracker:\n    kind: github\n    repos: [acme/app]\n    api_url: " +
            gh.url() +
            "\n    token_env: VIK_TEST_GH_TOKEN\n    state_labels: {'vik:plan': plan, 'vik:build': build, 'vik:review': review}\n"
            "  pull: {idle_sec: 1}\n"
            "issue:\n  stages:\n    plan: {when: {state: plan}, agent: bot, prompt: 'plan #{{ issue.number }}'}\n"
            "    build: {when: {state: build}, agent: bot, prompt: 'build {{ issue.url }}'}\n");
    auto r = run_host({"run", p.workflow().string()}, p.dir.path, {"VIK_TEST_GH_TOKEN=ghp_e2e_secret"});
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    auto issue = gh.issue("acme/app", 5);
    CHECK(issue.at("labels") == json::parse(R"([{"name":"vik:review"}])"));
    CHECK(issue.at("comments_list") == json::array{"plan done", "build done"});
    CHECK(p.session_files("5").size() == 2);
    CHECK(read_file(p.workspace("5") / "agent-env-plan.txt").find("ghp_e2e_secret") == std::string::npos);
    CHECK(r.out.find("ghp_e2e_secret") == std::string::npos);
    for (auto &e : fs::recursive_directory_iterator(p.scoped() / "logs"))
        CHECK(read_file(e.path()).find("ghp_e2e_secret") == std::string::npos);
}

// The race of issue 11: a pull reads its pages slowly; meanwhile agents dispatched by the
// previous cycle move their items from Todo to In Progress through the host and finish. A page
// read before such a move still says Todo when the pull returns; the host must trust its own
// write over that older observation and never dispatch the item again. Needs the scheduler's
// "observations older than the host's own write never override it"; run alone with
// `vik_tests "[race]"`.
TEST_CASE("github: agents moving their items to In Progress while slow pulls are in flight are dispatched exactly once",
          "[github][e2e][race]") {
    json::array issues, items;
    std::vector<int> candidates, archived;
    for (int n = 1; n <= 150; ++n) {
        issues.push_back(gh_issue(n, "issue " + std::to_string(n), {}));
        bool is_archived = n % 30 == 0; // on both pages
        items.push_back(project_item("ITEM_" + std::to_string(n), n, "Todo", is_archived));
        (is_archived ? archived : candidates).push_back(n);
    }
    FakeGithub gh(json::object{{"repos", json::object{{"acme/app", issues}}}, {"project", board(items, 100)}}, {},
                  {"--page-delay-ms", "800"});
    Project p;
    p.agent("agent.sh", "#!/bin/sh\ncat >/dev/null\n"
                        "\"$VIK_HOST_BIN\" issue set-state \"$VIK_ISSUE_ID\" \"In Progress\" >/dev/null || exit 3\n"
                        "echo '{\"kind\":\"completed\"}'\n");
    write_file(p.workflow(),
               "loop: {max_iterations: 4, max_issue_concurrency: 200}\n"
               "agents:\n  bot: {runtime: scripted, model: none, settings: {command: " +
                   (p.dir / "agent.sh").string() +
                   "}}\n"
                   "issues:\n  tracker:\n    kind: github\n    repos: [acme/app]\n    api_url: " +
                   gh.url() +
                   "\n    token_env: VIK_TEST_GH_TOKEN\n    project: {owner: acme, number: 7}\n"
                   "  pull: {idle_sec: 1, timeout_sec: 60}\n"
                   "issue:\n  stages:\n    work: {when: {state: Todo}, agent: bot, prompt: 'work on {{ issue.id }}'}\n");
    auto r = run_host({"run", p.workflow().string()}, p.dir.path, {"VIK_TEST_GH_TOKEN=ghp_race"}, 240);
    INFO(r.err.substr(0, 4000));
    REQUIRE(r.exit_code == 0);
    // The board really is two pages, and pulls overlapped the agents' writes.
    size_t pages = 0, mutations = 0;
    for (auto &req : gh.requests()) {
        if (req.at("path") == "/graphql" && req.at("op") == "items") ++pages;
        if (req.at("path") == "/graphql" && req.at("op") == "mutation") ++mutations;
    }
    CHECK(pages == 8);                     // four cycles of two pages; no set-state paged the board
    CHECK(mutations == candidates.size()); // one write per agent
    json::value state = gh.state();
    const auto &board_items = state.at("project").at("items").as_array();
    for (int n : candidates) {
        INFO("issue " << n);
        CHECK(count(r.out, "launching stages issue_id=" + std::to_string(n) + " state=") == 1);
        CHECK(p.session_files(std::to_string(n)).size() == 1);
        CHECK(board_items.at(static_cast<size_t>(n - 1)).at("status") == "In Progress");
    }
    for (int n : archived) {
        INFO("archived issue " << n);
        CHECK(count(r.out, "launching stages issue_id=" + std::to_string(n) + " state=") == 0);
        CHECK(p.session_files(std::to_string(n)).empty());
        CHECK(board_items.at(static_cast<size_t>(n - 1)).at("status") == "Todo");
    }
}
