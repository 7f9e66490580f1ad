// workflow.yml rules of vik-compat §2, row by row.
#include "workflow/loader.hpp"
#include "workflow/paths.hpp"

#include <catch2/catch.hpp>

#include <cstdlib>

using namespace vik::workflow;

namespace {

const char *kBase = R"(agents:
  coder:
    runtime: codex
    model: gpt-5
issues:
  pull:
    command: ./pull.sh
issue:
  stages:
    plan:
      when:
        state: todo
      agent: coder
      prompt: "Plan {{ issue.title }}"
)";

std::expected<Loaded, LoadError> load(const std::string &text) { return load_workflow_text(text, "/srv/proj/workflow.yml"); }

std::string replace(std::string text, const std::string &from, const std::string &to) {
    auto pos = text.find(from);
    REQUIRE(pos != std::string::npos);
    return text.replace(pos, from.size(), to);
}

std::vector<std::string> messages(const Diagnostics &d) {
    std::vector<std::string> out;
    for (auto &i : d.items)
        out.push_back((i.severity == Severity::error ? "E " : "W ") + i.message);
    return out;
}

} // namespace

TEST_CASE("workflow: a minimal vik workflow loads with vik's defaults and no diagnostics", "[workflow]") {
    auto l = load(kBase);
    REQUIRE(l);
    CHECK(l->diagnostics.items.empty());
    const auto &c = l->config;
    CHECK(c.max_issue_concurrency == 10);
    CHECK(c.wait_ms == 5000);
    CHECK_FALSE(c.max_iterations);
    CHECK(c.idle_sec == 5);
    CHECK(c.home == "/srv/proj/.vik"); // no workspace section: .vik beside the workflow
    CHECK(c.scoped_root() == "/srv/proj/.vik/workflows/-srv-proj-workflow.yml");
    CHECK(c.issues_dir() == "/srv/proj/.vik/workflows/-srv-proj-workflow.yml/issues");
    CHECK(c.sessions_dir().filename() == "sessions");
    CHECK(c.logs_dir().filename() == "logs");
    CHECK(c.service_dir().filename() == "service");
    REQUIRE(c.agents.size() == 1);
    CHECK(c.agents[0].runtime == "codex");
    REQUIRE(c.stages.size() == 1);
    CHECK(c.stages[0].state == "todo");
    CHECK(*c.stages[0].prompt == "Plan {{ issue.title }}");
    CHECK(c.tracker_kind == "command");
    CHECK(*c.pull_command == "./pull.sh");
}

TEST_CASE("workflow: zero values are vik's non_positive_number errors", "[workflow]") {
    struct Row {
        const char *yaml, *pointer;
    };
    for (Row row : {Row{"loop:\n  max_issue_concurrency: 0\n", "loop.max_issue_concurrency"},
                    Row{"loop:\n  wait_ms: 0\n", "loop.wait_ms"}, Row{"loop:\n  max_iterations: 0\n", "loop.max_iterations"}}) {
        auto l = load(std::string(row.yaml) + kBase);
        REQUIRE(l);
        REQUIRE(l->diagnostics.items.size() == 1);
        auto &d = l->diagnostics.items[0];
        CHECK(d.severity == Severity::error);
        CHECK(d.pointer == row.pointer);
        CHECK(d.code == "non_positive_number");
        CHECK(d.message == std::string("'") + row.pointer + "' expected to be great than 0, got 0");
    }
    auto l = load(replace(kBase, "command: ./pull.sh", "command: ./pull.sh\n    idle_sec: 0"));
    REQUIRE(l);
    CHECK(messages(l->diagnostics) == std::vector<std::string>{"E 'issues.pull.idle_sec' expected to be great than 0, got 0"});
}

