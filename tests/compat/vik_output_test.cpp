// vik-host's output where vik's own libraries fix the format (issue 12 §8): serde_json's pretty
// printer, tracing-subscriber's flattened JSON log lines, chrono's Display of a UTC time, and the
// order and pointers of vik's diagnostics walk (config/diagnose.rs, config/issue.rs).
#include "daemon/state_file.hpp"
#include "logging/logging.hpp"
#include "support/test_support.hpp"
#include "workflow/loader.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>

using namespace vik::test;
namespace fs = std::filesystem;

namespace {

std::vector<std::string> pointers(const vik::workflow::Diagnostics &d, vik::workflow::Severity sev) {
    std::vector<std::string> out;
    for (const auto &i : d.items)
        if (i.severity == sev) out.push_back(i.pointer);
    return out;
}

vik::workflow::Diagnostics ordered(const std::string &yaml) {
    auto loaded = vik::workflow::load_workflow_text(yaml, "/srv/proj/workflow.yml");
    REQUIRE(loaded);
    vik::workflow::order_like_vik(loaded->diagnostics, loaded->config);
    return loaded->diagnostics;
}

std::chrono::system_clock::time_point at_2026_01_02_030405_123456() {
    using namespace std::chrono;
    return sys_days{year{2026} / January / 2} + hours{3} + minutes{4} + seconds{5} + microseconds{123456};
}

} // namespace

TEST_CASE("compat: JSON text is serde_json's, compact and pretty", "[compat]") {
    auto v = boost::json::parse(R"({"errors":[{"severity":"error","code":{"non_positive_number":0}}],"warnings":[],"m":{},
                                    "s":"q\"b\\n\n\t\u0001/é"})");
    CHECK(vik::logging::json_compact(v) ==
          R"({"errors":[{"severity":"error","code":{"non_positive_number":0}}],"warnings":[],"m":{},"s":"q\"b\\n\n\t\u0001/é"})");
    CHECK(vik::logging::json_pretty(v) == "{\n"
                                          "  \"errors\": [\n"
                                          "    {\n"
                                          "      \"severity\": \"error\",\n"
                                          "      \"code\": {\n"
                                          "        \"non_positive_number\": 0\n"
                                          "      }\n"
                                          "    }\n"
                                          "  ],\n"
                                          "  \"warnings\": [],\n"
                                          "  \"m\": {},\n"
                                          "  \"s\": \"q\\\"b\\\\n\\n\\t\\u0001/é\"\n"
                                          "}");
}

TEST_CASE("compat: log lines carry their fields as keys of their own, as tracing's flattened JSON layer", "[compat]") {
    auto t = at_2026_01_02_030405_123456();
    CHECK(
        vik::logging::json_log_line(t, "INFO", "issues pulled count=3 iteration=12", "vik") ==
        R"({"timestamp":"2026-01-02T03:04:05.123456Z","level":"INFO","message":"issues pulled","count":3,"iteration":12,"target":"vik"})"
        "\n");
    CHECK(
        vik::logging::json_log_line(
            t, "WARN", "found stale daemon state file on startup; overwriting stale_pid=42 state_file=/a b/state.json", "vik") ==
        R"({"timestamp":"2026-01-02T03:04:05.123456Z","level":"WARN","message":"found stale daemon state file on startup; overwriting","stale_pid":42,"state_file":"/a b/state.json","target":"vik"})"
        "\n");
    auto j = [&](const std::string &level, const std::string &m) {
        return boost::json::parse(vik::logging::json_log_line(t, level, m, "vik"));
    };
    // Ids stay strings; the text after the fields is the error (or detail, below warnings).
    auto aborted = j("ERROR", "stage aborted issue_id=7 stage=In Progress: hook `before_run` exited with non-zero status 1: x=1");
    CHECK(aborted == boost::json::parse(R"({"timestamp":"2026-01-02T03:04:05.123456Z","level":"ERROR","message":"stage aborted",
        "issue_id":"7","stage":"In Progress","error":"hook `before_run` exited with non-zero status 1: x=1","target":"vik"})"));
    auto started = j("INFO", "starting vik: workflow=/w/workflow.yml tracker=file stages=2");
    CHECK(started.at("message") == "starting vik");
    CHECK(started.at("workflow") == "/w/workflow.yml");
    CHECK(started.at("stages") == 2);
    auto failed = j("ERROR", "intake cycle failed: issue pull command exited with code 1: boom code=2 (tracker command)");
    CHECK(failed.at("message") == "intake cycle failed");
    CHECK(failed.at("error") == "issue pull command exited with code 1: boom code=2 (tracker command)");
    CHECK_FALSE(failed.as_object().contains("code"));
    auto removed = j("INFO", "workspace removed issue_id=A-1 (terminal state)");
    CHECK(removed.at("issue_id") == "A-1");
    CHECK(removed.at("detail") == "(terminal state)");
    CHECK(j("INFO", "SIGHUP received and ignored").at("message") == "SIGHUP received and ignored");
    // Text from a tracker cannot rewrite the line's own keys or a field given before it.
    auto forged = j("INFO", "issue ready; launching stages issue_id=x level=ERROR message=hi issue_id=y state=todo");
    CHECK(forged == boost::json::parse(R"({"timestamp":"2026-01-02T03:04:05.123456Z","level":"INFO",
        "message":"issue ready; launching stages","issue_id":"x level=ERROR message=hi issue_id=y","state":"todo","target":"vik"})"));
    CHECK(j("INFO", "odd target=x count=1").at("message") == "odd target=x");
}

