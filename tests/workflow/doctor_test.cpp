// `vik-host doctor` end to end through the real binary.
#include "orchestrator/template_context.hpp"
#include "plugins/registry.hpp"
#include "support/test_support.hpp"
#include "workflow/loader.hpp"
#include "workflow/plugin_checks.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

using namespace vik::test;

namespace {
const char *kValid = R"(agents:
  coder: {runtime: codex, model: gpt-5}
issues: {pull: {command: ./pull.sh}}
issue:
  stages:
    plan: {when: {state: todo}, agent: coder, prompt: hi}
)";
}

TEST_CASE("doctor: a valid workflow prints the summary and exits 0", "[doctor]") {
    TempDir dir;
    write_file(dir / "workflow.yml", kValid);
    auto r = run_host({"doctor"}, dir.path); // WORKFLOW defaults to ./workflow.yml
    CHECK(r.exit_code == 0);
    CHECK(r.out == "Vik doctor shows 0 error(s), 0 warning(s)\n");
}

TEST_CASE("doctor: errors first, then warnings, then the summary, exit 1", "[doctor]") {
    TempDir dir;
    write_file(dir / "workflow.yml", std::string("extra: 1\nloop:\n  wait_ms: 0\n") +
                                         R"(agents:
  coder: {runtime: codex, model: gpt-5}
issues: {pull: {command: ./pull.sh}}
issue:
  stages:
    plan: {when: {state: todo}, agent: nobody, prompt: hi}
)");
    auto r = run_host({"doctor", (dir / "workflow.yml").string()});
    CHECK(r.exit_code == 1);
    CHECK(r.out ==
          "[error] 'loop.wait_ms' expected to be great than 0, got 0\n"
          "[error] agent profile 'nobody' set for 'issue.stages.plan.agent' is not defined in agents configuration section\n"
          "[warning] unknown field 'extra'\n"
          "Vik doctor shows 2 error(s), 1 warning(s)\n");
}

TEST_CASE("doctor: warnings pass unless --strict", "[doctor]") {
    TempDir dir;
    write_file(dir / "workflow.yml", std::string("extra: 1\n") + kValid);
    auto plain = run_host({"doctor", (dir / "workflow.yml").string()});
    CHECK(plain.exit_code == 0);
    CHECK_THAT(plain.out, Catch::Contains("[warning] unknown field 'extra'"));
    auto strict = run_host({"doctor", "--strict", (dir / "workflow.yml").string()});
    CHECK(strict.exit_code == 1);
}

TEST_CASE("doctor: --json prints vik's object with codes", "[doctor]") {
    TempDir dir;
    write_file(dir / "workflow.yml", std::string("extra: 1\nloop: {max_iterations: 0}\n") + R"(agents:
  coder: {runtime: codex, model: gpt-5}
issues: {pull: {command: ''}}
issue:
  stages:
    plan: {when: {state: todo}, agent: ghost, prompt: hi}
)");
    auto r = run_host({"doctor", "--json", (dir / "workflow.yml").string()});
    CHECK(r.exit_code == 1);
    auto v = boost::json::parse(r.out);
    auto expected = boost::json::parse(R"({"errors":[
        {"severity":"error","pointer":"loop.max_iterations","code":{"non_positive_number":0}},
        {"severity":"error","pointer":"issues.pull.command","code":"empty_str"},
        {"severity":"error","pointer":"issue.stages.plan.agent","code":{"unknown_agent":"ghost"}}],
      "warnings":[{"severity":"warning","pointer":"extra","code":"unknown_field"}]})");
    CHECK(v == expected);
}

TEST_CASE("doctor: load errors name file, line and column on stderr and exit 1", "[doctor]") {
    TempDir dir;
    write_file(dir / "workflow.yml",
               "agents:\n  coder: {runtime: codex, model: gpt-5}\nissues: {pull: {command: x}}\nissue:\n  stages:\n    - plan\n");
    auto r = run_host({"doctor", (dir / "workflow.yml").string()});
    CHECK(r.exit_code == 1);
    CHECK(r.out.empty());
    CHECK_THAT(r.err, Catch::StartsWith((dir / "workflow.yml").string() + ":6:5: 'issue.stages': invalid type"));
    auto j = run_host({"doctor", "--json", (dir / "workflow.yml").string()});
    CHECK(j.exit_code == 1);
    auto v = boost::json::parse(j.out);
    CHECK(v.at("errors").at(0).at("code") == "load_error");
    auto missing = run_host({"doctor", (dir / "nope.yml").string()});
    CHECK(missing.exit_code == 1);
    CHECK(missing.err == "workflow file not found at " + (dir / "nope.yml").string() + "\n"); // vik's text
}