TEST_CASE("workflow: loop values and max_iterations null", "[workflow]") {
    auto l = load(std::string("loop:\n  max_issue_concurrency: 3\n  wait_ms: 10\n  max_iterations: 7\n") + kBase);
    REQUIRE(l);
    CHECK(l->config.max_issue_concurrency == 3);
    CHECK(l->config.wait_ms == 10);
    CHECK(*l->config.max_iterations == 7);
    auto n = load(std::string("loop:\n  max_iterations: null\n") + kBase);
    REQUIRE(n);
    CHECK_FALSE(n->config.max_iterations);
}

TEST_CASE("workflow: an empty `loop:` is an empty section, `loop: null` is a type error", "[workflow]") {
    auto empty = load(std::string("loop:\n") + kBase);
    REQUIRE(empty);
    CHECK(empty->diagnostics.items.empty());
    CHECK(empty->config.max_issue_concurrency == 10);
    auto null = load(std::string("loop: null\n") + kBase);
    REQUIRE_FALSE(null);
    CHECK_THAT(null.error().message,
               Catch::StartsWith("/srv/proj/workflow.yml:1:7: 'loop': invalid type: expected a map, found null"));
}

TEST_CASE("workflow: wrong types are load errors naming file, line and column", "[workflow]") {
    auto l = load(std::string("loop:\n  wait_ms: soon\n") + kBase);
    REQUIRE_FALSE(l);
    CHECK(l.error().message == "/srv/proj/workflow.yml:2:12: 'loop.wait_ms': invalid type: expected an integer, found 'soon'");
    auto bad_yaml = load("agents: [unclosed\n");
    REQUIRE_FALSE(bad_yaml);
    CHECK_THAT(bad_yaml.error().message, Catch::StartsWith("/srv/proj/workflow.yml:"));
    CHECK_THAT(bad_yaml.error().message, Catch::Contains("invalid YAML"));
    auto not_map = load("- a\n- b\n");
    REQUIRE_FALSE(not_map);
    CHECK_THAT(not_map.error().message, Catch::Contains("the workflow must be a YAML map"));
}

TEST_CASE("workflow: missing required keys are load errors", "[workflow]") {
    for (auto [from, key] : std::vector<std::pair<std::string, std::string>>{
             {"    runtime: codex\n", "runtime"}, {"    model: gpt-5\n", "model"}, {"      agent: coder\n", "agent"}}) {
        auto l = load(replace(kBase, from, ""));
        REQUIRE_FALSE(l);
        CHECK_THAT(l.error().message, Catch::Contains("missing field `" + key + "`"));
    }
    auto no_cmd = load(replace(kBase, "    command: ./pull.sh\n", "    idle_sec: 3\n"));
    REQUIRE_FALSE(no_cmd);
    CHECK_THAT(no_cmd.error().message, Catch::Contains("missing field `command`"));
    auto no_agents = load(replace(kBase, "agents:\n  coder:\n    runtime: codex\n    model: gpt-5\n", ""));
    REQUIRE_FALSE(no_agents);
    CHECK_THAT(no_agents.error().message, Catch::Contains("missing field `agents`"));
}

TEST_CASE("workflow: a workflow that names its tracker leaves issues.pull to the tracker's manifest", "[workflow]") {
    auto named = load(replace(kBase, "  pull:\n    command: ./pull.sh\n", "  tracker: {kind: command}\n"));
    REQUIRE(named); // no load error: plugin_checks reports it if the manifest wants the command
    CHECK(named->config.tracker_kind == "command");
    CHECK_FALSE(named->config.pull_command);
    auto unnamed = load(replace(kBase, "  pull:\n    command: ./pull.sh\n", "  tracker: {path: issues.json}\n"));
    REQUIRE_FALSE(unnamed); // vik's form: no tracker named, so vik's pull command is required
    CHECK_THAT(unnamed.error().message, Catch::Contains("missing field `pull`"));
}

