#include "orchestrator/workflow_reload.hpp"

#include "workflow/loader.hpp"
#include "workflow/plugin_checks.hpp"
#include "workflow/template_checks.hpp"

#include <boost/json.hpp>

#include <sys/stat.h>

namespace vik::orchestrator {

namespace fs = std::filesystem;

std::optional<FileStamp> stamp_of(const fs::path &file) {
    struct stat st {};
    if (::stat(file.c_str(), &st) != 0) return std::nullopt;
    std::error_code ec;
    auto modified = fs::last_write_time(file, ec);
    if (ec) return std::nullopt;
    return FileStamp{modified, static_cast<uintmax_t>(st.st_size), static_cast<uintmax_t>(st.st_ino)};
}

namespace {

bool same_webhooks(const workflow::NotifyConfig &a, const workflow::NotifyConfig &b) {
    if (a.webhooks.size() != b.webhooks.size()) return false;
    for (size_t i = 0; i < a.webhooks.size(); ++i) {
        const auto &x = a.webhooks[i], &y = b.webhooks[i];
        if (x.url != y.url || x.url_env != y.url_env || x.events != y.events || x.format != y.format) return false;
    }
    return true;
}

bool same_schedules(const std::vector<workflow::Schedule> &a, const std::vector<workflow::Schedule> &b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
        if (a[i].name != b[i].name || a[i].cron != b[i].cron || a[i].time_zone != b[i].time_zone || a[i].issue != b[i].issue ||
            a[i].state != b[i].state || a[i].catch_up != b[i].catch_up)
            return false;
    return true;
}

} // namespace

std::vector<std::string> restart_only_changes(const workflow::Config &r, const workflow::Config &e) {
    std::vector<std::string> changed;
    auto check = [&](bool same, const char *key) {
        if (!same) changed.emplace_back(key);
    };
    check(r.home == e.home, "workspace.root");
    check(r.tracker_kind == e.tracker_kind, "issues.tracker.kind");
    check(r.tracker_settings == e.tracker_settings, "issues.tracker");
    check(r.pull_command == e.pull_command, "issues.pull.command");
    check(r.pull_timeout_sec == e.pull_timeout_sec, "issues.pull.timeout_sec");
    check(r.hook_timeout_sec == e.hook_timeout_sec, "issue.hooks.timeout_sec");
    check(r.prompt_command_timeout_sec == e.prompt_command_timeout_sec, "issue.prompt_command_timeout_sec");
    check(r.server.port == e.server.port && r.server.host == e.server.host && r.server.token_env == e.server.token_env, "server");
    check(same_webhooks(r.notify, e.notify), "notify");
    check(same_schedules(r.schedules, e.schedules), "schedules");
    check(r.plugins.hooks == e.plugins.hooks && r.plugins.settings == e.plugins.settings &&
              r.plugins.isolate == e.plugins.isolate,
          "plugins");
    check(r.store.kind == e.store.kind && r.store.url_env == e.store.url_env && r.store.workflow_id == e.store.workflow_id &&
              r.store.lease_ttl_sec == e.store.lease_ttl_sec,
          "store");
    return changed;
}

std::expected<std::unique_ptr<workflow::Config>, std::string> load_for_reload(const workflow::Config &running,
                                                                              const plugins::Registry &registry) {
    auto loaded = workflow::load_workflow(running.workflow_path);
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
    if (auto changed = restart_only_changes(running, loaded->config); !changed.empty()) {
        std::string keys;
        for (const auto &k : changed)
            keys += (keys.empty() ? "" : ", ") + k;
        return std::unexpected("changed keys that only a restart applies: " + keys);
    }
    return std::make_unique<workflow::Config>(std::move(loaded->config));
}

} // namespace vik::orchestrator