TEST_CASE("doctor: a runtime or tracker no plugin provides is an error listing what is available", "[doctor]") {
    TempDir dir;
    write_file(dir / "workflow.yml", R"(agents:
  coder: {runtime: aider, model: g}
issues:
  tracker: {kind: jira}
issue:
  stages:
    plan: {when: {state: todo}, agent: coder, prompt: hi}
)");
    auto r = run_host({"doctor", (dir / "workflow.yml").string()});
    CHECK(r.exit_code == 1);
    CHECK_THAT(r.out,
               Catch::Contains(
                   "[error] runtime 'aider' set for 'agents.coder.runtime' is not provided by any loaded plugin (available: "));
    CHECK_THAT(r.out, Catch::Contains("codex"));
    CHECK_THAT(r.out, Catch::Contains("scripted"));
    CHECK_THAT(r.out,
               Catch::Contains(
                   "[error] tracker 'jira' set for 'issues.tracker.kind' is not provided by any loaded plugin (available: "));
}

TEST_CASE("doctor: tracker settings are checked against the plugin's manifest", "[doctor]") {
    TempDir dir;
    write_file(dir / "workflow.yml", R"(agents:
  coder: {runtime: scripted, model: m, settings: {command: "true", colour: red}}
issues:
  tracker: {kind: file, paht: issues.json}
issue:
  stages:
    plan: {when: {state: todo}, agent: coder, prompt: hi}
)");
    auto r = run_host({"doctor", (dir / "workflow.yml").string()});
    CHECK(r.exit_code == 1);
    CHECK_THAT(r.out, Catch::Contains("[error] 'issues.tracker.path' is required by the 'file' tracker"));
    CHECK_THAT(r.out, Catch::Contains("[warning] unknown field 'issues.tracker.paht'"));
    CHECK_THAT(r.out, Catch::Contains("[warning] unknown field 'agents.coder.settings.colour'"));
    // A declared setting of the wrong type is an error naming what the manifest expects.
    write_file(dir / "workflow.yml", R"(agents:
  coder: {runtime: scripted, model: m, settings: {command: ["true"]}}
issues:
  tracker: {kind: file, path: 5, pull_skips_states: done}
issue:
  stages:
    plan: {when: {state: todo}, agent: coder, prompt: hi}
)");
    auto typed = run_host({"doctor", (dir / "workflow.yml").string()});
    CHECK(typed.exit_code == 1);
    CHECK_THAT(typed.out, Catch::Contains("[error] 'issues.tracker.path' is an integer, but the plugin 'file-tracker' expects "
                                          "a string (its manifest, vik-file-tracker.toml: settings.path.type)"));
    CHECK_THAT(typed.out, Catch::Contains("'issues.tracker.pull_skips_states' is a string, but the plugin 'file-tracker' "
                                          "expects a list"));
    CHECK_THAT(typed.out, Catch::Contains("'agents.coder.settings.command' is a list, but the plugin 'scripted-agent' expects "
                                          "a string"));
}

TEST_CASE("doctor: the realistic example workflows load without diagnostics", "[doctor]") {
    for (const char *name : {"github-labels", "github-project", "two-runtimes", "demo", "github-tracker-labels",
                             "github-tracker-project", "github-tracker-open-closed", "gemini", "opencode"}) {
        auto path = source_dir() / "examples" / name / "workflow.yml";
        auto r = run_host({"doctor", "--strict", path.string()});
        INFO(name << ": " << r.out << r.err);
        CHECK(r.exit_code == 0);
        CHECK(r.out == "Vik doctor shows 0 error(s), 0 warning(s)\n");
    }
}

