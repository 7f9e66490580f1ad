// `vik-host tracker pull | fetch ID...`: one call of the workflow's tracker plugin, as the host
// would make it (same settings, same timeout, same parsing), with what it returned printed: for
// plugin authors and for operators asking "what does the host see?". Changes nothing.
#include "cli/commands.hpp"
#include "cli/workflow_loading.hpp"
#include "logging/logging.hpp"
#include "orchestrator/issue.hpp"
#include "orchestrator/tracker_factory.hpp"
#include "plugins/host_api.hpp"
#include "plugins/instances.hpp"
#include "plugins/registry.hpp"
#include "process/process_service.hpp"
#include "util/json_text.hpp"
#include "util/untrusted_text.hpp"

#include <boost/json.hpp>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <iostream>

namespace vik::cli {

namespace json = boost::json;

int cmd_tracker(const Options &opts) {
    const auto &a = opts.args;
    bool pull = !a.empty() && a[0] == "pull" && a.size() == 1;
    bool fetch = !a.empty() && a[0] == "fetch" && a.size() >= 2;
    if (!pull && !fetch) {
        std::cerr << "usage: vik-host tracker pull [WORKFLOW] | vik-host tracker fetch ID... [WORKFLOW]\n";
        return 2;
    }
    // Log lines (the plugin's included, at --log-level) go to stderr: stdout is the issues' JSON.
    auto logger = std::make_shared<spdlog::logger>("vik", std::make_shared<spdlog::sinks::stderr_sink_mt>());
    logger->set_level(*logging::parse_level(opts.log_level));
    spdlog::set_default_logger(logger);
    auto registry = load_registry(opts);
    auto loaded = load_valid_workflow(opts, registry);
    if (!loaded) {
        std::cerr << loaded.error() << "\n";
        return 1;
    }
    const auto &cfg = loaded->config;
    apply_isolation(registry, cfg);
    process::ProcessService processes; // a pull command runs here
    plugins::ProcessServiceBinding bind_processes(processes);
    auto tracker = orchestrator::create_tracker(cfg, registry);
    uint32_t timeout = orchestrator::seconds_to_ms(cfg.pull_timeout_sec);
    auto started = std::chrono::steady_clock::now();
    plugins::Result<std::string> answer = std::unexpected(plugins::PluginError{});
    if (pull) {
        answer = tracker->pull(timeout);
    } else {
        json::array ids;
        for (size_t i = 1; i < a.size(); ++i)
            ids.push_back(json::value(a[i]));
        answer = tracker->fetch(json::serialize(ids), timeout);
    }
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count();
    if (!answer) {
        std::cerr << "tracker " << a[0] << " failed (" << plugins::status_name(answer.error().status) << ", tracker "
                  << cfg.tracker_kind << ", " << ms << " ms): " << util::escape_for_terminal(answer.error().message) << "\n";
        return 1;
    }
    auto parsed = orchestrator::parse_issues(*answer);
    if (!parsed) {
        std::cerr << "tracker " << a[0]
                  << " answered, but not with issues the host accepts: " << util::escape_for_terminal(parsed.error()) << "\n";
        return 1;
    }
    json::array out;
    for (const auto &i : parsed->issues)
        out.push_back(i.fields);
    std::cout << util::json_pretty(out) << "\n";
    for (const auto &w : parsed->warnings)
        std::cerr << "warning: " << util::escape_for_terminal(w) << "\n";
    std::cerr << "tracker " << a[0] << ": " << parsed->issues.size() << " issue(s) from tracker " << cfg.tracker_kind << " in "
              << ms << " ms" << (parsed->skipped.empty() ? "" : ", " + std::to_string(parsed->skipped.size()) + " skipped")
              << "\n";
    return 0;
}

} // namespace vik::cli
