#include "cli/commands.hpp"
#include "cli/workflow_loading.hpp"
#include "logging/logging.hpp"
#include "orchestrator/tracker_factory.hpp"

#include <iostream>
#include <iterator>

namespace vik::cli {

// `vik-host issue set-state ID STATE [WORKFLOW]` and `vik-host issue comment ID TEXT|- [WORKFLOW]`:
// change an issue through whichever tracker plugin the workflow uses.
int cmd_issue(const Options &opts) {
    const auto &a = opts.args;
    if (a.size() < 3 || (a[0] != "set-state" && a[0] != "comment")) {
        std::cerr << "error: usage: vik-host issue set-state ID STATE [WORKFLOW] | vik-host issue comment ID TEXT|- [WORKFLOW]\n";
        return 2;
    }
    Options o = opts;
    if (a.size() > 3) o.workflow = a[3];
    logging::setup_console_only();
    auto registry = load_registry(o);
    auto loaded = load_valid_workflow(o, registry);
    if (!loaded) {
        std::cerr << loaded.error() << "\n";
        return 1;
    }
    auto tracker = orchestrator::create_tracker(loaded->config, registry);
    uint32_t timeout = orchestrator::seconds_to_ms(loaded->config.pull_timeout_sec);
    const std::string &id = a[1];
    plugins::Result<void> r;
    if (a[0] == "set-state") {
        r = tracker->set_state(id, a[2], timeout);
    } else {
        std::string body = a[2];
        if (body == "-") body.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
        r = tracker->comment(id, body, timeout);
    }
    if (!r) {
        std::cerr << "issue " << a[0] << " failed: issue '" << id << "': " << r.error().message << "\n";
        return 1;
    }
    std::cout << (a[0] == "set-state" ? "issue " + id + " moved to " + a[2] : "comment added to issue " + id) << "\n";
    return 0;
}

} // namespace vik::cli
