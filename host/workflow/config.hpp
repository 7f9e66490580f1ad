#pragma once
// The typed form of workflow.yml: vik's keys with vik's defaults, plus vik-host's own keys
// (all optional, so a plain vik workflow needs none of them). docs/configuration.md lists them.

#include <boost/json/object.hpp>

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vik::workflow {

// vik's fixed choices for what a workflow leaves out: the one table where the host names a
// plugin. vik has one tracker, its issues.pull.command, so a vik workflow names none; everything
// else about that tracker comes from its manifest (plugins/command-tracker/manifest.toml).
inline constexpr const char *kDefaultTrackerKind = "command";

struct AgentProfile {
    std::string name;
    std::string runtime; // served by an agent-runtime plugin (codex, claude_code, scripted, ...)
    std::string model;
    boost::json::object args; // forwarded as CLI flags, order kept
    // vik-host keys
    std::string command;                                  // executable (or, for the scripted runtime, see its settings)
    std::vector<std::pair<std::string, std::string>> env; // extra environment for the agent
    std::vector<std::string> pass_env;                    // host variables passed although they look secret
    double timeout_sec = 3600;                            // overall limit for one session
    double stall_timeout_sec = 300;                       // no event for this long -> stalled (0 disables)
    boost::json::object settings;                         // runtime-plugin settings
    // A continuation or retry of a stage continues the agent's previous conversation of that
    // issue and stage (when its runtime can), with the stage's resume_prompt, instead of a fresh
    // conversation with the full prompt. Off by default: vik starts every run afresh.
    bool resume = false;
    int64_t max_turns = 10; // runs one conversation serves (the first and its resumed turns)
};

// Where a value starts in workflow.yml (1-based; 0 when unknown).
struct SourcePos {
    int line = 0, col = 0;
};

// What a stage's failure leads to (issue.stages.X.on_fail; docs/scheduling.md, "Failure routing").
// A rate-limited failure always waits for the reset and retries, whatever the stage says.
struct FailurePolicy {
    enum Kind { retry, block, route } kind = retry;
    std::string stage;          // route: the stage the issue is moved to (by setting its when.state)
    int64_t after_attempts = 1; // block, route: failed attempts in a row (retried until then) before it applies
};

// A check that decides whether a completed run stands (issue.stages.X.gate; docs/scheduling.md,
// "Gates").
struct Gate {
    std::optional<std::string> command; // shell template run in the workspace; exit 0 passes
    double timeout_sec = 600;
    // A human approves or rejects the run (`vik-host gate approve|reject`), after the command
    // passed when there is one; the wait survives restarts.
    bool human = false;
    double notify_after_sec = 0; // a human gate waiting this long notifies once (0: never)
    // An agent reviews the run (after the command passed, before a human): a session of this
    // agent profile in the workspace, given `prompt`, writes its verdict to `verdict_file`
    // ({"approved": bool, "feedback": string}). A rejection is the run's failure, with the
    // feedback in the next attempt's prompt (`gate_feedback`).
    std::optional<std::string> agent;
    std::optional<std::string> prompt; // template, with the stage prompt's context
    std::string verdict_file = ".vik/verdict.json";
};

// A stage's structured outcome (issue.stages.X.outcome; docs/scheduling.md, "Structured
// outcomes"): a JSON object the agent writes to a file in the workspace, validated after a
// completed run and kept for later prompts, gates and routing.
struct OutcomeSpec {
    std::string file; // relative to the workspace, inside it (checked at load)
    // Declared fields and their types (string, number, integer, boolean, array, object); each
    // must be present. Other fields are kept as they are.
    std::vector<std::pair<std::string, std::string>> fields;
    // A template condition over `outcome` (e.g. "outcome.tests_passed"); false makes the run a
    // failure. Absent: a valid outcome is enough.
    std::optional<std::string> succeed_if;
};

inline constexpr size_t kMaxOutcomeBytes = 64 * 1024; // an outcome file larger than this is invalid

// The template a succeed_if condition is evaluated as (and checked as by doctor): "1" when true.
inline std::string condition_template(const std::string &condition) { return "{% if " + condition + " %}1{% endif %}"; }

struct Stage {
    std::string name;
    std::string state; // when.state, exact and case-sensitive
    std::string agent;
    // vik-host: an issue carrying one of these labels runs the stage with that label's agent
    // profile instead (the first label listed that matches wins); the `labels` field of the
    // issue, as the tracker gives it (strings, or objects with a `name`).
    std::vector<std::pair<std::string, std::string>> agent_by_label;
    std::optional<std::string> prompt;                // inline template
    std::optional<std::filesystem::path> prompt_file; // resolved path of a template file
    std::optional<std::string> before_run, after_run; // hook snippets (templates)
    // The prompt of a run that continues an earlier conversation (agents.X.resume); when absent,
    // kDefaultResumePrompt.
    std::optional<std::string> resume_prompt;
    FailurePolicy on_fail;              // vik-host
    Gate gate;                          // vik-host
    std::optional<OutcomeSpec> outcome; // vik-host
};

// What a resumed conversation is told when the stage names no resume_prompt: the conversation
// already holds the task; the agent hears why it runs again.
inline constexpr const char *kDefaultResumePrompt =
    "Continue your work on issue {{ issue.id }}: it is still in state '{{ issue.state }}'."
    "{% if retry_kind == 'failure' %} The previous attempt failed: {{ last_error }}{% endif %}"
    "{% if operator_message %} A message from the operator: {{ operator_message }}{% endif %}"
    "{% if gate_feedback %} Your last result was rejected at review: {{ gate_feedback }}{% endif %}"
    " Finish the stage's work, or say what you need.";

// vik-host's scheduling rules (docs/scheduling.md); the top-level `scheduling:` section.
struct SchedulingPolicy {
    double continuation_delay_sec = 1;  // clean finish, issue still in the stage's state
    int64_t max_continuations = 3;      // then the (issue, stage) is blocked
    double retry_base_sec = 10;         // failure backoff: base * 2^(attempt-1) ...
    double retry_max_backoff_sec = 300; // ... capped here
    int64_t max_attempts = 3;           // failed attempts before the (issue, stage) is blocked
    int64_t max_routes = 3;             // on_fail routes one (issue, stage) takes before it is blocked instead
    std::map<std::string, int64_t> max_concurrent_by_state; // running issues per tracker state
    std::vector<std::string> terminal_states;               // runs stopped, workspaces removed
    // Terminal issues' workspaces are kept until they have been untouched this long (0: removed
    // at once). Their runs still stop at once.
    double keep_terminal_workspaces_days = 0;
};

// vik-host's HTTP operator surface (host/http/, docs/http-api.md); the top-level `server:`
// section. The run command's --port and --bind-address win over it.
struct ServerConfig {
    std::optional<int64_t> port;    // nullopt: nothing listens (unless --port); 0: any free port
    std::string host = "127.0.0.1"; // any other than loopback needs token_env
    std::string token_env;          // the environment variable holding the bearer token
};

// vik-host's built-in webhook notifier (host/notify/); the top-level `notify:` section.
struct Webhook {
    std::string url;                 // http:// or https://
    std::string url_env;             // or: the variable holding the URL (Slack's URLs are secrets)
    std::vector<std::string> events; // blocked | failed | completed | gate_waiting; empty: all
    std::string format = "json";     // json | slack
};

// Recurring work (the top-level `schedules:`; docs/scheduling.md, "Schedules"): at each firing
// the host sets a standing tracker issue to a state a stage takes, so the work runs as any issue
// does, with its history in one place.
struct Schedule {
    std::string name;
    std::string cron;      // five fields or @daily &c. (schedule/cron.hpp), checked at load
    std::string time_zone; // UTC or an IANA name, required: a schedule says whose 3 a.m. it means
    std::string issue;     // the tracker issue the firing moves
    std::string state;     // the state it is set to (a stage's when.state)
    bool catch_up = true;  // missed: run_once (one firing after downtime) or skip
};

struct NotifyConfig {
    std::vector<Webhook> webhooks;
};

// Which plugins a workflow uses and what they are told (the top-level `plugins:`; docs/plugin-sdk.md,
// "Choosing plugins in a workflow").
struct PluginSelection {
    // The hooks plugins that run, in this order (by plugin id); absent: every hooks plugin loaded,
    // in load order.
    std::optional<std::vector<std::string>> hooks;
    // Plugin-wide settings by plugin id, given to hooks and agent-runtime plugins at `create` (a
    // tracker's settings are the issues.tracker keys).
    std::map<std::string, boost::json::object> settings;
    // Tracker and hooks libraries this workflow runs in a child process each (as the manifest key
    // isolation = "process" would), by plugin id.
    std::vector<std::string> isolate;
};

// Where claims and runs are kept (the top-level `store:`; docs/store.md, docs/scale-out.md).
struct StoreConfig {
    std::string kind = "sqlite"; // sqlite (one file per workflow) | postgres (shared by hosts)
    std::string url_env;         // postgres: the environment variable holding the libpq connection URL
    std::string workflow_id;     // postgres: this workflow's key in the shared database
    // postgres: how long a host's lease on an (issue, stage) lasts without renewal (renewed every
    // third of it); a host that died is noticed after this long (docs/scale-out.md).
    int64_t lease_ttl_sec = 30;
};

struct Config {
    std::filesystem::path workflow_path; // absolute, lexically normal
    std::filesystem::path workflow_dir;

    // loop
    int64_t max_issue_concurrency = 10;
    int64_t wait_ms = 5000;
    std::optional<int64_t> max_iterations; // nullopt: forever

    // workspace
    std::filesystem::path home; // workspace home (before workflows/<key>/)

    std::vector<AgentProfile> agents; // workflow order

    // issues
    std::optional<std::string> pull_command; // template, rendered once
    int64_t idle_sec = 5;
    double pull_timeout_sec = 60;                   // vik-host
    std::string tracker_kind = kDefaultTrackerKind; // vik-host: issues.tracker.kind
    boost::json::object tracker_settings;           // vik-host: other issues.tracker.* keys
    // vik-host: the `secret_env` the manifests of this workflow's tracker and hooks plugins
    // declare; recorded by check_plugins (plugin_checks.hpp), empty before plugins are checked.
    std::vector<std::string> plugin_secret_env;

    // issue
    std::optional<std::string> after_create, before_remove; // hook snippets
    // vik-host: notification hooks after a stage ended (issue.hooks.on_*; VIK_HOOK_ON_OUTCOME)
    std::optional<std::string> on_completed, on_failed, on_blocked;
    double hook_timeout_sec = 30;           // vik-host: issue.hooks.timeout_sec
    double prompt_command_timeout_sec = 30; // vik-host: issue.prompt_command_timeout_sec
    std::vector<Stage> stages;              // workflow order
    // The stage of that name; nullptr when the workflow has none (names are unique).
    const Stage *stage(std::string_view name) const {
        for (const auto &s : stages)
            if (s.name == name) return &s;
        return nullptr;
    }

    SchedulingPolicy scheduling; // vik-host
    ServerConfig server;         // vik-host
    NotifyConfig notify;
    std::vector<Schedule> schedules; // vik-host
    PluginSelection plugins;         // vik-host
    StoreConfig store;               // vik-host
    // The settings a plugin is created with: its `plugins.settings` entry, or {}.
    std::string plugin_settings(const std::string &plugin_id) const;

    // Pointer -> position in workflow.yml of every template value (prompts, hooks, the pull
    // command), so template diagnostics can name the line.
    std::map<std::string, SourcePos> template_positions;

    const AgentProfile *agent(const std::string &name) const;

    // <home>/workflows/<key>/ and the directories under it.
    std::filesystem::path scoped_root() const;
    std::filesystem::path issues_dir() const { return scoped_root() / "issues"; }
    std::filesystem::path sessions_dir() const { return scoped_root() / "sessions"; }
    std::filesystem::path logs_dir() const { return scoped_root() / "logs"; }
    std::filesystem::path service_dir() const { return scoped_root() / "service"; }
    std::filesystem::path state_dir() const { return scoped_root() / "state"; }
};

} // namespace vik::workflow