TEST_CASE("doctor: every template is compiled and syntax errors name file, line and column", "[doctor]") {
    TempDir dir;
    write_file(dir / "p.md", "Hello\n{% if issue.title %}\nno end\n");
    write_file(dir / "workflow.yml", R"(agents:
  coder: {runtime: codex, model: gpt-5}
issues: {pull: {command: "./pull.sh {{ workflow_dir"}}
issue:
  hooks:
    after_create: |
      git clone x
      echo {{ issue.id }
  stages:
    plan: {when: {state: todo}, agent: coder, prompt: "Plan {{ issue.title | }}"}
    build: {when: {state: todo}, agent: coder, prompt_file: p.md, hooks: {before_run: "{% for %}"}}
    gone: {when: {state: todo}, agent: coder, prompt_file: missing.md}
)");
    std::string wf = (dir / "workflow.yml").string();
    auto r = run_host({"doctor", wf});
    CHECK(r.exit_code == 1);
    CHECK(r.out == "[error] 'issues.pull.command' is not a valid template: " + wf +
                       ":3:26 (line 1, column 11 of the template): unclosed tag (missing '}}') (fix the template syntax)\n"
                       "[error] 'issue.stages.plan.prompt' is not a valid template: " +
                       wf +
                       ":10:55 (line 1, column 25 of the template): expected a filter name after '|', found end of tag (fix the "
                       "template syntax)\n"
                       "[error] 'issue.stages.build.hooks.before_run' is not a valid template: " +
                       wf +
                       ":11:87 (line 1, column 10 of the template): expected a loop variable name, found end of tag (fix the "
                       "template syntax)\n"
                       "[error] 'issue.stages.build.prompt_file' is not a valid template: " +
                       (dir / "p.md").string() +
                       ":2:1: '{% if %}' is not closed (missing '{% endif %}') (fix the template syntax)\n"
                       "[error] prompt file '" +
                       (dir / "missing.md").string() +
                       "' set for 'issue.stages.gone.prompt_file' cannot be read: No such file or directory\n"
                       // vik's walk: issue.stages before issue.hooks (config/issue.rs).
                       "[error] 'issue.hooks.after_create' is not a valid template: " +
                       wf +
                       ":6:19 (line 2, column 6 of the template): unclosed tag (missing '}}') (fix the template syntax)\n"
                       "Vik doctor shows 6 error(s), 0 warning(s)\n");
    auto j = run_host({"doctor", "--json", wf});
    auto v = boost::json::parse(j.out);
    CHECK(v.at("errors").at(3) ==
          boost::json::parse(R"({"severity":"error","pointer":"issue.stages.build.prompt_file","code":{"invalid_template":")" +
                             (dir / "p.md").string() + R"(:2:1"}})"));
    CHECK(v.at("errors").at(4).at("code").at("unreadable_prompt_file") == boost::json::value((dir / "missing.md").string()));
    // `run` refuses the same workflow before it claims any issue.
    auto run = run_host({"run", wf});
    CHECK(run.exit_code == 1);
    CHECK_THAT(run.err, Catch::StartsWith("invalid workflow config:\n'issues.pull.command' is not a valid template: "));
}

TEST_CASE("doctor: a tracker whose manifest takes its settings from the pull command needs issues.pull.command", "[doctor]") {
    TempDir dir;
    write_file(dir / "workflow.yml", R"(agents:
  coder: {runtime: codex, model: gpt-5}
issues:
  tracker: {kind: command}
issue:
  stages:
    plan: {when: {state: todo}, agent: coder, prompt: hi}
)");
    auto r = run_host({"doctor", (dir / "workflow.yml").string()});
    CHECK(r.exit_code == 1);
    CHECK_THAT(r.out,
               Catch::StartsWith("[error] 'issues.pull.command' is required by the 'command' tracker (command-tracker takes "
                                 "its settings from the pull command, "));
    CHECK_THAT(r.out, Catch::Contains("Vik doctor shows 1 error(s), 0 warning(s)"));
    auto run = run_host({"run", (dir / "workflow.yml").string()});
    CHECK(run.exit_code == 1);
    CHECK_THAT(run.err,
               Catch::StartsWith("invalid workflow config:\n'issues.pull.command' is required by the 'command' tracker"));
}

TEST_CASE("secrets: the API token, webhook URLs and the store URL are kept from agents like the tracker's token",
          "[doctor][security]") {
    auto loaded =
        vik::workflow::load_workflow_text("agents:\n  coder: {runtime: codex, model: gpt-5}\n"
                                          "issues:\n  tracker: {kind: file, path: issues.json, token_env: FILE_TOKEN}\n"
                                          "issue:\n  stages:\n    plan: {when: {state: todo}, agent: coder, prompt: hi}\n"
                                          "server: {port: 0, token_env: API_TOKEN}\n"
                                          "notify: {webhooks: [{url_env: HOOK_URL}]}\n"
                                          "store: {kind: postgres, url_env: PG_URL, workflow_id: w}\n",
                                          "/srv/proj/workflow.yml");
    REQUIRE(loaded);
    CHECK(vik::orchestrator::secret_names(loaded->config) ==
          std::vector<std::string>{"FILE_TOKEN", "API_TOKEN", "HOOK_URL", "PG_URL"});
}