TEST_CASE("workflow: empty strings and maps are vik's diagnostics", "[workflow]") {
    auto model = load(replace(kBase, "model: gpt-5", "model: '  '"));
    REQUIRE(model);
    CHECK(messages(model->diagnostics) == std::vector<std::string>{"E 'agents.coder.model' cannot be empty string"});
    auto cmd = load(replace(kBase, "command: ./pull.sh", "command: ''"));
    REQUIRE(cmd);
    CHECK(messages(cmd->diagnostics) == std::vector<std::string>{"E 'issues.pull.command' cannot be empty string"});
    auto state = load(replace(kBase, "state: todo", "state: ''"));
    REQUIRE(state);
    CHECK(messages(state->diagnostics) == std::vector<std::string>{"E 'issue.stages.plan.when.state' cannot be empty string"});
    auto prompt = load(replace(kBase, "prompt: \"Plan {{ issue.title }}\"", "prompt: ''"));
    REQUIRE(prompt);
    CHECK(messages(prompt->diagnostics) == std::vector<std::string>{"E 'issue.stages.plan.prompt' cannot be empty string"});
    auto root = load(std::string("workspace:\n  root: ''\n") + kBase);
    REQUIRE(root);
    CHECK(messages(root->diagnostics) == std::vector<std::string>{"E 'workspace.root' cannot be empty string"});
    auto agents = load(replace(kBase, "agents:\n  coder:\n    runtime: codex\n    model: gpt-5\n", "agents: {}\n"));
    REQUIRE(agents);
    CHECK(messages(agents->diagnostics) ==
          std::vector<std::string>{
              "E 'agents' cannot be empty map",
              "E agent profile 'coder' set for 'issue.stages.plan.agent' is not defined in agents configuration section"});
    auto stages =
        load("agents:\n  a:\n    runtime: codex\n    model: m\nissues:\n  pull:\n    command: x\nissue:\n  stages: {}\n");
    REQUIRE(stages);
    CHECK(messages(stages->diagnostics) == std::vector<std::string>{"E 'issue.stages' cannot be empty map"});
    auto empty_key = load(replace(kBase, "    plan:\n", "    '':\n"));
    REQUIRE(empty_key);
    CHECK(messages(empty_key->diagnostics) == std::vector<std::string>{"E 'issue.stages' cannot be empty string"});
}

TEST_CASE("workflow: an unknown agent is vik's unknown_agent error", "[workflow]") {
    auto l = load(replace(kBase, "agent: coder", "agent: reviewer"));
    REQUIRE(l);
    REQUIRE(l->diagnostics.items.size() == 1);
    auto &d = l->diagnostics.items[0];
    CHECK(d.code == "unknown_agent");
    CHECK(d.value == "reviewer");
    CHECK(d.message ==
          "agent profile 'reviewer' set for 'issue.stages.plan.agent' is not defined in agents configuration section");
}

TEST_CASE("workflow: unknown fields are warnings at every level", "[workflow]") {
    std::string text = std::string("colour: blue\nloop:\n  speed: 3\nworkspace:\n  size: 1\n") + kBase;
    text = replace(text, "    model: gpt-5\n", "    model: gpt-5\n    temperature: 1\n");
    text = replace(text, "    command: ./pull.sh\n", "    command: ./pull.sh\n    every: 2\n");
    text = replace(text, "      agent: coder\n", "      agent: coder\n      owner: me\n      hooks:\n        before_all: x\n");
    text = replace(text, "        state: todo\n", "        state: todo\n        label: x\n");
    auto l = load(text);
    REQUIRE(l);
    CHECK(l->diagnostics.errors() == 0);
    CHECK(messages(l->diagnostics) ==
          std::vector<std::string>{"W unknown field 'loop.speed'", "W unknown field 'workspace.size'",
                                   "W unknown field 'agents.coder.temperature'", "W unknown field 'issues.pull.every'",
                                   "W unknown field 'issue.stages.plan.owner'", "W unknown field 'issue.stages.plan.when.label'",
                                   "W unknown field 'issue.stages.plan.hooks.before_all'", "W unknown field 'colour'"});
}

