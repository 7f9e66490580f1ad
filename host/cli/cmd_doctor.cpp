#include "cli/commands.hpp"
#include "cli/workflow_loading.hpp"
#include "logging/logging.hpp"
#include "plugins/registry.hpp"
#include "workflow/loader.hpp"
#include "workflow/plugin_checks.hpp"
#include "workflow/template_checks.hpp"

#include <boost/json.hpp>

#include <iostream>

namespace vik::cli {

// vik's doctor: load + schema diagnostics; exit 1 on errors, or on warnings with --strict.
// Load-level failures are plain stderr text (vik), and with --json also a `load_error` item.
int cmd_doctor(const Options &opts) {
    auto loaded = load_workflow_file(opts.workflow);
    if (!loaded) {
        std::cerr << loaded.error().message << "\n";
        if (opts.json) {
            boost::json::object item{{"severity", "error"},
                                     {"pointer", loaded.error().pointer},
                                     {"code", "load_error"},
                                     {"message", loaded.error().message}};
            boost::json::object out{{"errors", boost::json::array{item}}, {"warnings", boost::json::array{}}};
            std::cout << logging::json_pretty(out) << "\n";
        }
        return 1;
    }
    auto registry = load_registry(opts);
    for (const auto &r : registry.records)
        if (!r.loaded) std::cerr << "note: plugin " << r.path.string() << " was refused: " << r.error << "\n";
    workflow::check_plugins(loaded->config, registry, loaded->diagnostics);
    workflow::check_templates(loaded->config, loaded->diagnostics);
    workflow::order_like_vik(loaded->diagnostics, loaded->config);
    const auto &d = loaded->diagnostics;
    if (opts.json)
        std::cout << workflow::render_json(d) << "\n";
    else
        std::cout << workflow::render_text(d);
    if (d.errors() > 0) return 1;
    if (opts.strict && d.warnings() > 0) return 1;
    return 0;
}

} // namespace vik::cli
