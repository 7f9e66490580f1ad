// Hostile or runaway templates end in an error naming the place, never in a stack overflow.
#include "template/template.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

using namespace vik::tmpl;
namespace json = boost::json;

TEST_CASE("template limits: 10 000 nested parentheses are an error, not a crash", "[template][security]") {
    std::string src = "{{ " + std::string(10000, '(') + "1" + std::string(10000, ')') + " }}";
    try {
        Template t(src, "prompt");
        FAIL("parsed");
    } catch (const TemplateError &e) {
        CHECK(std::string(e.what()).rfind("prompt:1:", 0) == 0);
    }
}

TEST_CASE("template limits: deep but sane nesting parses, too deep names the limit", "[template][security]") {
    std::string ok = "{{ " + std::string(20, '(') + "1" + std::string(20, ')') + " }}";
    CHECK(to_text(Template(ok, "p").render({})) == "1");
    std::string deep = "{{ " + std::string(200, '[') + std::string(200, ']') + " }}";
    CHECK_THROWS_WITH(Template(deep, "p"), Catch::Contains("nested too deeply"));
    std::string unary = "{{ " + std::string(1500, '-') + "1 }}";
    CHECK_THROWS_WITH(Template(unary, "p"), Catch::Contains("nested too deeply"));
}

TEST_CASE("template limits: 100 nested if blocks are refused, naming a line near the limit", "[template][security]") {
    std::string src;
    for (int i = 0; i < 100; ++i)
        src += "{% if true %}\n";
    for (int i = 0; i < 100; ++i)
        src += "{% endif %}";
    CHECK_THROWS_WITH(Template(src, "hook"), Catch::Contains("nested too deeply") && Catch::StartsWith("hook:6"));
}

TEST_CASE("template limits: a tag of too many tokens is refused", "[template][security]") {
    std::string src = "{{ 1";
    for (int i = 0; i < 1500; ++i)
        src += " + 1";
    src += " }}";
    CHECK_THROWS_WITH(Template(src, "p"), Catch::Contains("tag too long"));
    std::string fine = "{{ 1";
    for (int i = 0; i < 500; ++i)
        fine += " + 1";
    fine += " }}";
    CHECK(to_text(Template(fine, "p").render({})) == "501");
}

TEST_CASE("template sketch: literal text as written and a placeholder per tag, at its position", "[template]") {
    Template t("a {{ issue.title }}\n{% if x %}b {{ y }}{% else %}c{% endif %}{% for i in z %}d{{ i }}{% endfor %}", "h");
    Segments s = t.sketch();
    REQUIRE(s.size() == 6);
    CHECK(s[0].text == "a ");
    CHECK_FALSE(s[1].literal);
    CHECK(s[1].line == 1);
    CHECK(s[1].col == 3);
    CHECK(s[2].text == "\nb ");
    CHECK(s[3].line == 2);
    CHECK(s[4].text == "d");
    CHECK_FALSE(s[5].literal);
}

TEST_CASE("template arithmetic: 64-bit overflow and out-of-range literals are template errors", "[template][security]") {
    auto fails = [](const std::string &src) {
        try {
            Template(src, "p").render({});
        } catch (const TemplateError &e) {
            return std::string(e.what());
        }
        return std::string("rendered");
    };
    CHECK_THAT(fails("{{ 99999999999999999999 }}"), Catch::Contains("does not fit in 64 bits"));
    CHECK_THAT(fails("{{ 9223372036854775807 + 1 }}"), Catch::Contains("integer overflow in '+'"));
    CHECK_THAT(fails("{{ 4611686018427387904 * 2 }}"), Catch::Contains("integer overflow in '*'"));
    CHECK_THAT(fails("{{ (-9223372036854775807 - 1) // -1 }}"), Catch::Contains("integer overflow in '//'"));
    CHECK_THAT(fails("{{ (-9223372036854775807 - 1) % -1 }}"), Catch::Contains("integer overflow in '%'"));
    CHECK_THAT(fails("{{ -(-9223372036854775807 - 1) }}"), Catch::Contains("integer overflow in '-'"));
    CHECK_THAT(fails("{{ 10000000000000000000000.0 | int }}"), Catch::Contains("out of the 64-bit integer range"));
    CHECK(to_text(Template("{{ 9223372036854775806 + 1 }} {{ 2.5 | int }} {{ 7 // 2 }}", "p").render({})) ==
          "9223372036854775807 2 3");
}