TEST_CASE("workflow: list-form stages and the prompt-source rule are load errors", "[workflow]") {
    auto list = load("agents:\n  a:\n    runtime: codex\n    model: m\nissues:\n  pull:\n    command: x\nissue:\n  stages:\n    "
                     "- name: plan\n");
    REQUIRE_FALSE(list);
    CHECK_THAT(list.error().message, Catch::Contains("the list form is not supported"));
    auto both = load(replace(kBase, "      prompt: \"Plan {{ issue.title }}\"\n", "      prompt: a\n      prompt_file: b.md\n"));
    REQUIRE_FALSE(both);
    CHECK_THAT(both.error().message, Catch::Contains("issue stage must define exactly one of `prompt_file` or `prompt`"));
    auto neither = load(replace(kBase, "      prompt: \"Plan {{ issue.title }}\"\n", ""));
    REQUIRE_FALSE(neither);
    CHECK_THAT(neither.error().message, Catch::Contains("issue stage must define exactly one of `prompt_file` or `prompt`"));
}

TEST_CASE("workflow: agents and stages keep their order, several stages may share a state", "[workflow]") {
    auto l = load(R"(agents:
  zeta: {runtime: codex, model: a}
  alpha: {runtime: claude_code, model: b}
issues: {pull: {command: x}}
issue:
  stages:
    second: {when: {state: todo}, agent: zeta, prompt: p}
    first: {when: {state: todo}, agent: alpha, prompt_file: prompts/first.md}
)");
    REQUIRE(l);
    CHECK(l->config.agents[0].name == "zeta");
    CHECK(l->config.agents[1].name == "alpha");
    CHECK(l->config.stages[0].name == "second");
    CHECK(l->config.stages[1].name == "first");
    CHECK(*l->config.stages[1].prompt_file == "/srv/proj/prompts/first.md");
}

TEST_CASE("workflow: args keep order and types for CLI forwarding", "[workflow]") {
    auto l = load(replace(
        kBase, "    model: gpt-5\n",
        "    model: gpt-5\n    args:\n      sandbox: workspace-write\n      max-turns: 5\n      yolo: true\n      quiet: false\n"
        "      none: null\n      tools: [Bash, Edit]\n"));
    REQUIRE(l);
    const auto &args = l->config.agents[0].args;
    REQUIRE(args.size() == 6);
    CHECK(args.begin()->key() == "sandbox");
    CHECK(args.at("max-turns").is_int64());
    CHECK(args.at("yolo").is_bool());
    CHECK(args.at("none").is_null());
    CHECK(args.at("tools").is_array());
    auto bad = load(replace(kBase, "    model: gpt-5\n", "    model: gpt-5\n    args:\n      nested: {a: 1}\n"));
    REQUIRE_FALSE(bad);
    CHECK_THAT(bad.error().message, Catch::Contains("'agents.coder.args.nested'"));
}

TEST_CASE("workflow: workspace home fallbacks", "[workflow]") {
    auto explicit_root = load(std::string("workspace:\n  root: ../work/./ws\n") + kBase);
    REQUIRE(explicit_root);
    CHECK(explicit_root->config.home == "/srv/work/ws");
    auto tilde = load(std::string("workspace:\n  root: ~/vik-ws\n") + kBase);
    REQUIRE(tilde);
    CHECK(tilde->config.home == home_dir() / "vik-ws");
    auto no_expand = load(std::string("workspace:\n  root: $HOME/ws\n") + kBase);
    REQUIRE(no_expand);
    CHECK(no_expand->config.home == "/srv/proj/$HOME/ws");

    ::setenv("VIK_HOME", "/var/lib/vik", 1);
    auto from_env = load(std::string("workspace:\n  root: null\n") + kBase);
    auto from_env_missing = load(std::string("workspace:\n") + kBase);
    ::setenv("VIK_HOME", "", 1);
    auto from_home = load(std::string("workspace:\n  root:\n") + kBase);
    ::unsetenv("VIK_HOME");
    REQUIRE(from_env);
    CHECK(from_env->config.home == "/var/lib/vik");
    REQUIRE(from_env_missing);
    CHECK(from_env_missing->config.home == "/var/lib/vik");
    REQUIRE(from_home);
    CHECK(from_home->config.home == home_dir() / ".vik");
}