TEST_CASE("store: the store section is checked: a known kind, and a postgres store names its URL variable and workflow id",
          "[doctor]") {
    auto load = [](const std::string &store) {
        return vik::workflow::load_workflow_text("agents:\n  coder: {runtime: codex, model: gpt-5}\n"
                                                 "issues:\n  tracker: {kind: file, path: issues.json}\n"
                                                 "issue:\n  stages:\n    plan: {when: {state: todo}, agent: coder, prompt: hi}\n"
                                                 "store: " +
                                                     store + "\n",
                                                 "/srv/proj/workflow.yml");
    };
    auto sqlite = load("{kind: sqlite}");
    REQUIRE(sqlite);
    CHECK(sqlite->config.store.kind == "sqlite");
    auto pg = load("{kind: postgres, url_env: VIK_PG_URL, workflow_id: shop}");
    REQUIRE(pg);
    CHECK(pg->config.store.url_env == "VIK_PG_URL");
    CHECK(pg->config.store.workflow_id == "shop");
    auto unknown = load("{kind: mysql}");
    REQUIRE_FALSE(unknown);
    CHECK_THAT(unknown.error().message, Catch::Contains("store.kind"));
    CHECK_THAT(unknown.error().message, Catch::Contains("expected sqlite or postgres, found 'mysql'"));
    auto no_url = load("{kind: postgres, workflow_id: shop}");
    REQUIRE_FALSE(no_url);
    CHECK_THAT(no_url.error().message, Catch::Contains("a postgres store needs 'url_env'"));
    auto no_id = load("{kind: postgres, url_env: VIK_PG_URL}");
    REQUIRE_FALSE(no_id);
    CHECK_THAT(no_id.error().message, Catch::Contains("a postgres store needs 'workflow_id'"));
    CHECK(pg->config.store.lease_ttl_sec == 30);
    auto ttl = load("{kind: postgres, url_env: VIK_PG_URL, workflow_id: shop, lease_ttl_sec: 12}");
    REQUIRE(ttl);
    CHECK(ttl->config.store.lease_ttl_sec == 12);
    auto short_ttl = load("{kind: postgres, url_env: VIK_PG_URL, workflow_id: shop, lease_ttl_sec: 2}");
    REQUIRE_FALSE(short_ttl);
    CHECK_THAT(short_ttl.error().message, Catch::Contains("store.lease_ttl_sec"));
    CHECK_THAT(short_ttl.error().message, Catch::Contains("a lease must last at least 3 seconds"));
}

TEST_CASE("plugin checks: the secrets withheld from agents are token_env and what the tracker's manifest declares", "[doctor]") {
    auto registry = vik::plugins::load_plugins({plugin_dir()});
    auto check = [&](const std::string &tracker) {
        auto loaded = vik::workflow::load_workflow_text(
            "agents:\n  coder: {runtime: codex, model: gpt-5}\n"
            "issues:\n  tracker: " +
                tracker +
                "\n"
                "issue:\n  stages:\n    plan: {when: {state: todo}, agent: coder, prompt: hi}\n",
            "/srv/proj/workflow.yml");
        REQUIRE(loaded);
        vik::workflow::check_plugins(loaded->config, registry, loaded->diagnostics);
        INFO(vik::workflow::render_text(loaded->diagnostics));
        CHECK(loaded->diagnostics.errors() == 0);
        return vik::orchestrator::tracker_secret_names(loaded->config);
    };
    // GITHUB_TOKEN and GH_TOKEN come from plugins/github-tracker/manifest.toml (secret_env).
    CHECK(check("{kind: github, repo: acme/app}") == std::vector<std::string>{"GITHUB_TOKEN", "GH_TOKEN"});
    CHECK(check("{kind: github, repo: acme/app, token_env: ACME_TOKEN}") ==
          std::vector<std::string>{"ACME_TOKEN", "GITHUB_TOKEN", "GH_TOKEN"});
    CHECK(check("{kind: github, repo: acme/app, token_env: GH_TOKEN}") == std::vector<std::string>{"GH_TOKEN", "GITHUB_TOKEN"});
    CHECK(check("{kind: file, path: issues.json, token_env: FILE_TOKEN}") == std::vector<std::string>{"FILE_TOKEN"});
    CHECK(check("{kind: file, path: issues.json}").empty());
}

