#include "orchestrator/budgets.hpp"

#include "orchestrator/tracker_factory.hpp"

namespace vik::orchestrator {

CallBudgets CallBudgets::from(const workflow::Config &config) {
    CallBudgets b;
    b.tracker_call = ms(seconds_to_ms(config.pull_timeout_sec));
    b.hook = ms(seconds_to_ms(config.hook_timeout_sec));
    b.prompt_command = ms(seconds_to_ms(config.prompt_command_timeout_sec));
    return b;
}

} // namespace vik::orchestrator
