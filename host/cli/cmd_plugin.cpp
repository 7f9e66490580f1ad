// `vik-host plugin check PATH [--settings JSON]`: what a plugin author runs before shipping.
// PATH is a plugin directory, or one manifest (.toml) in it. Each candidate is loaded the way
// the host loads it (manifest schema, library, entry point, ABI, interface tables); each one
// that loads is created for every kind it declares, with the given settings (default `{}`; a
// tracker also gets `workflow_dir`, the current directory, and `timeout_ms`, as the host adds them),
// so `create`'s own refusals show. Required settings the manifest declares are checked against
// the settings given. Exit 0 when nothing is wrong, 1 otherwise.
#include "cli/commands.hpp"
#include "plugins/host_api.hpp"
#include "plugins/instances.hpp"
#include "plugins/plugin_server.hpp"
#include "plugins/registry.hpp"
#include "process/process_service.hpp"
#include "util/untrusted_text.hpp"

#include <boost/json.hpp>

#include <iostream>
#include <vector>

namespace vik::cli {

namespace fs = std::filesystem;
namespace json = boost::json;

namespace {

std::string join(const std::vector<std::string> &v) {
    std::string out;
    for (const auto &s : v)
        out += (out.empty() ? "" : ", ") + s;
    return out;
}

// Creates one instance of `kind`; the problem, or empty.
std::string try_create(const std::shared_ptr<plugins::LoadedPlugin> &p, plugins::Kind kind, const std::string &settings) {
    auto fail = [](const plugins::PluginError &e) { return plugins::status_name(e.status) + ": " + e.message; };
    switch (kind) {
    case plugins::Kind::tracker:
        if (auto t = plugins::TrackerInstance::create(p, settings); !t) return fail(t.error());
        return {};
    case plugins::Kind::agent_runtime:
        if (auto r = plugins::RuntimeInstance::create(p, settings); !r) return fail(r.error());
        return {};
    case plugins::Kind::hooks:
        if (auto h = plugins::HooksInstance::create(p, settings); !h) return fail(h.error());
        return {};
    }
    return {};
}

} // namespace

int cmd_plugin(const Options &opts) {
    const auto &a = opts.args;
    // The child side of an isolated library (plugins/plugin_server.hpp): started by the host.
    if (a.size() == 2 && a[0] == "serve") return plugins::serve_plugin(a[1]);
    if (a.size() != 2 || a[0] != "check") {
        std::cerr << "usage: vik-host plugin check PATH [--settings JSON]   (PATH: a plugin directory or its manifest)\n";
        return 2;
    }
    fs::path path = a[1];
    std::error_code ec;
    if (!fs::exists(path, ec)) {
        std::cerr << "plugin check: " << path.string() << " does not exist\n";
        return 1;
    }
    std::string settings = opts.settings.value_or("{}");
    boost::system::error_code jec;
    json::value given = json::parse(settings, jec);
    if (jec || !given.is_object()) {
        std::cerr << "plugin check: --settings must be a JSON object, got: " << util::escape_for_terminal(settings) << "\n";
        return 2;
    }
    fs::path dir = fs::is_directory(path, ec) ? path : path.parent_path();
    fs::path only = fs::is_directory(path, ec) ? fs::path() : fs::absolute(path).lexically_normal();

    process::ProcessService processes; // a create that starts a process runs it here
    plugins::ProcessServiceBinding bind_processes(processes);
    plugins::Registry reg = plugins::load_plugins({dir});
    size_t problems = 0, checked = 0;
    for (const auto &r : reg.records) {
        auto rec_manifest = r.path.extension() == ".toml" ? r.path : fs::path();
        if (!only.empty()) {
            auto p = reg.find_id(r.id);
            fs::path manifest = p ? p->manifest.path : rec_manifest;
            if (fs::absolute(manifest).lexically_normal() != only) continue;
        }
        ++checked;
        if (!r.loaded) {
            ++problems;
            std::cout << "problem: " << r.path.string() << ": " << r.error << "\n";
            continue;
        }
        auto p = reg.find_id(r.id);
        bool program = !p->manifest.executable.empty();
        std::cout << "ok: " << r.id << " " << r.version << " (" << join(r.kinds) << ") "
                  << (program ? "runs " + p->manifest.executable.string() + " as a child process"
                      : p->manifest.isolation == plugins::Isolation::process
                          ? "loads from " + p->manifest.library.string() + " in a child process (isolation = \"process\")"
                          : "loads from " + p->manifest.library.string())
                  << "\n";
        // A runtime's manifest settings are its profiles' (agents.X.settings, checked by doctor
        // per profile), not what its create gets: only trackers and hooks need them here.
        bool profile_settings = p->manifest.kinds == std::vector<plugins::Kind>{plugins::Kind::agent_runtime};
        for (const auto &[key, spec] : p->manifest.settings)
            if (!profile_settings && spec.required && !given.as_object().contains(key)) {
                ++problems;
                std::cout << "problem: " << r.id << ": required setting '" << key << "' (" << spec.type
                          << ") is not in --settings; the workflow must give it\n";
            }
        for (plugins::Kind kind : p->manifest.kinds) {
            // A tracker gets what the host adds to every tracker's settings (tracker_factory.cpp):
            // the workflow's directory (here: the current one) and the call timeout.
            std::string used = settings;
            if (kind == plugins::Kind::tracker) {
                json::object with = given.as_object();
                if (!with.contains("workflow_dir")) with["workflow_dir"] = fs::current_path(ec).string();
                if (!with.contains("timeout_ms")) with["timeout_ms"] = 30'000;
                used = json::serialize(with);
            }
            std::string problem = try_create(p, kind, used);
            if (problem.empty()) {
                std::cout << "ok: " << r.id << ": create(" << plugins::kind_name(kind) << ") with " << used << "\n";
            } else {
                ++problems;
                std::cout << "problem: " << r.id << ": create(" << plugins::kind_name(kind) << ") refused: " << problem << "\n";
            }
        }
    }
    if (checked == 0) {
        std::cout << "problem: no plugin manifest (*.toml) found at " << path.string() << "\n";
        return 1;
    }
    std::cout << (problems == 0 ? "no problems found" : std::to_string(problems) + " problem(s)") << "\n";
    return problems == 0 ? 0 : 1;
}

} // namespace vik::cli
