#include "cli/commands.hpp"
#include "cli/workflow_loading.hpp"
#include "logging/logging.hpp"
#include "orchestrator/control_channel.hpp"
#include "orchestrator/tracker_factory.hpp"
#include "plugins/host_api.hpp"
#include "process/process_service.hpp"
#include "workflow/loader.hpp"

#include <iostream>
#include <iterator>

namespace vik::cli {

namespace {

// `issue retry ID` / `issue cancel ID` / `gate approve ID` / `gate reject ID`: ask the running
// vik-host of the workflow. `what` names the command in messages ("issue retry").
int control(const Options &opts, const std::string &what, const std::string &value) {
    const auto &a = opts.args;
    Options o = opts;
    if (a.size() > 2) o.workflow = a[2];
    auto loaded = workflow::load_workflow(o.workflow);
    if (!loaded) {
        std::cerr << what << " failed: " << loaded.error().message << "\n";
        return 1;
    }
    try {
        std::string reply = orchestrator::control_request(orchestrator::control_socket_name(loaded->config.scoped_root()), a[0],
                                                          a[1], value, 10000);
        if (reply.rfind("ok ", 0) == 0) {
            std::cout << reply.substr(3) << "\n";
            return 0;
        }
        std::cerr << what << " failed: " << (reply.rfind("error ", 0) == 0 ? reply.substr(6) : reply) << "\n";
    } catch (const std::exception &e) {
        std::cerr << what << " failed: " << e.what() << "\n";
    }
    return 1;
}

} // namespace

// `vik-host issue set-state ID STATE [WORKFLOW]` and `vik-host issue comment ID TEXT|- [WORKFLOW]`
// change an issue through whichever tracker plugin the workflow uses; `issue retry ID [WORKFLOW]`
// and `issue cancel ID [WORKFLOW]` reach the running vik-host through its control channel.
int cmd_issue(const Options &opts) {
    const auto &a = opts.args;
    if (opts.feedback) {
        std::cerr << "issue failed: --feedback is for `gate reject` only\n";
        return 2;
    }
    if (a.size() >= 2 && (a[0] == "retry" || a[0] == "cancel")) {
        if (opts.message && a[0] != "retry") {
            std::cerr << "issue " << a[0] << " failed: --message is for `issue retry` only\n";
            return 2;
        }
        return control(opts, "issue " + a[0], opts.message.value_or(""));
    }
    if (a.size() < 3 || (a[0] != "set-state" && a[0] != "comment")) {
        std::cerr << "error: usage: vik-host issue set-state ID STATE [WORKFLOW] | issue comment ID TEXT|- [WORKFLOW] | "
                     "issue retry ID [--message TEXT] [WORKFLOW] | issue cancel ID [WORKFLOW]\n";
        return 2;
    }
    Options o = opts;
    if (a.size() > 3) o.workflow = a[3];
    std::string value = a[2];
    if (a[0] == "comment" && value == "-")
        value.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
    const std::string &id = a[1];
    // A running vik-host for this workflow makes the change itself, with its own credentials:
    // agents and hooks never need the tracker's token.
    if (auto loaded = workflow::load_workflow(o.workflow)) {
        try {
            std::string reply = orchestrator::control_request(orchestrator::control_socket_name(loaded->config.scoped_root()),
                                                              a[0], id, value, 120000);
            if (reply.rfind("ok ", 0) == 0) {
                std::cout << reply.substr(3) << "\n";
                return 0;
            }
            std::cerr << "issue " << a[0] << " failed: " << (reply.rfind("error ", 0) == 0 ? reply.substr(6) : reply) << "\n";
            return 1;
        } catch (const orchestrator::NoHost &) {
            // No vik-host runs this workflow: talk to the tracker directly below.
        } catch (const std::exception &e) {
            std::cerr << "issue " << a[0] << " failed: " << e.what() << "\n";
            return 1;
        }
    }
    logging::setup_console_only(*logging::parse_level(o.log_level));
    auto registry = load_registry(o);
    auto loaded = load_valid_workflow(o, registry);
    if (!loaded) {
        std::cerr << loaded.error() << "\n";
        return 1;
    }
    apply_isolation(registry, loaded->config);
    // This command's composition root: a tracker plugin that runs commands runs them here.
    process::ProcessService processes;
    plugins::ProcessServiceBinding bind_processes(processes);
    auto tracker = orchestrator::create_tracker(loaded->config, registry);
    uint32_t timeout = orchestrator::seconds_to_ms(loaded->config.pull_timeout_sec);
    plugins::Result<void> r = a[0] == "set-state" ? tracker->set_state(id, value, timeout) : tracker->comment(id, value, timeout);
    if (!r) {
        std::cerr << "issue " << a[0] << " failed: issue '" << id << "': " << r.error().message << "\n";
        return 1;
    }
    std::cout << (a[0] == "set-state" ? "issue " + id + " moved to " + value : "comment added to issue " + id) << "\n";
    return 0;
}

// `vik-host gate approve ID [WORKFLOW]` and `vik-host gate reject ID [--feedback TEXT] [WORKFLOW]`:
// a human's verdict on a stage run that awaits its gate, given to the running vik-host.
int cmd_gate(const Options &opts) {
    const auto &a = opts.args;
    if (a.size() < 2 || a.size() > 3 || (a[0] != "approve" && a[0] != "reject")) {
        std::cerr << "error: usage: vik-host gate approve ID [WORKFLOW] | gate reject ID [--feedback TEXT] [WORKFLOW]\n";
        return 2;
    }
    if (opts.message || (opts.feedback && a[0] != "reject")) {
        std::cerr << "gate " << a[0]
                  << " failed: " << (opts.message ? "--message is for `issue retry`" : "--feedback is for `gate reject`")
                  << " only\n";
        return 2;
    }
    return control(opts, "gate " + a[0], opts.feedback.value_or(""));
}

} // namespace vik::cli