TEST_CASE("doctor: on_fail names another stage of another state, and routes need a tracker that sets states",
          "[doctor][routing]") {
    TempDir dir;
    auto doctor = [&](const std::string &tracker, const std::string &on_fail, const std::string &rest = "") {
        write_file(dir / "issues.json", "[]");
        write_file(dir / "workflow.yml", "agents:\n  coder: {runtime: codex, model: gpt-5}\nissues: " + tracker +
                                             "\nissue:\n  stages:\n"
                                             "    test: {when: {state: testing}, agent: coder, prompt: hi, on_fail: " +
                                             on_fail +
                                             "}\n"
                                             "    lint: {when: {state: testing}, agent: coder, prompt: hi}\n"
                                             "    fix: {when: {state: fixing}, agent: coder, prompt: hi}\n" +
                                             rest);
        return run_host({"doctor", (dir / "workflow.yml").string()});
    };
    const std::string file = "{tracker: {kind: file, path: issues.json}}";
    auto ok = doctor(file, "{to: fix, after_attempts: 2}", "scheduling: {max_routes: 0}\n");
    CHECK(ok.out == "Vik doctor shows 0 error(s), 0 warning(s)\n");
    CHECK(doctor(file, "block").exit_code == 0);
    CHECK(doctor(file, "retry").exit_code == 0);

    auto unknown = doctor(file, "fixx");
    CHECK(unknown.exit_code == 1);
    CHECK_THAT(unknown.out, Catch::Contains("[error] stage 'fixx' set for 'issue.stages.test.on_fail' is not defined in "
                                            "issue.stages (on_fail takes retry, block or the name of another stage)"));
    auto itself = doctor(file, "test");
    CHECK_THAT(itself.out, Catch::Contains("[error] 'issue.stages.test.on_fail' routes the stage to itself; use `retry`"));
    auto same_state = doctor(file, "lint");
    CHECK_THAT(same_state.out, Catch::Contains("[error] 'issue.stages.test.on_fail' routes to stage 'lint', which runs in the "
                                               "same state 'testing'"));
    auto zero = doctor(file, "{to: fix, after_attempts: 0}");
    CHECK_THAT(zero.out,
               Catch::Contains("[error] 'issue.stages.test.on_fail.after_attempts' expected to be great than 0, got 0"));
    auto late = doctor(file, "{to: block, after_attempts: 5}");
    CHECK(late.exit_code == 0);
    CHECK_THAT(late.out, Catch::Contains("[warning] 'issue.stages.test.on_fail.after_attempts' is 5, more than "
                                         "scheduling.max_attempts (3): the pair is blocked by the retry policy before on_fail "
                                         "applies"));
    auto unknown_key = doctor(file, "{to: fix, after: 2}");
    CHECK_THAT(unknown_key.out, Catch::Contains("[warning] unknown field 'issue.stages.test.on_fail.after'"));

    auto command = doctor("{pull: {command: ./pull.sh}}", "fix");
    CHECK(command.exit_code == 0); // a warning: routes would block
    CHECK_THAT(command.out, Catch::Contains("[warning] 'issue.stages.test.on_fail' routes failures by setting the issue's "
                                            "state, which the 'command' tracker cannot do"));

    auto json_out = run_host({"doctor", "--json", (dir / "workflow.yml").string()});
    CHECK_THAT(json_out.out, Catch::Contains("\"route_needs_tracker_writes\": \"command\""));

    auto bad_type = doctor(file, "[fix]");
    CHECK(bad_type.exit_code == 1);
    CHECK_THAT(bad_type.err, Catch::Contains("'issue.stages.test.on_fail': invalid type: expected retry, block, a stage's name "
                                             "or a map, found a list"));
}

