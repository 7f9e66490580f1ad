// The command line through the real binary: help, version, plugins, option placement.
#include "cli/options.hpp"
#include "support/test_support.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

using vik::test::run_host;

TEST_CASE("cli: vik-host plugins lists the shipped plugins as loaded and exits 0", "[cli]") {
    auto r = run_host({"plugins"});
    CHECK(r.exit_code == 0);
    for (const char *id : {"codex", "github-tracker", "shell-hooks", "command-tracker", "file-tracker", "scripted-agent"})
        CHECK_THAT(r.out, Catch::Contains(std::string("loaded   ") + id));
}

TEST_CASE("cli: plugins with broken candidates names each and exits 1", "[cli]") {
    auto r = run_host({"--no-builtin-plugins", "--plugins", (vik::test::test_plugin_root() / "mixed").string(), "plugins"});
    CHECK(r.exit_code == 1);
    CHECK_THAT(r.out, Catch::Contains("loaded   good-c"));
    CHECK_THAT(r.out, Catch::Contains("refused  wrong-abi"));
    CHECK_THAT(r.out, Catch::Contains("refused  text"));
    CHECK_THAT(r.out, Catch::Contains("refused  short-table"));
    CHECK_THAT(r.out, Catch::Contains("loaded   good-c-ahead"));
    CHECK_THAT(r.out, Catch::Contains("         note: built for ABI 1.3, newer than this host's 1.2"));
    CHECK_THAT(r.out, Catch::Contains("2 of 8 plugin(s) loaded"));
}

TEST_CASE("cli: --plugins is accepted after the command and may repeat", "[cli]") {
    auto r = run_host({"plugins", "--plugins", (vik::test::test_plugin_root() / "good").string(), "--plugins",
                       vik::test::plugin_dir().string()});
    CHECK(r.exit_code == 0);
    CHECK_THAT(r.out, Catch::Contains("loaded   good-c"));
    CHECK_THAT(r.out, Catch::Contains("loaded   codex"));
}

TEST_CASE("cli: --help and --version", "[cli]") {
    auto h = run_host({"--help"});
    CHECK(h.exit_code == 0);
    CHECK_THAT(h.out, Catch::Contains("Usage: vik-host"));
    auto v = run_host({"--version"});
    CHECK(v.exit_code == 0);
    CHECK_THAT(v.out, Catch::StartsWith("vik-host "));
}

TEST_CASE("cli: usage errors exit 2", "[cli]") {
    CHECK(run_host({"--bogus"}).exit_code == 2);
    CHECK(run_host({}).exit_code == 2);
    CHECK(run_host({"run", "--port", "notanumber"}).exit_code == 2);
}

TEST_CASE("cli: with no command, --plugins DIR means run on ./workflow.yml", "[cli]") {
    char a0[] = "vik-host", a1[] = "--plugins", a2[] = "dir/";
    char *argv[] = {a0, a1, a2, nullptr};
    auto o = vik::cli::parse_options(3, argv);
    REQUIRE(o);
    CHECK(o->command == "run");
    CHECK(o->workflow == "workflow.yml");
    CHECK(o->plugin_dirs.size() == 1);
}

TEST_CASE("cli: --plugins adds to the built-in plugins, each directory loads once, and each plugin says what it serves",
          "[cli][plugins]") {
    auto r = run_host({"--plugins", (vik::test::test_plugin_root() / "good").string(), "--plugins",
                       vik::test::plugin_dir().string(), "plugins"});
    CHECK(r.exit_code == 0);
    CHECK_THAT(r.out, Catch::Contains("loaded   shell-hooks")); // a team's own plugins do not push out the built-ins
    CHECK_THAT(r.out, Catch::Contains("loaded   good-c"));
    CHECK_THAT(r.out, Catch::Contains("serves trackers: c-fixed"));
    CHECK_THAT(r.out, Catch::Contains("serves runtimes: codex"));
    CHECK_THAT(r.out, !Catch::Contains("refused")); // the built-in directory given again is not loaded twice
    auto only = run_host({"--no-builtin-plugins", "--plugins", (vik::test::test_plugin_root() / "good").string(), "plugins"});
    CHECK(only.exit_code == 0);
    CHECK_THAT(only.out, Catch::Contains("1 of 1 plugin(s) loaded"));
}

