// Where the HTTP surface listens: workflow.yml's `server:` section, the run command's flags, and
// the rule that only loopback may go without a bearer token.
#include "http/access.hpp"
#include "http/server_config.hpp"
#include "workflow/config.hpp"
#include "workflow/loader.hpp"

#include <catch2/catch.hpp>

#include <map>

using namespace vik;

namespace {

http::GetEnv env(std::map<std::string, std::string> vars) {
    auto held = std::make_shared<std::map<std::string, std::string>>(std::move(vars));
    return [held](const char *name) -> const char * {
        auto it = held->find(name);
        return it == held->end() ? nullptr : it->second.c_str();
    };
}

} // namespace

TEST_CASE("http config: nothing listens without --port or server.port, the flag wins over the file", "[http]") {
    workflow::ServerConfig c;
    CHECK_FALSE(http::plan_listen(c, std::nullopt, "", env({}))->enabled);
    c.port = 8080;
    auto p = http::plan_listen(c, 9090, "", env({}));
    REQUIRE(p);
    CHECK(p->enabled);
    CHECK(p->port == 9090);
    CHECK(p->address == "127.0.0.1");
    CHECK(p->token.empty());
}

TEST_CASE("http config: a non-loopback address without a token refuses to start and says why", "[http]") {
    workflow::ServerConfig c;
    c.port = 8080;
    c.host = "0.0.0.0";
    auto refused = http::plan_listen(c, std::nullopt, "", env({}));
    REQUIRE_FALSE(refused);
    CHECK(refused.error().find("refusing to listen on 0.0.0.0:8080 without a bearer token") != std::string::npos);
    CHECK_FALSE(http::plan_listen(c, std::nullopt, "::", env({})));

    c.token_env = "VIK_HTTP_TOKEN";
    auto unset = http::plan_listen(c, std::nullopt, "", env({}));
    REQUIRE_FALSE(unset);
    CHECK(unset.error().find("VIK_HTTP_TOKEN, which is not set") != std::string::npos);
    CHECK_FALSE(http::plan_listen(c, std::nullopt, "", env({{"VIK_HTTP_TOKEN", "short"}})));
    auto ok = http::plan_listen(c, std::nullopt, "", env({{"VIK_HTTP_TOKEN", "0123456789abcdef"}}));
    REQUIRE(ok);
    CHECK(ok->token == "0123456789abcdef");
    CHECK(ok->token_env == "VIK_HTTP_TOKEN");
    // Loopback in all its spellings needs none.
    workflow::ServerConfig l;
    l.port = 1;
    for (const char *a : {"127.0.0.1", "127.1.2.3", "::1", "localhost", "::ffff:127.0.0.1"})
        CHECK(http::plan_listen(l, std::nullopt, a, env({})));
    CHECK_FALSE(http::plan_listen(l, std::nullopt, "example.com", env({})));
}

TEST_CASE("http config: the server section is read, checked and reported like vik's keys", "[http]") {
    const std::string base =
        "agents:\n  a:\n    runtime: codex\n    model: m\nissues:\n  pull:\n    command: echo []\nissue:\n  stages:\n    s:\n"
        "      when:\n        state: todo\n      agent: a\n      prompt: hi\n";
    auto ok = workflow::load_workflow_text(base + "server:\n  port: 8080\n  host: 127.0.0.1\n  token_env: TOK\n", "/w/x.yml");
    INFO((ok ? std::string() : ok.error().message));
    REQUIRE(ok);
    CHECK(ok->config.server.port == 8080);
    CHECK(ok->config.server.token_env == "TOK");
    CHECK(ok->diagnostics.items.empty());

    auto open = workflow::load_workflow_text(base + "server:\n  port: 8080\n  host: 0.0.0.0\n  colour: red\n", "/w/x.yml");
    REQUIRE(open);
    std::vector<std::string> codes;
    for (auto &d : open->diagnostics.items)
        codes.push_back(d.code + "@" + d.pointer);
    CHECK(std::find(codes.begin(), codes.end(), "server_needs_token@server.host") != codes.end());
    CHECK(std::find(codes.begin(), codes.end(), "unknown_field@server.colour") != codes.end());

    auto bad = workflow::load_workflow_text(base + "server:\n  port: 70000\n", "/w/x.yml");
    REQUIRE_FALSE(bad);
    CHECK(bad.error().message.find("'server.port': invalid value: expected a port from 0 to 65535") != std::string::npos);
}

TEST_CASE("http access: bearer tokens compare whole, in constant time", "[http]") {
    CHECK(http::constant_time_equal("abc", "abc"));
    CHECK_FALSE(http::constant_time_equal("abc", "abd"));
    CHECK_FALSE(http::constant_time_equal("abc", "abcd"));
    CHECK_FALSE(http::constant_time_equal("", "a"));
    http::AccessRules rules{"0123456789abcdef", "0.0.0.0"};
    http::Request r{"GET", "/api/v1/state", "", "10.0.0.5:8080", "", "bearer 0123456789abcdef"};
    CHECK_FALSE(http::check_access(r, rules, false));
    r.authorization = "Bearer 0123456789abcdeX";
    CHECK(http::check_access(r, rules, false)->status == 401);
    CHECK_FALSE(http::check_access(r, rules, true));
}