TEST_CASE("doctor: a gate needs a command, which is checked as a shell template", "[doctor][gates]") {
    TempDir dir;
    auto doctor = [&](const std::string &gate) {
        write_file(dir / "workflow.yml",
                   "agents:\n  coder: {runtime: codex, model: gpt-5}\nissues: {pull: {command: ./pull.sh}}\n"
                   "issue:\n  stages:\n    build:\n      when: {state: build}\n      agent: coder\n"
                   "      prompt: hi\n      gate: " +
                       gate + "\n");
        return run_host({"doctor", (dir / "workflow.yml").string()});
    };
    CHECK(doctor("{command: make test, timeout_sec: 900}").out == "Vik doctor shows 0 error(s), 0 warning(s)\n");
    CHECK_THAT(doctor("{command: ''}").out, Catch::Contains("[error] 'issue.stages.build.gate.command' cannot be empty string"));
    CHECK_THAT(doctor("{command: make, timeout_sec: 0}").out,
               Catch::Contains("[error] 'issue.stages.build.gate.timeout_sec' expected to be great than 0, got 0"));
    CHECK_THAT(doctor("{command: make, retries: 2}").out,
               Catch::Contains("[warning] unknown field 'issue.stages.build.gate.retries'"));
    auto unsafe = doctor("{command: 'eval {{ issue.title }}'}");
    CHECK(unsafe.exit_code == 1);
    CHECK_THAT(unsafe.out, Catch::Contains("[error] 'issue.stages.build.gate.command' substitutes a value where the shell cannot "
                                           "be kept from running it"));
    auto missing = doctor("{timeout_sec: 5}");
    CHECK(missing.exit_code == 1);
    CHECK_THAT(missing.err, Catch::Contains("'issue.stages.build.gate.command': missing field `command`"));
    // A human gate needs no command; its settings that cannot apply are warnings.
    CHECK(doctor("{human: true, notify_after_sec: 3600}").out == "Vik doctor shows 0 error(s), 0 warning(s)\n");
    CHECK(doctor("{command: make test, human: true}").out == "Vik doctor shows 0 error(s), 0 warning(s)\n");
    CHECK_THAT(doctor("{command: make, notify_after_sec: 60}").out,
               Catch::Contains("[warning] 'issue.stages.build.gate.notify_after_sec' is set but never applies: the gate has "
                               "no `human: true` (remove it, or complete the gate)"));
    CHECK_THAT(doctor("{human: true, timeout_sec: 60}").out,
               Catch::Contains("[warning] 'issue.stages.build.gate.timeout_sec' is set but never applies: the gate has no "
                               "command"));
    auto not_bool = doctor("{human: yes please}");
    CHECK(not_bool.exit_code == 1);
    CHECK_THAT(not_bool.err, Catch::Contains("issue.stages.build.gate.human"));
    CHECK_THAT(doctor("{human: false}").err, Catch::Contains("'issue.stages.build.gate.command': missing field `command`"));
}

TEST_CASE("doctor: plugins names loaded hooks plugins and gives settings to plugins that take them", "[doctor][plugins]") {
    TempDir dir;
    auto doctor = [&](const std::string &plugins) {
        write_file(dir / "workflow.yml",
                   "agents:\n  coder: {runtime: codex, model: gpt-5}\nissues: {pull: {command: ./pull.sh}}\n"
                   "issue:\n  hooks: {after_create: make setup}\n  stages:\n    build:\n      when: {state: build}\n"
                   "      agent: coder\n      prompt: hi\n" +
                       plugins);
        return run_host({"doctor", (dir / "workflow.yml").string()});
    };
    CHECK(doctor("plugins: {hooks: [shell-hooks], settings: {codex: {}}}\n").out ==
          "Vik doctor shows 0 error(s), 0 warning(s)\n");
    auto bad = doctor("plugins:\n  hooks: [shell-hooks, nope, codex]\n  settings:\n    shell-hooks: {color: red}\n"
                      "    file-tracker: {path: x}\n    ghost: {a: 1}\n");
    CHECK(bad.exit_code == 1);
    CHECK_THAT(bad.out, Catch::Contains("'plugins.hooks' names 'nope', which is not a loaded plugin (hooks plugins loaded: "
                                        "shell-hooks)"));
    CHECK_THAT(bad.out, Catch::Contains("'plugins.hooks' names 'codex', which is not a hooks plugin"));
    CHECK_THAT(bad.out, Catch::Contains("[warning] unknown field 'plugins.settings.shell-hooks.color'"));
    CHECK_THAT(bad.out, Catch::Contains("'file-tracker' is a tracker plugin: its settings are the keys of issues.tracker"));
    CHECK_THAT(bad.out, Catch::Contains("'plugins.settings.ghost' names no loaded plugin, so it never applies"));
    // Hook scripts with no hooks plugin selected would be skipped: an error.
    CHECK_THAT(doctor("plugins: {hooks: []}\n").out,
               Catch::Contains("the workflow has hook scripts but plugins.hooks selects no loaded hooks plugin"));
    CHECK_THAT(doctor("plugins: {hooks: [shell-hooks, shell-hooks]}\n").err, Catch::Contains("'shell-hooks' is listed twice"));
    // Isolation from the workflow: any loaded library, runtimes too.
    CHECK(doctor("plugins: {isolate: [shell-hooks]}\n").out == "Vik doctor shows 0 error(s), 0 warning(s)\n");
    CHECK(doctor("plugins: {isolate: [codex]}\n").out == "Vik doctor shows 0 error(s), 0 warning(s)\n");
    CHECK_THAT(doctor("plugins: {isolate: [nope]}\n").out,
               Catch::Contains("'plugins.isolate' names 'nope', which is not a loaded plugin"));
}