TEST_CASE("workflow: vik-host keys are known, typed and optional", "[workflow]") {
    auto l = load(R"(agents:
  coder:
    runtime: scripted
    model: m
    command: /opt/bin/agent
    env: {MODE: test}
    pass_env: [GITHUB_TOKEN]
    timeout_sec: 120
    stall_timeout_sec: 0
    settings: {command: "echo hi"}
issues:
  tracker:
    kind: file
    path: issues.yml
  pull:
    idle_sec: 2
    timeout_sec: 9
issue:
  prompt_command_timeout_sec: 4
  hooks:
    after_create: echo made
    before_remove: echo bye
    timeout_sec: 12
  stages:
    plan: {when: {state: todo}, agent: coder, prompt: p}
)");
    REQUIRE(l);
    CHECK(l->diagnostics.items.empty());
    const auto &c = l->config;
    CHECK(c.tracker_kind == "file");
    CHECK(c.tracker_settings.at("path").as_string() == "issues.yml");
    CHECK_FALSE(c.pull_command);
    CHECK(c.idle_sec == 2);
    CHECK(c.pull_timeout_sec == 9);
    CHECK(c.hook_timeout_sec == 12);
    CHECK(c.prompt_command_timeout_sec == 4);
    CHECK(*c.before_remove == "echo bye");
    const auto &a = c.agents[0];
    CHECK(a.command == "/opt/bin/agent");
    CHECK(a.env == std::vector<std::pair<std::string, std::string>>{{"MODE", "test"}});
    CHECK(a.pass_env == std::vector<std::string>{"GITHUB_TOKEN"});
    CHECK(a.timeout_sec == 120);
    CHECK(a.stall_timeout_sec == 0);
    CHECK(a.settings.at("command").as_string() == "echo hi");
}

TEST_CASE("workflow: resume, max_turns and resume_prompt are typed and optional", "[workflow]") {
    const std::string tail = "issues: {pull: {command: cat i.json}}\nissue:\n  stages:\n    plan: {when: {state: todo}, "
                             "agent: coder, prompt: p, resume_prompt: 'go on: {{ operator_message }}'}\n";
    auto l = load("agents:\n  coder: {runtime: scripted, model: m, resume: true, max_turns: 4}\n" + tail);
    REQUIRE(l);
    CHECK(l->diagnostics.items.empty());
    CHECK(l->config.agents[0].resume);
    CHECK(l->config.agents[0].max_turns == 4);
    CHECK(*l->config.stages[0].resume_prompt == "go on: {{ operator_message }}");
    auto plain = load("agents:\n  coder: {runtime: scripted, model: m}\n" + tail);
    REQUIRE(plain);
    CHECK_FALSE(plain->config.agents[0].resume); // vik's meaning: every run a fresh conversation
    CHECK(plain->config.agents[0].max_turns == 10);
    auto bad = load("agents:\n  coder: {runtime: scripted, model: m, resume: often}\n" + tail);
    REQUIRE_FALSE(bad);
    CHECK_THAT(bad.error().message,
               Catch::Contains("'agents.coder.resume': invalid type: expected true or false, found 'often'"));
    auto zero = load("agents:\n  coder: {runtime: scripted, model: m, max_turns: 0}\n" + tail);
    REQUIRE(zero);
    REQUIRE(zero->diagnostics.items.size() == 1);
    CHECK(zero->diagnostics.items[0].pointer == "agents.coder.max_turns");
}

TEST_CASE("workflow: the workflow-path key replaces every '/' with '-'", "[workflow]") {
    CHECK(workflow_key("/home/me/proj/workflow.yml") == "-home-me-proj-workflow.yml");
    CHECK(resolve_path("a/../b/./c/", "/base") == "/base/b/c");
}
