#include "cli/workflow_loading.hpp"

#include "cli/commands.hpp"
#include "workflow/paths.hpp"
#include "workflow/plugin_checks.hpp"
#include "workflow/template_checks.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <set>

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

namespace {

std::expected<workflow::Loaded, std::string> check_loaded(workflow::Loaded loaded, const plugins::Registry &registry) {
    workflow::check_plugins(loaded.config, registry, loaded.diagnostics);
    workflow::check_templates(loaded.config, loaded.diagnostics);
    workflow::order_like_vik(loaded.diagnostics, loaded.config);
    if (loaded.diagnostics.errors() > 0) {
        std::string msg = "invalid workflow config:";
        for (const auto &d : loaded.diagnostics.items)
            if (d.severity == workflow::Severity::error) msg += "\n" + d.message;
        return std::unexpected(msg);
    }
    return loaded;
}

} // namespace

std::expected<workflow::Loaded, std::string> load_valid_workflow(const Options &opts, const plugins::Registry &registry) {
    auto loaded = load_workflow_file(opts.workflow);
    if (!loaded) return std::unexpected(loaded.error().message);
    return check_loaded(std::move(*loaded), registry);
}

plugins::LoadFilter plugins_used_by(const workflow::Config &config) {
    std::set<std::string> runtimes;
    for (const auto &a : config.agents)
        runtimes.insert(a.runtime);
    std::string tracker = config.tracker_kind;
    return [runtimes = std::move(runtimes), tracker = std::move(tracker)](const plugins::Manifest &m) {
        for (auto k : m.kinds) {
            if (k == plugins::Kind::hooks) return true;
            if (k == plugins::Kind::tracker && std::find(m.trackers.begin(), m.trackers.end(), tracker) != m.trackers.end())
                return true;
            if (k == plugins::Kind::agent_runtime)
                for (const auto &r : m.runtimes)
                    if (runtimes.count(r)) return true;
        }
        return false;
    };
}

store::StoreChoice store_choice(const workflow::Config &config) {
    store::StoreChoice c;
    c.kind = config.store.kind;
    c.sqlite_file = config.scoped_root() / "state" / "vik.db";
    c.url_env = config.store.url_env;
    c.workflow_id = config.store.workflow_id;
    return c;
}

void apply_isolation(plugins::Registry &registry, const workflow::Config &config) {
    for (const auto &id : config.plugins.isolate)
        if (plugins::isolate(registry, id)) // doctor's checks refused ids that are not loaded
            spdlog::info("plugin {} runs in a child process (plugins.isolate)", id);
}

std::expected<workflow::Loaded, std::string> load_workflow_and_its_plugins(const Options &opts, plugins::Registry &registry) {
    auto loaded = load_workflow_file(opts.workflow);
    if (!loaded) return std::unexpected(loaded.error().message);
    registry = {};
    registry = plugins::load_plugins(plugin_dirs(opts), plugins_used_by(loaded->config));
    workflow::Loaded copy = *loaded;
    auto checked = check_loaded(std::move(copy), registry);
    if (checked) apply_isolation(registry, checked->config);
    if (checked) return checked;
    // Refused: the diagnostics are the ones every other command gives (an unknown runtime lists
    // every known one), so they are made against every plugin. The first set goes first: a
    // library's init and deinit pair up (never init, init, deinit, deinit on one mapping).
    registry = {};
    registry = plugins::load_plugins(plugin_dirs(opts));
    return check_loaded(std::move(*loaded), registry);
}

} // namespace vik::cli