TEST_CASE("compat: status prints started_at as chrono's Display of a UTC time", "[compat]") {
    using vik::daemon::started_at_display;
    CHECK(started_at_display("2026-01-01T00:00:00.000Z") == "2026-01-01 00:00:00 UTC");
    CHECK(started_at_display("2026-01-01T00:00:00Z") == "2026-01-01 00:00:00 UTC");
    CHECK(started_at_display("2026-11-23T20:58:38.123Z") == "2026-11-23 20:58:38.123 UTC");
    CHECK(started_at_display("2026-11-23T20:58:38.120Z") == "2026-11-23 20:58:38.120 UTC");
    CHECK(started_at_display("2026-11-23T20:58:38.123456Z") == "2026-11-23 20:58:38.123456 UTC");
    CHECK(started_at_display("2026-11-23T20:58:38.123456789Z") == "2026-11-23 20:58:38.123456789 UTC");
    CHECK(started_at_display("2026-11-23T20:58:38.1234Z") == "2026-11-23 20:58:38.123400 UTC");
    CHECK(started_at_display("2026-01-01T01:30:00+02:00") == "2025-12-31 23:30:00 UTC");
    CHECK(started_at_display("yesterday") == "yesterday");
}

TEST_CASE("compat: diagnostics come in vik's order, unknown fields of a map after its known fields", "[compat]") {
    auto d = ordered(R"(extra_top_field: true
loop:
  extra_loop_field: true
  max_issue_concurrency: 0
workspace:
  extra_workspace_field: true
  root: workspace
agents:
  codex:
    extra_agent_field: true
    runtime: codex
    model: ''
issues:
  extra_issues_field: true
  pull:
    extra_pull_field: true
    command: ./pull
issue:
  extra_issue_field: true
  hooks:
    extra_issue_hook_field: true
  stages:
    plan:
      extra_stage_field: true
      when:
        extra_when_field: true
        state: ''
      agent: ghost
      prompt: hi
      hooks:
        extra_stage_hook_field: true
    review:
      when: {state: ''}
      agent: '  '
      prompt: ''
)");
    using vik::workflow::Severity;
    CHECK(pointers(d, Severity::warning) ==
          std::vector<std::string>{"loop.extra_loop_field", "workspace.extra_workspace_field", "agents.codex.extra_agent_field",
                                   "issues.pull.extra_pull_field", "issues.extra_issues_field",
                                   "issue.stages.plan.when.extra_when_field", "issue.stages.plan.hooks.extra_stage_hook_field",
                                   "issue.stages.plan.extra_stage_field", "issue.hooks.extra_issue_hook_field",
                                   "issue.extra_issue_field", "extra_top_field"});
    CHECK(pointers(d, Severity::error) == std::vector<std::string>{"loop.max_issue_concurrency", "agents.codex.model",
                                                                   "issue.stages.plan.when.state", "issue.stages.plan.agent",
                                                                   "issue.stages.review.when.state", "issue.stages.review.agent",
                                                                   "issue.stages.review.prompt"});
    // A blank agent is an empty string (vik checks it before looking the profile up).
    auto agent =
        std::find_if(d.items.begin(), d.items.end(), [](const auto &i) { return i.pointer == "issue.stages.review.agent"; });
    REQUIRE(agent != d.items.end());
    CHECK(agent->code == "empty_str");
    CHECK(agent->message == "'issue.stages.review.agent' cannot be empty string");
}

