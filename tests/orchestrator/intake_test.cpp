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

TEST_CASE("intake: a bad element is skipped with a warning naming its index and id, the others go on", "[intake]") {
    struct Row {
        const char *json, *msg;
    };
    const char *good = R"({"id":"OK-1","title":"fine","state":"todo"})";
    for (Row row : std::initializer_list<Row>{
             {R"({"id":1,"title":"t","state":"s"})", "issue at index 0: field `id` must be a string, found a number"},
             {R"({"title":"t","state":"s"})", "issue at index 0: missing field `id`"},
             {R"({"id":"a","identifier":"b","title":"t","state":"s"})", "issue at index 0: both `id` and its alias `identifier` are set"},
             {R"({"id":"a","title":"t","state":"s","status":"x"})", "issue 'a' at index 0: both `state` and its alias `status`"},
             {R"({"id":"a","state":"s"})", "issue 'a' at index 0: missing field `title`"},
             {R"({"id":"a","title":"t"})", "issue 'a' at index 0: missing field `state`"},
             {R"({"id":"a","title":["t"],"state":"s"})", "issue 'a' at index 0: field `title` must be a string, found an array"},
             {R"({"id":"a","title":"t","state":"s","desc":5})", "issue 'a' at index 0: field `desc` must be a string, found a number"},
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
        for (int i = 0; i < levels; ++i) body += R"({"type":"doc","content":[)";
        body += R"({"type":"text","text":"deep"})";
        for (int i = 0; i < levels; ++i) body += "]}";
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
    auto r = parse_issues("[{\"id\":\"U-1\",\"title\":\"bad \xc3\x28 byte\",\"state\":\"todo\",\"notes\":{\"k\xff\":[\"\xed\xa0\x80\"]}}]");
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
