#include "cli/workflow_loading.hpp"

#include "workflow/paths.hpp"
#include "workflow/plugin_checks.hpp"
#include "workflow/template_checks.hpp"

namespace vik::cli {

namespace fs = std::filesystem;

std::optional<std::string> workflow_path_problem(const fs::path &path) {
    fs::path abs = workflow::absolute_lexical(path);
    std::error_code ec;
    auto st = fs::status(abs, ec);
    if (ec) {
        if (ec == std::errc::no_such_file_or_directory || ec == std::errc::not_a_directory)
            return "workflow file not found at " + abs.string();
        if (ec == std::errc::permission_denied) return "permission denied reading workflow file " + abs.string();
        return std::nullopt;
    }
    if (fs::is_directory(st)) return "workflow file " + abs.string() + " is a directory, expected a file";
    return std::nullopt;
}

std::expected<workflow::Loaded, workflow::LoadError> load_workflow_file(const fs::path &path) {
    if (auto problem = workflow_path_problem(path)) return std::unexpected(workflow::LoadError{*problem, ""});
    // vik names the workflow by its absolute path (cwd joined, `.`/`..` folded) in every message.
    return workflow::load_workflow(workflow::absolute_lexical(path));
}

std::expected<workflow::Loaded, std::string> load_valid_workflow(const Options &opts, const plugins::Registry &registry) {
    auto loaded = load_workflow_file(opts.workflow);
    if (!loaded) return std::unexpected(loaded.error().message);
    workflow::check_plugins(loaded->config, registry, loaded->diagnostics);
    workflow::check_templates(loaded->config, loaded->diagnostics);
    workflow::order_like_vik(loaded->diagnostics, loaded->config);
    if (loaded->diagnostics.errors() > 0) {
        std::string msg = "invalid workflow config:";
        for (const auto &d : loaded->diagnostics.items)
            if (d.severity == workflow::Severity::error) msg += "\n" + d.message;
        return std::unexpected(msg);
    }
    return std::move(*loaded);
}

} // namespace vik::cli
