#include "orchestrator/template_context.hpp"

#include <boost/dll/runtime_symbol_info.hpp>
#include <boost/json.hpp>

extern char **environ;

namespace vik::orchestrator {

namespace json = boost::json;

json::object base_context(const workflow::Config &c) {
    json::object env;
    for (char **e = environ; e && *e; ++e) {
        std::string kv = *e;
        auto eq = kv.find('=');
        if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
    return json::object{{"workflow_path", c.workflow_path.string()},
                        {"workflow_dir", c.workflow_dir.string()},
                        {"workspace_root", c.home.string()},
                        {"env", env}};
}

json::object issue_context(const json::object &base, const Issue &issue, const std::filesystem::path &workdir,
                           const std::optional<std::string> &stage) {
    json::object ctx = base;
    json::object i = issue.fields;
    i["workdir"] = workdir.string();
    if (stage) i["stage"] = *stage;
    ctx["issue"] = i;
    return ctx;
}

std::vector<std::pair<std::string, std::string>> issue_environment(const workflow::Config &c, const Issue &issue,
                                                                   const std::filesystem::path &workdir,
                                                                   const std::optional<std::string> &stage,
                                                                   const std::string &plugin_dirs) {
    std::vector<std::pair<std::string, std::string>> env;
    for (char **e = environ; e && *e; ++e) {
        std::string kv = *e;
        auto eq = kv.find('=');
        if (eq == std::string::npos || kv.rfind("VIK_ISSUE_", 0) == 0) continue;
        env.emplace_back(kv.substr(0, eq), kv.substr(eq + 1));
    }
    auto set = [&](const std::string &k, const std::string &v) {
        for (auto &kv : env)
            if (kv.first == k) {
                kv.second = v;
                return;
            }
        env.emplace_back(k, v);
    };
    set("VIK_ISSUE_ID", issue.id);
    set("VIK_ISSUE_TITLE", issue.title);
    set("VIK_ISSUE_STATE", issue.state);
    if (stage) set("VIK_ISSUE_STAGE", *stage);
    set("VIK_ISSUE_WORKDIR", workdir.string());
    set("VIK_WORKFLOW_PATH", c.workflow_path.string());
    set("VIK_WORKFLOW_DIR", c.workflow_dir.string());
    boost::system::error_code ec;
    auto exe = boost::dll::program_location(ec);
    if (!ec) set("VIK_HOST_BIN", exe.string());
    if (!plugin_dirs.empty()) set("VIK_HOST_PLUGINS", plugin_dirs);
    return env;
}

} // namespace vik::orchestrator
