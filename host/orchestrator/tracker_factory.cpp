#include "orchestrator/tracker_factory.hpp"

#include "orchestrator/template_context.hpp"
#include "template/template.hpp"

#include <boost/json.hpp>

namespace vik::orchestrator {

namespace json = boost::json;

uint32_t seconds_to_ms(double seconds) { return static_cast<uint32_t>(std::min(seconds * 1000.0, 4e9)); }

std::unique_ptr<plugins::TrackerInstance> create_tracker(const workflow::Config &cfg, const plugins::Registry &registry) {
    auto tp = registry.find_tracker(cfg.tracker_kind);
    if (!tp) throw std::runtime_error("no loaded plugin provides tracker '" + cfg.tracker_kind + "'");
    json::object settings = cfg.tracker_settings;
    settings["workflow_dir"] = cfg.workflow_dir.string();
    settings["timeout_ms"] = seconds_to_ms(cfg.pull_timeout_sec);
    // A fact of the plugin's manifest, not of its name (vik's command tracker declares it).
    if (tp->manifest.settings_from == plugins::SettingsSource::pull_command) {
        if (!cfg.pull_command)
            throw std::runtime_error("the '" + cfg.tracker_kind + "' tracker (" + tp->manifest.id +
                                     ") takes its settings from issues.pull.command; add `issues: {pull: {command: ...}}`");
        try {
            settings[plugins::kPullCommandSetting] =
                tmpl::render_shell(*cfg.pull_command, "issues.pull.command", base_context(cfg));
        } catch (const tmpl::TemplateError &e) {
            throw std::runtime_error(std::string("issues.pull.command does not render: ") + e.what());
        }
        settings[plugins::kPullCwdSetting] = cfg.workflow_dir.string();
    }
    auto t = plugins::TrackerInstance::create(tp, json::serialize(settings));
    if (!t) throw std::runtime_error("tracker plugin '" + tp->manifest.id + "' refused to start: " + t.error().message);
    return std::move(*t);
}

} // namespace vik::orchestrator
