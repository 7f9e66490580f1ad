// Issue intake JSON of vik-compat §3.
#include "orchestrator/issue.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <random>

using vik::orchestrator::parse_issues;

TEST_CASE("intake: aliases, defaults and extra fields", "[intake]") {
    auto r = parse_issues(R"([
      {"id":"A-1","title":"one","state":"todo"},
      {"identifier":"A-2","title":"two","status":"doing","desc":"d2","labels":["x"],"priority":2,"meta":{"k":1}}
    ])");
    REQUIRE(r);
    REQUIRE(r->issues.size() == 2);
    CHECK(r->issues[0].description.empty());
    CHECK(r->issues[0].fields.at("description") == "");
    CHECK(r->issues[1].id == "A-2");
    CHECK(r->issues[1].state == "doing");
    CHECK(r->issues[1].description == "d2");
    CHECK(r->issues[1].fields.at("labels").as_array().size() == 1);
    CHECK(r->issues[1].fields.at("meta").at("k") == 1);
    CHECK(*r->issues[1].priority == 2);
    CHECK_FALSE(r->issues[1].fields.contains("identifier"));
}

TEST_CASE("intake: duplicate ids keep the first with a warning", "[intake]") {
    auto r = parse_issues(R"([{"id":"A","title":"first","state":"s"},{"id":"A","title":"second","state":"s"}])");
    REQUIRE(r);
    REQUIRE(r->issues.size() == 1);
    CHECK(r->issues[0].title == "first");
    REQUIRE(r->warnings.size() == 1);
    CHECK(r->warnings[0] == "duplicate issue id 'A' at index 1 ignored (the first one wins)");
}

TEST_CASE("intake: a bad element is skipped with a warning naming its index and id, the others go on", "[intake]") {
    struct Row {
        const char *json, *msg;
    };
    const char *good = R"({"id":"OK-1","title":"fine","state":"todo"})";
    for (Row row : std::initializer_list<Row>{
             {R"({"id":1,"title":"t","state":"s"})", "issue at index 0: field `id` must be a string, found a number"},
             {R"({"title":"t","state":"s"})", "issue at index 0: missing field `id`"},
             {R"({"id":"a","identifier":"b","title":"t","state":"s"})",
              "issue at index 0: both `id` and its alias `identifier` are set"},
             {R"({"id":"a","title":"t","state":"s","status":"x"})", "issue 'a' at index 0: both `state` and its alias `status`"},
             {R"({"id":"a","state":"s"})", "issue 'a' at index 0: missing field `title`"},
             {R"({"id":"a","title":"t"})", "issue 'a' at index 0: missing field `state`"},
             {R"({"id":"a","title":["t"],"state":"s"})", "issue 'a' at index 0: field `title` must be a string, found an array"},
             {R"({"id":"a","title":"t","state":"s","desc":5})",
              "issue 'a' at index 0: field `desc` must be a string, found a number"},
             {R"({"id":"","title":"t","state":"s"})", "issue at index 0: field `id` is empty"},
             {"{\"id\":\"a\xff\",\"title\":\"t\",\"state\":\"s\"}", "issue at index 0: field `id` is not valid UTF-8"},
             {R"("x")", "issue at index 0: expected an object, found a string"},
             {R"(null)", "issue at index 0: expected an object, found null"},
         }) {
        std::string text = std::string("[") + row.json + "," + good + "]";
        INFO(text);
        auto r = parse_issues(text);
        REQUIRE(r);
        REQUIRE(r->issues.size() == 1);
        CHECK(r->issues[0].id == "OK-1");
        REQUIRE(r->skipped.size() == 1);
        CHECK(r->skipped[0].index == 0);
        CHECK_THAT(r->skipped[0].reason, Catch::StartsWith(row.msg));
        REQUIRE(r->warnings.size() == 1);
        CHECK_THAT(r->warnings[0], Catch::StartsWith(row.msg));
        CHECK_THAT(r->warnings[0], Catch::EndsWith("; issue skipped (the other issues of this pull go on)"));
    }
    auto r = parse_issues(R"([{"id":"B-7","title":5,"state":"s"}])");
    REQUIRE(r);
    CHECK(r->issues.empty());
    CHECK(r->skipped[0].id == "B-7");
}

