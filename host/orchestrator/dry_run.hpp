#pragma once
// `vik-host run --dry-run`: one pull, then what the scheduler would do with it and why, in the
// order it would do it: which stages would launch (with their prompts and hook scripts
// rendered), which would wait (limits, blockers) and which are held (blocked, retry queued,
// running), and which workspaces a terminal state would remove. It changes nothing: no
// workspace, no agent, no tracker write, no store write, and `exec()` in prompts is shown, not
// run (a command may have effects).

#include "orchestrator/issue.hpp"
#include "store/store.hpp"
#include "workflow/config.hpp"
#include "workspace/layout.hpp"

#include <string>
#include <vector>

namespace vik::orchestrator {

struct DryRunInput {
    const workflow::Config &cfg;
    const workspace::Layout &layout;
    std::vector<Issue> issues;              // this pull, parsed
    std::vector<store::ClaimRecord> claims; // what the store holds (empty when it has none)
    std::vector<std::string> warnings;      // from parsing the pull
};

// The report, for people: plain text, issue ids and titles escaped for the terminal.
std::string dry_run_report(const DryRunInput &in);

} // namespace vik::orchestrator