TEST_CASE("doctor: an agent gate names a profile and a prompt, and its verdict file stays in the workspace", "[doctor][gates]") {
    TempDir dir;
    auto doctor = [&](const std::string &gate) {
        write_file(dir / "workflow.yml",
                   "agents:\n  coder: {runtime: codex, model: gpt-5}\n  critic: {runtime: codex, model: gpt-5}\n"
                   "issues: {pull: {command: ./pull.sh}}\n"
                   "issue:\n  stages:\n    build:\n      when: {state: build}\n      agent: coder\n"
                   "      prompt: hi\n      gate:\n" +
                       gate);
        return run_host({"doctor", (dir / "workflow.yml").string()});
    };
    CHECK(doctor("        agent: critic\n        prompt: 'Review {{ issue.id }}'\n").out ==
          "Vik doctor shows 0 error(s), 0 warning(s)\n");
    CHECK(doctor("        command: make test\n        agent: critic\n        prompt: review\n        verdict_file: "
                 "out/verdict.json\n        human: true\n")
              .out == "Vik doctor shows 0 error(s), 0 warning(s)\n");
    auto unknown = doctor("        agent: nobody\n        prompt: review\n");
    CHECK(unknown.exit_code == 1);
    CHECK_THAT(unknown.out, Catch::Contains("'issue.stages.build.gate.agent'"));
    CHECK_THAT(unknown.out, Catch::Contains("nobody"));
    CHECK_THAT(doctor("        agent: critic\n").err,
               Catch::Contains("'issue.stages.build.gate.prompt': missing field `prompt`"));
    CHECK_THAT(doctor("        agent: critic\n        prompt: ''\n").out,
               Catch::Contains("[error] 'issue.stages.build.gate.prompt' cannot be empty string"));
    auto bad_template = doctor("        agent: critic\n        prompt: 'Review {{ issue.id '\n");
    CHECK(bad_template.exit_code == 1);
    CHECK_THAT(bad_template.out, Catch::Contains("issue.stages.build.gate.prompt"));
    auto escapes = doctor("        agent: critic\n        prompt: review\n        verdict_file: ../verdict.json\n");
    CHECK(escapes.exit_code == 1);
    CHECK_THAT(escapes.err,
               Catch::Contains("'issue.stages.build.gate.verdict_file': invalid value: expected a file path relative "
                               "to the workspace, without `.` or `..`, found '../verdict.json'"));
    CHECK_THAT(doctor("        command: make\n        prompt: review\n").out,
               Catch::Contains("[warning] 'issue.stages.build.gate.prompt' is set but never applies: the gate has no `agent`"));
}

