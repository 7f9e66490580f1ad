#include "cli/workflow_loading.hpp"

#include "workflow/plugin_checks.hpp"
#include "workflow/template_checks.hpp"

namespace vik::cli {

std::expected<workflow::Loaded, std::string> load_valid_workflow(const Options &opts, const plugins::Registry &registry) {
    auto loaded = workflow::load_workflow(opts.workflow);
    if (!loaded) return std::unexpected(loaded.error().message);
    workflow::check_plugins(loaded->config, registry, loaded->diagnostics);
    workflow::check_templates(loaded->config, loaded->diagnostics);
    if (loaded->diagnostics.errors() > 0) {
        std::string msg = "invalid workflow config:";
        for (const auto &d : loaded->diagnostics.items)
            if (d.severity == workflow::Severity::error) msg += "\n" + d.message;
        return std::unexpected(msg);
    }
    return std::move(*loaded);
}

} // namespace vik::cli
