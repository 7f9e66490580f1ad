#pragma once
// Stage launch: everything between "this stage may run" and "here is the prompt", and the
// workspace steps around sessions.
//
// Owns the hooks plugin instances and runs the lifecycle points through them (after_create,
// before_run, after_run, before_remove); sets workspaces up and removes them through the one
// Layout (workspace/layout.hpp); renders a stage's prompt and expands its `exec(...)` commands
// through an injected command runner (process/run_command.hpp), so a test can pass its own.
// Each step runs on a worker under its budget (budgets.hpp); `done` runs on the loop.
//
// Threading: public methods on the loop's thread; the steps themselves on workers, reading only
// configuration and what was copied into them.

#include "orchestrator/blocking_runner.hpp"
#include "orchestrator/budgets.hpp"
#include "orchestrator/issue.hpp"
#include "orchestrator/live_config.hpp"
#include "plugins/instances.hpp"
#include "process/run_command.hpp"
#include "workflow/config.hpp"
#include "workspace/layout.hpp"

#include <boost/json/object.hpp>

#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace vik::orchestrator {

class StageLauncher {
  public:
    StageLauncher(const LiveConfig &config, const workspace::Layout &layout,
                  std::vector<std::unique_ptr<plugins::HooksInstance>> hooks, BlockingRunner &runner, CallBudgets budgets,
                  process::CommandRunner commands, std::string plugin_dirs);

    // Makes the issue's workspace unless a ready one is there; a new one gets after_create and
    // counts as ready only once it succeeded (a failed bootstrap is removed so the next attempt
    // starts clean). `done` gets the checked workspace path as its value.
    void setup_workspace(const Issue &issue, std::function<void(StepResult)> done);

    // before_run (which may veto the stage), then the prompt with `run_info` (attempt,
    // retry_kind, last_error) in its context. `done` gets the rendered prompt as its value.
    void prepare_stage(const Issue &issue, const std::filesystem::path &workdir, const workflow::Stage &stage,
                       boost::json::object run_info, std::function<void(StepResult)> done);

    // The prompt of the stage's agent gate (gate.prompt), with `run_info` in its context as a
    // stage prompt has; no before_run (the stage's hooks are around its own run). `done` gets the
    // rendered prompt as its value.
    void prepare_review(const Issue &issue, const std::filesystem::path &workdir, const workflow::Stage &stage,
                        boost::json::object run_info, std::function<void(StepResult)> done);

    // The stage's gate command as the shell runs it (its values escaped, as in hooks) and its
    // environment: the host's, with the issue's VIK_* variables (a gate is the team's own
    // check, like a hook). Loop thread; throws tmpl::TemplateError.
    struct GateCommand {
        std::string script;
        std::vector<std::string> env;
    };
    // `outcomes`: the issue's structured outcomes ({stage: object}), the template's `outcomes`.
    GateCommand gate_command(const Issue &issue, const std::filesystem::path &workdir, const workflow::Stage &stage,
                             const boost::json::object &outcomes) const;

    // after_run of a session that completed or failed.
    void after_run(const Issue &issue, const std::filesystem::path &workdir, const workflow::Stage &stage,
                   std::function<void(StepResult)> done);

    // before_remove, then the workspace goes (after the containment check).
    void remove_workspace(const Issue &issue, std::function<void(StepResult)> done);
    // A stage ended with `kind` (completed | failed | blocked) and `reason`: the notification
    // hook point (VIK_HOOK_ON_OUTCOME; issue.hooks.on_<kind>). Its answer changes nothing; a
    // failure is logged. `done` runs on the loop when it is over.
    void on_outcome(const Issue &issue, const std::filesystem::path &workdir, const std::string &stage, const std::string &kind,
                    const std::string &reason, std::function<void(StepResult)> done);

  private:
    // `outcome`, when given, is the stage's outcome ({kind, reason}): in the template context and
    // the plugin's context as `outcome`, in the environment as VIK_OUTCOME and VIK_OUTCOME_REASON.
    StepResult run_hook(const std::string &name, const char *event, const std::optional<std::string> &script_template,
                        const Issue &issue, const std::filesystem::path &workdir, const std::optional<std::string> &stage,
                        const boost::json::object *outcome = nullptr) const;
    std::string render_prompt(const workflow::Stage &s, const Issue &issue, const std::filesystem::path &workdir,
                              const boost::json::object &run_info) const;
    // `source` named `name` (for errors) rendered for the stage, its `exec(...)` commands expanded.
    std::string render_text(const std::string &source, const std::string &name, const workflow::Stage &s, const Issue &issue,
                            const std::filesystem::path &workdir, const boost::json::object &run_info) const;

    const LiveConfig &cfg_;
    const workspace::Layout &layout_;
    std::vector<std::unique_ptr<plugins::HooksInstance>> hooks_;
    BlockingRunner &runner_;
    CallBudgets budgets_;
    process::CommandRunner commands_;
    std::string plugin_dirs_;
    boost::json::object base_; // the template context every issue context starts from
    // Whether some hooks plugin wants every lifecycle point, scripted or not (its manifest has no
    // `scripted_only`). When none does, a point without a script is skipped at once: no context,
    // no plugin call, and a new workspace has no bootstrap to mark.
    bool every_point_ = false;
    bool runs_point(const std::optional<std::string> &script) const { return script.has_value() || every_point_; }
};

} // namespace vik::orchestrator