TEST_CASE("compat: a stage with a blank name points at issue.stages", "[compat]") {
    using vik::workflow::Severity;
    auto empty = ordered(R"(agents:
  codex: {runtime: codex, model: m}
issues: {pull: {command: ./pull}}
issue:
  stages:
    "": {when: {state: ''}, agent: ghost, prompt: hi, extra: 1}
)");
    CHECK(pointers(empty, Severity::error) ==
          std::vector<std::string>{"issue.stages", "issue.stages.when.state", "issue.stages.agent"});
    CHECK(pointers(empty, Severity::warning) == std::vector<std::string>{"issue.stages.extra"});
    CHECK(empty.items.at(0).message == "'issue.stages' cannot be empty string");
    CHECK(empty.items.at(2).message ==
          "agent profile 'ghost' set for 'issue.stages.agent' is not defined in agents configuration section");
    auto blank = ordered(R"(agents:
  codex: {runtime: codex, model: m}
issues: {pull: {command: ./pull}}
issue:
  stages:
    plan: {when: {state: todo}, agent: ghost, prompt: hi}
    " ": {when: {state: todo}, agent: codex, prompt: ''}
)");
    CHECK(pointers(blank, Severity::error) ==
          std::vector<std::string>{"issue.stages.plan.agent", "issue.stages", "issue.stages.prompt"});
}

TEST_CASE("compat: a profile named '' and a blank stage agent get vik's pointers and codes", "[compat]") {
    using vik::workflow::Severity;
    auto d = ordered(R"(agents:
  "": {runtime: codex, model: ''}
  codex: {runtime: codex, model: m}
issues: {pull: {command: ./pull}}
issue:
  stages:
    plan: {when: {state: todo}, agent: '', prompt: hi}
)");
    CHECK(pointers(d, Severity::error) == std::vector<std::string>{"agents.model", "issue.stages.plan.agent"});
    REQUIRE(d.items.size() == 2);
    CHECK(d.items[0].message == "'agents.model' cannot be empty string");
    CHECK(d.items[1].message == "'issue.stages.plan.agent' cannot be empty string");
}

TEST_CASE("compat: doctor --json prints serde_json's pretty form", "[compat][doctor]") {
    TempDir dir;
    write_file(dir / "workflow.yml", R"(extra: 1
loop: {wait_ms: 0}
agents:
  coder: {runtime: codex, model: gpt-5}
issues: {pull: {command: ./pull.sh}}
issue:
  stages:
    plan: {when: {state: todo}, agent: coder, prompt: hi}
)");
    auto r = run_host({"doctor", "--json", (dir / "workflow.yml").string()});
    CHECK(r.exit_code == 1);
    CHECK(r.out == "{\n"
                   "  \"errors\": [\n"
                   "    {\n"
                   "      \"severity\": \"error\",\n"
                   "      \"pointer\": \"loop.wait_ms\",\n"
                   "      \"code\": {\n"
                   "        \"non_positive_number\": 0\n"
                   "      }\n"
                   "    }\n"
                   "  ],\n"
                   "  \"warnings\": [\n"
                   "    {\n"
                   "      \"severity\": \"warning\",\n"
                   "      \"pointer\": \"extra\",\n"
                   "      \"code\": \"unknown_field\"\n"
                   "    }\n"
                   "  ]\n"
                   "}\n");
}

TEST_CASE("compat: a directory or a missing file as the workflow gets vik's texts", "[compat][doctor]") {
    TempDir dir;
    fs::create_directories(dir / "wf.yml");
    auto d = run_host({"doctor", "wf.yml"}, dir.path);
    CHECK(d.exit_code == 1);
    CHECK(d.out.empty());
    CHECK(d.err == "workflow file " + (dir / "wf.yml").string() + " is a directory, expected a file\n");
    auto j = run_host({"doctor", "--json", "./sub/../wf.yml"}, dir.path);
    CHECK(j.exit_code == 1);
    CHECK_THAT(j.err, Catch::StartsWith("workflow file " + (dir / "wf.yml").string() + " is a directory, expected a file\n"));
    auto missing = run_host({"doctor", (dir / "nope.yml").string()});
    CHECK(missing.exit_code == 1);
    CHECK(missing.err == "workflow file not found at " + (dir / "nope.yml").string() + "\n");
    auto relative = run_host({"doctor", "nope.yml"}, dir.path);
    CHECK(relative.err == "workflow file not found at " + (dir / "nope.yml").string() + "\n");
    // Load errors name the absolute path too (vik's fixtures/workflows/error.yml).
    write_file(dir / "error.yml", "loop:\n");
    auto error = run_host({"doctor", "error.yml"}, dir.path);
    CHECK(error.exit_code == 1);
    CHECK(error.out.empty());
    CHECK_THAT(error.err, Catch::StartsWith((dir / "error.yml").string() + ":"));
    CHECK_THAT(error.err, Catch::Contains("missing field `agents`"));
}