TEST_CASE("intake: text that is not a JSON array still fails the cycle", "[intake]") {
    struct Row {
        const char *json, *msg;
    };
    for (Row row : std::initializer_list<Row>{
             {R"({"id":"a"})", "issues must be a JSON array, found an object"},
             {R"([{"id":)", "issues are not valid JSON"},
         }) {
        INFO(row.json);
        auto r = parse_issues(row.json);
        REQUIRE_FALSE(r);
        CHECK_THAT(r.error(), Catch::Contains(row.msg));
    }
}

TEST_CASE("intake: rich-text bodies nested 100 levels deep are accepted, 200 levels are refused", "[intake][security]") {
    auto nested = [](int levels) {
        std::string body;
        for (int i = 0; i < levels; ++i)
            body += R"({"type":"doc","content":[)";
        body += R"({"type":"text","text":"deep"})";
        for (int i = 0; i < levels; ++i)
            body += "]}";
        return R"([{"id":"R-1","title":"rich","state":"todo","body":)" + body + "}]";
    };
    // Each level is an object and an array: 2 * 50 + the issue array and object = 102 levels.
    auto ok = parse_issues(nested(50));
    REQUIRE(ok);
    REQUIRE(ok->issues.size() == 1);
    CHECK(ok->issues[0].fields.at("body").at("type") == "doc");
    auto deep = parse_issues(nested(100));
    REQUIRE_FALSE(deep);
    CHECK_THAT(deep.error(), Catch::StartsWith("issues are nested deeper than 128 levels"));
}