TEST_CASE("cli: tracker pull and fetch run one call of the workflow's tracker and print what the host sees", "[cli][tracker]") {
    vik::test::TempDir d;
    vik::test::write_file(d / "issues.json",
                          R"([{"id":"T-1","title":"one","state":"todo"},{"id":"T-2","title":"two","state":"done"},
                                               {"id":7,"title":"bad","state":"todo"}])");
    vik::test::write_file(d / "workflow.yml", "agents:\n  bot: {runtime: scripted, model: none, settings: {command: /bin/true}}\n"
                                              "issues:\n  tracker: {kind: file, path: issues.json}\n"
                                              "issue:\n  stages:\n    work: {when: {state: todo}, agent: bot, prompt: p}\n");
    std::string wf = (d / "workflow.yml").string();
    auto pull = vik::test::run_host({"tracker", "pull", wf}, d.path);
    INFO(pull.out << pull.err);
    REQUIRE(pull.exit_code == 0);
    auto issues = boost::json::parse(pull.out).as_array();
    REQUIRE(issues.size() == 2);
    CHECK(issues[0].at("id") == "T-1");
    CHECK(issues[1].at("state") == "done");
    CHECK_THAT(pull.err, Catch::Contains("field `id` must be a string, found a number; issue skipped"));
    CHECK_THAT(pull.err, Catch::Contains("tracker pull: 2 issue(s) from tracker file in "));
    CHECK_THAT(pull.err, !Catch::Contains("[plugin file-tracker"));

    auto fetch = vik::test::run_host({"--log-level", "debug", "tracker", "fetch", "T-2", "NOPE", wf}, d.path);
    INFO(fetch.out << fetch.err);
    REQUIRE(fetch.exit_code == 0);
    CHECK(boost::json::parse(fetch.out).as_array().size() == 1);

    // --log-level debug lets a plugin's debug lines through, tagged with the plugin and its call.
    auto debug = vik::test::run_host({"--log-level", "debug", "tracker", "pull", wf}, d.path);
    CHECK_THAT(debug.err, Catch::Contains("[plugin file-tracker call=tracker.pull] pull: 3 issue(s) from "));

    vik::test::write_file(d / "workflow.yml", "agents:\n  bot: {runtime: scripted, model: none, settings: {command: /bin/true}}\n"
                                              "issues:\n  tracker: {kind: file, path: missing.json}\n"
                                              "issue:\n  stages:\n    work: {when: {state: todo}, agent: bot, prompt: p}\n");
    auto failed = vik::test::run_host({"tracker", "pull", wf}, d.path);
    CHECK(failed.exit_code == 1);
    CHECK_THAT(failed.err, Catch::Contains("tracker pull failed (error, tracker file, ") && Catch::Contains("does not exist"));
    auto usage = vik::test::run_host({"tracker", "push", wf}, d.path);
    CHECK(usage.exit_code == 2);
    auto bad = vik::test::run_host({"--log-level", "loud", "plugins"}, d.path);
    CHECK(bad.exit_code == 2);
    CHECK_THAT(bad.err, Catch::Contains("expected trace, debug, info, warn or error"));
}

TEST_CASE("cli: plugin check loads a plugin as the host would, creates it with the settings given and lists problems",
          "[cli][plugins]") {
    auto manifest = (vik::test::plugin_dir() / "vik-file-tracker.toml").string();
    auto bare = vik::test::run_host({"plugin", "check", manifest});
    INFO(bare.out << bare.err);
    CHECK(bare.exit_code == 1);
    CHECK_THAT(bare.out, Catch::Contains("ok: file-tracker 0.1.0 (tracker) loads from "));
    CHECK_THAT(bare.out, Catch::Contains("problem: file-tracker: required setting 'path' (string) is not in --settings"));
    CHECK_THAT(bare.out, Catch::Contains("problem: file-tracker: create(tracker) refused: invalid_argument: "));
    CHECK_THAT(bare.out, Catch::Contains("2 problem(s)"));

    // A tracker is created as the host creates it: with workflow_dir (here the current directory) and timeout_ms.
    vik::test::TempDir cwd;
    auto good = vik::test::run_host({"plugin", "check", manifest, "--settings", R"({"path":"issues.json"})"}, cwd.path);
    CHECK(good.exit_code == 0);
    CHECK_THAT(good.out, Catch::Contains("ok: file-tracker: create(tracker) with {\"path\":\"issues.json\",\"workflow_dir\":\"" +
                                         cwd.path.string() + "\",\"timeout_ms\":30000}"));
    CHECK_THAT(good.out, Catch::EndsWith("no problems found\n"));

    // A directory: every candidate, the refused ones with the loader's reason.
    auto dir = vik::test::run_host({"plugin", "check", (vik::test::test_plugin_root() / "bad-facts").string()});
    CHECK(dir.exit_code == 1);
    CHECK_THAT(dir.out, Catch::Contains("'secret_env' must be an array of strings, found a string"));

    CHECK(vik::test::run_host({"plugin", "check", "/nonexistent/plugin.toml"}).exit_code == 1);
    CHECK(vik::test::run_host({"plugin", "check", manifest, "--settings", "[1]"}).exit_code == 2);
}
