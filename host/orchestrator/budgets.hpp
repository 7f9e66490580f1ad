#pragma once
// The time budgets of the loop's waits, named. Every blocking plugin call runs on a worker and is
// given up on the loop when its budget is spent (blocking_runner.hpp); a budget is the plugin's
// own time limit (which the plugin is told and is expected to honour) plus a grace for the
// plugin to notice, kill its child and answer. The loop never waits on a bare sum.

#include "workflow/config.hpp"

#include <chrono>

namespace vik::orchestrator {

struct CallBudgets {
    using ms = std::chrono::milliseconds;

    // One tracker call (pull, fetch, set-state, comment): the limit the tracker plugin is given.
    ms tracker_call{0};
    // One hook event, per hooks plugin: the limit each hooks plugin is given.
    ms hook{0};
    // One prompt `exec(...)` command: killed with its group when it runs longer.
    ms prompt_command{0};
    // How many prompt commands the launch budget pays for. A prompt with more still runs them
    // all, each under prompt_command, but the launch as a whole is given up once its budget is
    // spent (the stage then fails with a timeout and is retried with backoff).
    int prompt_commands_budgeted = 4;
    // The time a plugin gets past its own limit to answer (kill its child, reap it, report).
    ms plugin_grace{10'000};
    // The launch's extra grace: reading the prompt file and rendering the template, on top of
    // the hooks' and commands' own graces.
    ms launch_grace{20'000};

    static CallBudgets from(const workflow::Config &config);

    // Waiting on one tracker call.
    ms tracker_deadline() const { return tracker_call + plugin_grace; }
    // Waiting on one hook point (after_create, after_run, before_remove).
    ms hook_deadline() const { return hook + plugin_grace; }
    // Waiting on a launch: before_run, the prompt rendering with its commands. Two hook budgets:
    // before_run itself and the slack the old sum gave it; kept so that no deadline moves.
    ms launch_deadline() const { return 2 * hook + prompt_command * prompt_commands_budgeted + launch_grace; }
};

} // namespace vik::orchestrator
