#pragma once
// Doctor diagnostics with vik's pointers, codes and texts (vik-compat §2).

#include <string>
#include <vector>

namespace vik::workflow {

struct Config;

enum class Severity { error, warning };

struct Diagnostic {
    Severity severity = Severity::error;
    std::string pointer; // dotted path, e.g. issue.stages.plan.agent
    std::string code;    // unknown_field, empty_str, empty_map, non_positive_number, unknown_agent, ...
    std::string value;   // the code's argument: the number, the agent name, ... (empty when none)
    bool value_is_number = false;
    std::string message; // the text doctor prints after [error]/[warning]
};

struct Diagnostics {
    std::vector<Diagnostic> items;
    size_t errors() const;
    size_t warnings() const;

    void unknown_field(const std::string &pointer);
    void empty_str(const std::string &pointer);
    void empty_map(const std::string &pointer);
    void non_positive(const std::string &pointer, long long value);
    void unknown_agent(const std::string &pointer, const std::string &agent);
    // vik-host: a runtime or tracker no loaded plugin provides.
    void unknown_plugin_name(const std::string &pointer, const std::string &code, const std::string &what,
                             const std::string &name, const std::vector<std::string> &available);
    // vik-host: a template that does not compile; `at` is "<file>:<line>:<col>..." where it fails.
    void invalid_template(const std::string &pointer, const std::string &at, const std::string &what);
    void unsafe_shell_template(const std::string &pointer, const std::string &at, const std::string &what);
    // vik-host: a prompt_file that cannot be read (`why`: the system's reason).
    void unreadable_prompt_file(const std::string &pointer, const std::string &path, const std::string &why);
    // vik-host: the HTTP server would listen off loopback without a bearer token (`run` refuses).
    // vik-host: issue.stages.X.on_fail names no stage of the workflow.
    void unknown_stage(const std::string &pointer, const std::string &stage);
    // vik-host: an on_fail route that cannot move the issue (to itself, or within one state).
    void invalid_route(const std::string &pointer, const std::string &stage, const std::string &why);
    // vik-host: on_fail.after_attempts above scheduling.max_attempts: the pair blocks first.
    void on_fail_never_applies(const std::string &pointer, long long after, long long max_attempts);
    // vik-host: a gate setting that cannot apply (notify_after_sec without human, timeout_sec
    // without command).
    void gate_setting_unused(const std::string &pointer, const std::string &why);
    // vik-host: a schedule that sets a state no stage takes.
    void schedule_state_unused(const std::string &pointer, const std::string &state);
    void schedule_needs_writes(const std::string &pointer, const std::string &tracker);
    // vik-host: an on_fail route with a tracker that cannot set states (vik's command tracker).
    void route_needs_writes(const std::string &pointer, const std::string &tracker);
    void server_needs_token(const std::string &pointer, const std::string &host);
};

// Puts the diagnostics in the order vik reports them and gives them vik's pointers; call it once
// every check has added its findings. vik walks the schema depth first: a section's known fields
// in schema order (loop, workspace, agents, issues, issue; a stage's when, hooks, agent, prompt),
// agents and stages in workflow order, and each map's unknown fields after everything else in it,
// so unknown top-level fields come last. Pointers: a stage whose name is blank is
// `issue.stages` (and that name is an `empty_str` at `issue.stages`), an agent named '' is
// `agents`; a blank stage `agent` is `empty_str`, not `unknown_agent`. (config/diagnose.rs,
// config/issue.rs in vik.) vik-host's own sections and checks sort in the same walk.
void order_like_vik(Diagnostics &d, const Config &config);

// `[error] ...` / `[warning] ...` lines, errors first, then the summary line.
std::string render_text(const Diagnostics &d);
// {"errors":[...],"warnings":[...]}, pretty-printed as serde_json::to_string_pretty does.
std::string render_json(const Diagnostics &d);

} // namespace vik::workflow