TEST_CASE("intake: invalid UTF-8 in issue text becomes U+FFFD with a warning", "[intake][security]") {
    auto r = parse_issues(
        "[{\"id\":\"U-1\",\"title\":\"bad \xc3\x28 byte\",\"state\":\"todo\",\"notes\":{\"k\xff\":[\"\xed\xa0\x80\"]}}]");
    REQUIRE(r);
    REQUIRE(r->issues.size() == 1);
    const auto &i = r->issues[0];
    CHECK(i.title == "bad \xEF\xBF\xBD( byte");
    CHECK(i.fields.at("title") == "bad \xEF\xBF\xBD( byte");
    CHECK(i.fields.at("notes").as_object().contains("k\xEF\xBF\xBD"));
    CHECK(i.fields.at("notes").at("k\xEF\xBF\xBD").at(0) == "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
    REQUIRE(r->warnings.size() == 1);
    CHECK(r->warnings[0] == "issue 'U-1' at index 0: invalid UTF-8 in its text replaced by U+FFFD");
}

// ---- the Intake part: observation times and reconciliation, on the loop's thread, no tracker ----

#include "orchestrator/intake.hpp"

#include <boost/asio/io_context.hpp>

namespace {

using namespace vik::orchestrator;

struct IntakeFixture {
    vik::workflow::Config cfg;
    LiveConfig live{cfg};
    boost::asio::io_context io;
    std::shared_ptr<SchedulerClock> clock = make_system_clock();
    BlockingRunner runner{io, *clock, 1, [] {}};
    std::vector<std::string> faults;
    FaultGuard guard{[this](const std::string &id, const std::string &stage, const std::string &what) {
        faults.push_back(id + "/" + stage + ": " + what);
    }};
    std::unique_ptr<Intake> intake;
    Clock::time_point manual{}; // the observation clock: moved by hand

    IntakeFixture() {
        vik::workflow::Stage build;
        build.name = "build";
        build.state = "todo";
        cfg.stages.push_back(build);
        cfg.scheduling.terminal_states = {"done"};
        intake = std::make_unique<Intake>(live, nullptr, runner, CallBudgets::from(cfg), guard, [this] { return manual; });
    }
};

Issue issue(const std::string &id, const std::string &state) {
    Issue i;
    i.id = id;
    i.state = state;
    i.fields["state"] = state;
    return i;
}

} // namespace

TEST_CASE("intake: an observation made before the host's own write does not bring the old state back", "[intake]") {
    IntakeFixture f;
    auto t0 = Clock::now();
    f.intake->learn_state("A-1", "review", t0 + std::chrono::seconds(1));
    Issue now = f.intake->observe(issue("A-1", "todo"), t0); // a pull that started before the write
    CHECK(now.state == "review");
    CHECK(now.fields.at("state") == "review");
    // A later observation wins.
    CHECK(f.intake->observe(issue("A-1", "done"), t0 + std::chrono::seconds(2)).state == "done");
    CHECK(f.intake->newest("A-1")->state == "done");
}

TEST_CASE("intake: a running issue missing from one refresh goes on, the second refresh in a row stops it", "[intake]") {
    IntakeFixture f;
    std::vector<PairKey> running{{"A-1", "build"}};
    auto stops = f.intake->reconcile({}, {"A-1"}, Clock::now(), running);
    CHECK(stops.empty());
    stops = f.intake->reconcile({}, {"A-1"}, Clock::now(), running);
    REQUIRE(stops.size() == 1);
    CHECK(stops[0].key == PairKey{"A-1", "build"});
    CHECK(stops[0].why == CancelReason::left);
    // Absence from a pull (not asked by id) alone never stops anything.
    IntakeFixture g;
    CHECK(g.intake->reconcile({}, {}, Clock::now(), running).empty());
    CHECK(g.intake->reconcile({}, {}, Clock::now(), running).empty());
}

TEST_CASE("intake: reconciliation stops runs of terminal issues and of issues that left the stage's state", "[intake]") {
    IntakeFixture f;
    std::vector<PairKey> running{{"A-1", "build"}, {"A-2", "build"}, {"A-3", "build"}};
    std::vector<Issue> fresh{issue("A-1", "done"), issue("A-2", "review"), issue("A-3", "todo")};
    auto stops = f.intake->reconcile(fresh, {}, Clock::now(), running);
    REQUIRE(stops.size() == 2);
    CHECK(stops[0].key.first == "A-1");
    CHECK(stops[0].why == CancelReason::terminal);
    CHECK(stops[1].key.first == "A-2");
    CHECK(stops[1].why == CancelReason::left);
    CHECK(f.faults.empty());
}

TEST_CASE("intake: a refresh by id that misses the issue keeps what the host learned after it started", "[intake]") {
    IntakeFixture f;
    auto t0 = Clock::now();
    f.intake->observe(issue("A-1", "todo"), t0);
    f.intake->learn_state("A-1", "todo", t0 + std::chrono::seconds(2));
    IntakeResult empty;
    auto seen = f.intake->refreshed("A-1", empty, t0 + std::chrono::seconds(1));
    REQUIRE(seen);
    CHECK(seen->state == "todo");
    CHECK_FALSE(f.intake->refreshed("A-1", empty, t0 + std::chrono::seconds(3)));
}

TEST_CASE("intake: observation times come from the injected clock", "[intake]") {
    IntakeFixture f;
    f.manual += std::chrono::seconds(5);
    CHECK(f.intake->now() == Clock::time_point{} + std::chrono::seconds(5));
    f.intake->learn_state("A-1", "review", f.intake->now());
    f.manual += std::chrono::seconds(1);
    CHECK(f.intake->observe(issue("A-1", "todo"), f.intake->now()).state == "todo"); // newer than the write
}

TEST_CASE("budgets: each deadline is a plugin's own limit plus a named grace", "[intake]") {
    vik::workflow::Config cfg;
    cfg.pull_timeout_sec = 30;
    cfg.hook_timeout_sec = 60;
    cfg.prompt_command_timeout_sec = 5;
    auto b = CallBudgets::from(cfg);
    using ms = std::chrono::milliseconds;
    CHECK(b.tracker_deadline() == ms(30'000) + b.plugin_grace);
    CHECK(b.hook_deadline() == ms(60'000) + b.plugin_grace);
    CHECK(b.launch_deadline() == 2 * ms(60'000) + b.prompt_commands_budgeted * ms(5'000) + b.launch_grace);
}

TEST_CASE("intake: with an interest only the issues the scheduler needs are built, the rest are checked and counted",
          "[intake]") {
    vik::orchestrator::IssueInterest interest;
    interest.states = {"todo"};
    interest.ids = {"HELD-1"};
    auto r = parse_issues(R"([
        {"id":"T-1","title":"taken","state":"todo","blocked_by":["B-1","T-2","NOPE"]},
        {"id":"T-2","title":"also taken","state":"todo"},
        {"id":"B-1","title":"a blocker in a state no stage takes","state":"backlog"},
        {"id":"O-1","title":"other","state":"backlog","labels":["x"]},
        {"id":"HELD-1","title":"held by the host","state":"review"},
        {"id":"BAD","title":5,"state":"backlog"},
        {"id":"T-1","title":"duplicate","state":"backlog"}
    ])",
                          &interest);
    REQUIRE(r);
    std::vector<std::string> ids;
    for (const auto &i : r->issues)
        ids.push_back(i.id);
    CHECK(ids == std::vector<std::string>{"T-1", "T-2", "HELD-1"});
    CHECK(r->pulled == 5); // every valid, distinct issue, built or not
    // Only what a built issue names as a blocker, and only when it was left out.
    CHECK(r->blocker_states == std::map<std::string, std::string>{{"B-1", "backlog"}});
    // Bad elements and duplicates are reported whether or not they would have been built.
    REQUIRE(r->skipped.size() == 1);
    CHECK(r->skipped[0].id == "BAD");
    CHECK(r->warnings.size() == 2);
    CHECK(r->issues[0].fields.at("title") == "taken");
}

namespace {

// Everything a reading of a pull gives, as one text: two readings are equal when these are.
std::string described(const std::expected<vik::orchestrator::IntakeResult, std::string> &r) {
    if (!r) return "error: " + r.error();
    std::string out = "pulled " + std::to_string(r->pulled) + "\n";
    for (const auto &i : r->issues) {
        out += "issue " + i.id + "|" + i.title + "|" + i.state + "|" + i.description + "|" + boost::json::serialize(i.fields) +
               "|" + (i.priority ? std::to_string(*i.priority) : "-") + "|" + i.created_at + "|";
        for (const auto &b : i.blocked_by)
            out += b + ",";
        out += "\n";
    }
    for (const auto &w : r->warnings)
        out += "warning " + w + "\n";
    for (const auto &s : r->skipped)
        out += "skipped " + std::to_string(s.index) + "|" + s.id + "|" + s.reason + "\n";
    for (const auto &[id, state] : r->blocker_states)
        out += "blocker " + id + "=" + state + "\n";
    return out;
}

} // namespace

TEST_CASE("intake: the element-by-element reading gives exactly what the whole tree gives", "[intake]") {
    vik::orchestrator::IssueInterest interest;
    interest.states = {"todo"};
    interest.ids = {"HELD"};
    auto same = [&](const std::string &pull) {
        INFO(pull);
        auto quick = parse_issues(pull, &interest);
        auto tree = vik::orchestrator::parse_issues_as_tree(pull, &interest);
        CHECK(described(quick) == described(tree));
    };
    // Clean issues in and out of interest, aliases, escapes that spell a wanted state, blockers,
    // duplicates of left-out and of kept issues.
    same(R"([{"id":"A","title":"a","state":"todo","blocked_by":["B","C"]},{"id":"B","title":"b","state":"backlog"},
             {"identifier":"C","title":"c","status":"done","desc":"d"},{"id":"D","title":"d","state":"t\u006fdo"},
             {"id":"HELD","title":"h","state":"review"},{"id":"B","title":"dup","state":"todo"},{"id":"A","title":"dup","state":"x"}])");
    // Elements that are not clean issues: each reported as the tree reports it.
    same(R"([{"title":"no id","state":"backlog"},{"id":"","title":"t","state":"backlog"},{"id":5,"title":"t","state":"x"},
             {"id":"E1","identifier":"E2","title":"t","state":"x"},{"id":"E3","title":["t"],"state":"x"},{"id":"E4","title":"t"},
             {"id":"E5","title":"t","state":"x","status":"y"},{"id":"E6","title":"t","state":"x","description":7},
             {"id":"E7","title":"t","state":"x","description":"a","desc":"b"},"text",12,null,[1,2],{},
             {"id":"E8","title":"t","state":"x","description":null},{"id":"E9","title":"t","state":"x","id":"E10"}])");
    // Invalid UTF-8: in a left-out issue's text (not read), in a kept one's (replaced), in an id.
    same(
        "[{\"id\":\"U1\",\"title\":\"bad \xff\",\"state\":\"backlog\"},{\"id\":\"U2\",\"title\":\"bad \xfe\",\"state\":\"todo\"},"
        "{\"id\":\"U\xc3\",\"title\":\"t\",\"state\":\"backlog\"}]");
    // Strings holding brackets, commas, quotes and backslashes; whitespace everywhere.
    same(" \n[ {\"id\":\"S]1\",\"title\":\"a}b,c\\\"]\",\"state\":\"backlog\",\"x\":{\"k\":[\"]\",\"\\\\\"]}} ,\n"
         "\t{\"id\":\"S\\\\\",\"title\":\"\\\\\\\"\",\"state\":\"todo\"} ] \n");
    same("[]");
    same(" [ ] ");
    // Not a pull: the same refusal, word for word.
    for (const char *bad : {"", "{}", "[", "[1,]", "[,1]", "[1 2]", R"([{"id":"a"} {"id":"b"}])", R"([{"id":"a"}])x",
                            R"([{"id":"a"]})",
                            R"(["unterminated])", "[{\"id\":\"a\",}]", R"([}])"})
        same(bad);
    // Nesting at the limit and one past it (the array is the first level).
    auto nested = [](size_t levels) {
        std::string s = R"([{"id":"N","title":"t","state":"backlog","body":)";
        for (size_t i = 2; i < levels; ++i)
            s += "[";
        for (size_t i = 2; i < levels; ++i)
            s += "]";
        return s + "}]";
    };
    same(nested(vik::orchestrator::kMaxIssueJsonDepth));
    same(nested(vik::orchestrator::kMaxIssueJsonDepth + 1));
    // Random pulls made of the pieces above.
    const std::vector<std::string> pieces = {
        R"({"id":"R1","title":"t","state":"todo"})",
        R"({"id":"R1","title":"t","state":"backlog"})",
        R"({"id":"R2","title":"t","state":"backlog","labels":["a"],"priority":3})",
        R"({"identifier":"R3","title":"t\n","status":"backlog","blocked_by":["R2","R4"]})",
        R"({"id":"R4","title":"t","state":"todo","blocked_by":["R2"]})",
        R"({"id":"HELD","title":"t","state":"done"})",
        R"({"id":"R5","title":1,"state":"x"})",
        R"({"id":"R6","state":"x"})",
        R"("s")",
        R"({"id":"R7","title":"\"quoted\" \\ [x]","state":"backlog","body":{"a":[{"b":"}"}]}})",
    };
    std::mt19937 rng(19);
    for (int round = 0; round < 300; ++round) {
        std::string pull = "[";
        size_t n = rng() % 12;
        for (size_t i = 0; i < n; ++i)
            pull += (i ? "," : "") + pieces[rng() % pieces.size()];
        same(pull + "]");
    }
}
