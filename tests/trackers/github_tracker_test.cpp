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

json::object gh_issue(int64_t number, const std::string &title, std::vector<std::string> labels, const std::string &state = "open",
                      bool pull_request = false) {
    json::array ls;
    for (auto &l : labels) ls.push_back(json::object{{"name", l}});
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
    FakeGithub(const json::object &data, const json::array &faults = {}) {
        write_file(dir / "data.json", json::serialize(data));
        write_file(dir / "faults.json", json::serialize(faults));
        pid = fork();
        if (pid == 0) {
            setpgid(0, 0);
            std::string script = (source_dir() / "tests/trackers/fake_github.py").string();
            execlp("python3", "python3", script.c_str(), "--port-file", (dir / "port").c_str(), "--data", (dir / "data.json").c_str(),
                   "--state", (dir / "state.json").c_str(), "--log", (dir / "requests.log").c_str(), "--faults",
                   (dir / "faults.json").c_str(), static_cast<char *>(nullptr));
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
    json::value state() const { return json::parse(read_file(dir / "state.json")); }
    std::vector<json::object> requests() const {
        std::vector<json::object> out;
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
    for (int n = 1; n <= 230; ++n) issues.push_back(gh_issue(n, "issue " + std::to_string(n), {"vik:plan"}));
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
    for (auto &i : got) CHECK(i.at("number") != 301);
    auto reqs = gh.requests();
    REQUIRE(reqs.size() == 3);
    CHECK_THAT(std::string(reqs[0].at("query").as_string()), Catch::Contains("per_page=100"));
    CHECK_THAT(std::string(reqs[2].at("query").as_string()), Catch::Contains("page=3"));
    CHECK(reqs[0].at("auth") == "Bearer ghp_testtoken_abc");
}

TEST_CASE("github: unchanged pages are answered 304 from the ETag cache", "[github]") {
    json::array issues;
    for (int n = 1; n <= 150; ++n) issues.push_back(gh_issue(n, "i", {"vik:plan"}));
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
    FakeGithub gh(json::object{{"repos", json::object{{"acme/app", json::array{gh_issue(1, "one", {"vik:plan"})}}}}},
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
    FakeGithub gh(json::object{{"repos", json::object{{"acme/app", json::array{gh_issue(1, "one", {"vik:plan"})}}}}},
                  json::array{json::object{{"match", "GET /repos/acme/app/issues"}, {"status", 403}, {"times", 1}, {"reset_in", 600}}});
    auto t = tracker(label_settings(gh));
    auto r = t->pull(3000);
    REQUIRE_FALSE(r);
    CHECK_THAT(r.error().message, Catch::Contains("GitHub rate limit exhausted; it resets in"));
}

TEST_CASE("github: secondary limits with retry-after are honoured", "[github]") {
    FakeGithub gh(json::object{{"repos", json::object{{"acme/app", json::array{gh_issue(1, "one", {"vik:plan"})}}}}},
                  json::array{json::object{{"match", "GET /repos/acme/app/issues"}, {"status", 429}, {"times", 1},
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
    CHECK_THAT(bad.error().message, Catch::Contains("no label in issues.tracker.state_labels stands for state 'nowhere' (known: plan, build, review)"));
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
    FakeGithub gh(json::object{{"repos", json::object{{"acme/app", json::array{gh_issue(1, "one", {"agent"}), blocked, gh_issue(3, "no agent label", {})}},
                                                      {"acme/lib", json::array{gh_issue(9, "lib issue", {"agent"})}}}}});
    auto t = tracker(json::object{{"repos", json::array{"acme/app", "acme/lib"}}, {"api_url", gh.url()}, {"token_env", "VIK_TEST_GH_TOKEN"},
                                  {"required_labels", json::array{"agent"}}, {"excluded_labels", json::array{"blocked"}}, {"assignee", "dev1"}});
    auto got = pull(*t);
    REQUIRE(got.size() == 2);
    CHECK(got[0].at("id") == "acme/app#1");
    CHECK(got[0].at("state") == "open");
    CHECK(got[1].at("id") == "acme/lib#9");
    REQUIRE(t->set_state("acme/lib#9", "closed", 10000));
    CHECK(gh.issue("acme/lib", 9).at("state") == "closed");
}

TEST_CASE("github: a Projects v2 Status is the state, and set-state moves the item", "[github]") {
    json::object project{{"id", "PVT_1"},
                         {"field_id", "FIELD_1"},
                         {"options", json::object{{"Todo", "opt_todo"}, {"In Progress", "opt_prog"}, {"Done", "opt_done"}}},
                         {"items", json::array{json::object{{"id", "ITEM_1"}, {"repo", "acme/app"}, {"number", 1}, {"status", "Todo"}},
                                               json::object{{"id", "ITEM_2"}, {"repo", "acme/app"}, {"number", 2}, {"status", "In Progress"}},
                                               json::object{{"id", "ITEM_3"}, {"repo", "acme/app"}, {"number", 3}, {"status", nullptr}}}}};
    FakeGithub gh(json::object{{"repos", json::object{{"acme/app", json::array{gh_issue(1, "one", {}), gh_issue(2, "two", {}), gh_issue(3, "three", {})}}}},
                               {"project", project}});
    auto t = tracker(json::object{{"repos", json::array{"acme/app"}}, {"api_url", gh.url()}, {"token_env", "VIK_TEST_GH_TOKEN"},
                                  {"project", json::object{{"owner", "acme"}, {"number", 7}}}});
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
                        "\"$VIK_HOST_BIN\" issue set-state \"$VIK_ISSUE_ID\" \"$next\" >/dev/null || exit 3\n"
                        "\"$VIK_HOST_BIN\" issue comment \"$VIK_ISSUE_ID\" \"$VIK_ISSUE_STAGE done\" >/dev/null || exit 4\n"
                        "echo '{\"kind\":\"completed\"}'\n");
    write_file(p.workflow(), "loop: {max_iterations: 3}\n"
                             "agents:\n  bot: {runtime: scripted, model: none, settings: {command: " + (p.dir / "agent.sh").string() + "}}\n"
                             "issues:\n  tracker:\n    kind: github\n    repos: [acme/app]\n    api_url: " + gh.url() +
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
