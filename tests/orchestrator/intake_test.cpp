// Issue intake JSON of vik-compat §3.
#include "orchestrator/issue.hpp"

#include <catch2/catch.hpp>

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

TEST_CASE("intake: one bad element fails the batch naming its index and field", "[intake]") {
    struct Row {
        const char *json, *msg;
    };
    for (Row row : std::initializer_list<Row>{
             {R"([{"id":1,"title":"t","state":"s"}])", "issue at index 0: field `id` must be a string, found a number"},
             {R"([{"id":"a","title":"t","state":"s"},{"title":"t","state":"s"}])", "issue at index 1: missing field `id`"},
             {R"([{"id":"a","identifier":"b","title":"t","state":"s"}])", "issue at index 0: both `id` and its alias `identifier` are set"},
             {R"([{"id":"a","title":"t","state":"s","status":"x"}])", "both `state` and its alias `status`"},
             {R"([{"id":"a","state":"s"}])", "missing field `title`"},
             {R"([{"id":"a","title":"t"}])", "missing field `state`"},
             {R"([{"id":"a","title":"t","state":"s","desc":5}])", "field `desc` must be a string, found a number"},
             {R"([{"id":"","title":"t","state":"s"}])", "field `id` is empty"},
             {R"(["x"])", "issue at index 0: expected an object, found a string"},
             {R"({"id":"a"})", "issues must be a JSON array, found an object"},
             {R"([{"id":)", "issues are not valid JSON"},
         }) {
        INFO(row.json);
        auto r = parse_issues(row.json);
        REQUIRE_FALSE(r);
        CHECK_THAT(r.error(), Catch::Contains(row.msg));
    }
}
