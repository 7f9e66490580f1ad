// The strict Jinja subset against a table of expressions, strict errors and malformed input.
#include "template/template.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

using namespace vik::tmpl;
namespace json = boost::json;

namespace {
json::object ctx() {
    return json::parse(R"({
      "issue": {"id": "ENG-1", "title": "Fix it", "state": "todo", "description": "  body  ",
                "labels": ["bug", "ui"], "number": 7, "empty": "", "nested": {"deep": {"x": 1}}},
      "env": {"HOME": "/home/me"},
      "workflow_dir": "/srv/proj",
      "n": 3, "f": 1.5, "yes": true, "nothing": null
    })")
        .as_object();
}
std::string r(const std::string &src) { return render_text(src, "t", ctx()); }
} // namespace

TEST_CASE("template: expressions render as MiniJinja does", "[template]") {
    struct Row {
        const char *src, *out;
    };
    for (Row row : std::initializer_list<Row>{
             {"plain text", "plain text"},
             {"{{ issue.id }}", "ENG-1"},
             {"{{issue.title}}!", "Fix it!"},
             {"{{ issue['title'] }}", "Fix it"},
             {"{{ issue.labels[1] }}", "ui"},
             {"{{ issue.labels[-1] }}", "ui"},
             {"{{ issue.nested.deep.x }}", "1"},
             {"{{ env.HOME }}", "/home/me"},
             {"{{ 'single' }} {{ \"double\" }}", "single double"},
             {"{{ 7*7 }}", "49"},
             {"{{ n + 2 }} {{ n - 5 }} {{ 7 // 2 }} {{ 7 % 4 }} {{ 1 / 2 }}", "5 -2 3 3 0.5"},
             {"{{ f }} {{ 2.0 }}", "1.5 2.0"},
             {"{{ yes }} {{ nothing }}", "true none"},
             {"{{ 'a' ~ n ~ 'b' }}", "a3b"},
             {"{{ issue.title | lower }}|{{ issue.title | upper }}", "fix it|FIX IT"},
             {"[{{ issue.description | trim }}]", "[body]"},
             {"{{ issue.title | replace('it', 'that') }}", "Fix that"},
             {"{{ issue.labels | join(', ') }}", "bug, ui"},
             {"{{ issue.labels | length }} {{ issue.title | length }}", "2 6"},
             {"{{ issue.labels | tojson }}", "[\"bug\",\"ui\"]"},
             {"{{ issue.missing | default('none given') }}", "none given"},
             {"{{ issue.empty | default('fallback', true) }}", "fallback"},
             {"{{ issue.title | default('x') }}", "Fix it"},
             {"{{ issue.labels | first }}-{{ issue.labels | last }}", "bug-ui"},
             {"{% if issue.state == 'todo' %}T{% elif issue.state == 'done' %}D{% else %}O{% endif %}", "T"},
             {"{% if issue.state == 'x' %}T{% elif issue.number > 5 %}big{% else %}O{% endif %}", "big"},
             {"{% if not yes %}a{% else %}b{% endif %}", "b"},
             {"{% if 'bug' in issue.labels and n >= 3 %}yes{% endif %}", "yes"},
             {"{% if 'zzz' not in issue.labels %}ok{% endif %}", "ok"},
             {"{% for l in issue.labels %}{{ loop.index }}:{{ l }}{% if not loop.last %},{% endif %}{% endfor %}", "1:bug,2:ui"},
             {"{% for l in [] %}x{% else %}empty{% endfor %}", "empty"},
             {"{% if issue.missing is defined %}d{% else %}u{% endif %}", "u"},
             {"{% if issue.title is defined %}d{% endif %}", "d"},
             {"{% if issue.missing is not defined %}nd{% endif %}", "nd"},
             {"{% if nothing is none %}none{% endif %}", "none"},
             {"a{# a comment #}b", "ab"},
             {"a  {{- ' b' }}", "a b"},
             {"{{ 'a' -}}   \n  b", "ab"},
             {"x\n{%- if yes %}\ny{%- endif %}", "x\ny"},
             {"{% set who = issue.id | lower %}{{ who }}", "eng-1"},
             {"{{ 'yes' if yes else 'no' }}", "yes"},
             {"line\n", "line"},
             {"line\n\n", "line\n"},
         }) {
        INFO(row.src);
        CHECK(r(row.src) == row.out);
    }
}

TEST_CASE("template: undefined variables and attributes are errors naming them and the line", "[template]") {
    CHECK_THROWS_WITH(r("ok\n{{ nope }}"), Catch::Contains("t:2:4") && Catch::Contains("'nope' is undefined"));
    CHECK_THROWS_WITH(r("{{ issue.nope }}"), Catch::Contains("'issue' has no attribute 'nope'"));
    CHECK_THROWS_WITH(r("{{ issue.nested.deep.y }}"), Catch::Contains("'issue.nested.deep' has no attribute 'y'"));
    CHECK_THROWS_WITH(r("{% if missing %}x{% endif %}"), Catch::Contains("'missing' is undefined"));
    CHECK_THROWS_WITH(r("{{ issue.labels[5] }}"), Catch::Contains("out of range"));
    CHECK_THROWS_WITH(r("{{ missing | upper }}"), Catch::Contains("'missing' is undefined"));
    CHECK_THROWS_WITH(r("{% for x in missing %}{% endfor %}"), Catch::Contains("'missing' is undefined"));
}

TEST_CASE("template: malformed templates get a message with line and column, never a crash", "[template]") {
    struct Row {
        const char *src, *msg;
    };
    for (Row row : std::initializer_list<Row>{
             {"{{ issue.id ", "t:1:1: unclosed tag"},
             {"a\n{% if yes %}x", "t:2:1: '{% if %}' is not closed"},
             {"{% for x in y %}", "is not closed"},
             {"{% endif %}", "without a matching opening tag"},
             {"{% while x %}", "unknown statement 'while'"},
             {"{{ }}", "empty expression"},
             {"{{ 'abc }}", "unterminated string literal"},
             {"{{ a b }}", "unexpected 'b'"},
             {"{{ x | }}", "expected a filter name"},
             {"{{ issue.id | nosuch }}", "unknown filter 'nosuch'"},
             {"{# never closed", "unclosed comment"},
             {"{{ issue. }}", "expected an attribute name"},
             {"{{ 1 / 0 }}", "division by zero"},
             {"{{ issue.id ; }}", "unexpected character ';'"},
         }) {
        INFO(row.src);
        try {
            r(row.src);
            FAIL("no error for " << row.src);
        } catch (const TemplateError &e) {
            CHECK_THAT(e.what(), Catch::Contains(row.msg));
        }
    }
}

TEST_CASE("template: segments remember what came from the template source", "[template]") {
    auto segs = Template("echo {{ issue.title }}!", "t").render(ctx());
    REQUIRE(segs.size() == 3);
    CHECK(segs[0].literal);
    CHECK_FALSE(segs[1].literal);
    CHECK(segs[1].text == "Fix it");
    CHECK(segs[2].literal);
}