TEST_CASE("doctor: a stage's outcome names a file inside the workspace, typed fields and a condition that compiles",
          "[doctor][outcomes]") {
    TempDir dir;
    auto doctor = [&](const std::string &outcome) {
        write_file(dir / "workflow.yml",
                   "agents:\n  coder: {runtime: codex, model: gpt-5}\nissues: {pull: {command: ./pull.sh}}\n"
                   "issue:\n  stages:\n    build:\n      when: {state: build}\n      agent: coder\n"
                   "      prompt: hi\n      outcome: " +
                       outcome + "\n");
        return run_host({"doctor", (dir / "workflow.yml").string()});
    };
    CHECK(doctor("{file: .vik/result.json, fields: {tests_passed: boolean, n: integer}, succeed_if: 'outcome.tests_passed and "
                 "outcome.n > 0'}")
              .out == "Vik doctor shows 0 error(s), 0 warning(s)\n");
    auto escapes = doctor("{file: ../result.json}");
    CHECK(escapes.exit_code == 1);
    CHECK_THAT(escapes.err, Catch::Contains("'issue.stages.build.outcome.file': invalid value: expected a file path relative "
                                            "to the workspace, without `.` or `..`, found '../result.json'"));
    for (const char *bad : {"/tmp/result.json", ".", "out/", "a/./b.json"}) {
        INFO(bad);
        CHECK_THAT(doctor(std::string("{file: '") + bad + "'}").err,
                   Catch::Contains("expected a file path relative to the workspace"));
    }
    auto type = doctor("{file: r.json, fields: {ok: bool}}");
    CHECK(type.exit_code == 1);
    CHECK_THAT(type.err,
               Catch::Contains("'issue.stages.build.outcome.fields.ok': invalid value: expected string, number, integer, "
                               "boolean, array or object, found 'bool'"));
    CHECK_THAT(doctor("{fields: {ok: boolean}}").err, Catch::Contains("'issue.stages.build.outcome.file': missing field `file`"));
    CHECK_THAT(doctor("{file: r.json, when: x}").out,
               Catch::Contains("[warning] unknown field 'issue.stages.build.outcome.when'"));
    auto condition = doctor("{file: r.json, succeed_if: 'outcome.ok ==='}");
    CHECK(condition.exit_code == 1);
    CHECK_THAT(condition.out, Catch::Contains("[error] 'issue.stages.build.outcome.succeed_if' is not a valid template"));
}

TEST_CASE("doctor: a schedule needs a cron expression that fires, a time zone, an issue and a stage's state",
          "[doctor][schedules]") {
    TempDir dir;
    auto doctor = [&](const std::string &schedule, const std::string &tracker = "{kind: file, path: issues.json}") {
        write_file(dir / "workflow.yml",
                   "agents:\n  coder: {runtime: codex, model: gpt-5}\nissues: {tracker: " + tracker +
                       "}\nissue:\n  stages:\n    upkeep:\n      when: {state: maintenance}\n      agent: coder\n"
                       "      prompt: hi\nschedules:\n  nightly: " +
                       schedule + "\n");
        return run_host({"doctor", (dir / "workflow.yml").string()});
    };
    const std::string ok = "{cron: '0 3 * * *', time_zone: Europe/Berlin, issue: M-1, state: maintenance";
    CHECK(doctor(ok + "}").out == "Vik doctor shows 0 error(s), 0 warning(s)\n");
    CHECK(doctor(ok + ", missed: skip}").out == "Vik doctor shows 0 error(s), 0 warning(s)\n");
    auto cron = doctor("{cron: '0 25 * * *', time_zone: UTC, issue: M-1, state: maintenance}");
    CHECK(cron.exit_code == 1);
    CHECK_THAT(cron.err, Catch::Contains("'schedules.nightly.cron': invalid value: '0 25 * * *': hour 25 is out of range 0-23"));
    CHECK_THAT(doctor("{cron: '0 0 30 2 *', time_zone: UTC, issue: M-1, state: maintenance}").err,
               Catch::Contains("'schedules.nightly.cron': invalid value: '0 0 30 2 *' never fires"));
    auto zone = doctor("{cron: '@daily', time_zone: Mars/Olympus, issue: M-1, state: maintenance}");
    CHECK(zone.exit_code == 1);
    CHECK_THAT(zone.err, Catch::Contains("'schedules.nightly.time_zone': invalid value: time zone 'Mars/Olympus' is not in "
                                         "/usr/share/zoneinfo"));
    CHECK_THAT(doctor("{cron: '@daily', issue: M-1, state: maintenance}").err,
               Catch::Contains("'schedules.nightly.time_zone': missing field `time_zone`"));
    CHECK_THAT(doctor("{cron: '@daily', time_zone: UTC, issue: M-1, state: nowhere}").out,
               Catch::Contains("[warning] 'schedules.nightly.state' is 'nowhere', which no stage's when.state takes"));
    CHECK_THAT(doctor(ok + ", missed: twice}").err,
               Catch::Contains("'schedules.nightly.missed': invalid value: expected run_once or skip, found 'twice'"));
    CHECK_THAT(doctor(ok + ", every: 5}").out, Catch::Contains("[warning] unknown field 'schedules.nightly.every'"));
}
