#include "orchestrator/template_context.hpp"

#include "security/secret_environment.hpp"

#include <boost/dll/runtime_symbol_info.hpp>
#include <boost/json.hpp>

#include <algorithm>

namespace vik::orchestrator {

namespace json = boost::json;

namespace {

// The longest prefix of `text` of at most `limit` bytes that does not cut a UTF-8 sequence.
std::string utf8_prefix(const std::string &text, size_t limit) {
    if (text.size() <= limit) return text;
    size_t n = limit;
    while (n > 0 && (static_cast<unsigned char>(text[n]) & 0xC0) == 0x80)
        --n; // text[n] continues a sequence
    return text.substr(0, n);
}

} // namespace

std::string env_value(std::string text) {
    std::erase(text, '\0');
    return utf8_prefix(text, kMaxIssueEnvValue);
}

std::vector<std::string> tracker_secret_names(const workflow::Config &c) {
    std::vector<std::string> names;
    if (auto *t = c.tracker_settings.if_contains("token_env"); t && t->is_string() && !t->as_string().empty())
        names.emplace_back(t->as_string());
    // What the plugins' manifests declare (secret_env), recorded by check_plugins.
    for (const auto &n : c.plugin_secret_env)
        if (std::find(names.begin(), names.end(), n) == names.end()) names.push_back(n);
    return names;
}

std::vector<std::string> secret_names(const workflow::Config &c) {
    auto names = tracker_secret_names(c);
    auto add = [&](const std::string &n) {
        if (!n.empty() && std::find(names.begin(), names.end(), n) == names.end()) names.push_back(n);
    };
    add(c.server.token_env);
    for (const auto &w : c.notify.webhooks)
        add(w.url_env);
    add(c.store.url_env);
    return names;
}

json::object base_context(const workflow::Config &c) {
    json::object env;
    for (auto &[k, v] : security::full_environment())
        env[k] = v;
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
    // Withheld secrets included: hooks and prompt commands are the team's own scripts. Agent
    // environments are built from this minus secret_names.
    std::vector<std::pair<std::string, std::string>> env;
    for (auto &[k, v] : security::full_environment())
        if (k.rfind("VIK_ISSUE_", 0) != 0) env.emplace_back(k, v);
    auto set = [&](const std::string &k, const std::string &v) {
        for (auto &kv : env)
            if (kv.first == k) {
                kv.second = v;
                return;
            }
        env.emplace_back(k, v);
    };
    set("VIK_ISSUE_ID", issue.id);
    set("VIK_ISSUE_TITLE", env_value(issue.title));
    set("VIK_ISSUE_STATE", issue.state);
    set("VIK_ISSUE_BODY", env_value(issue.description));
    if (auto *url = issue.fields.if_contains("url"); url && url->is_string() && !url->as_string().empty())
        set("VIK_ISSUE_URL", env_value(std::string(url->as_string())));
    if (stage) set("VIK_ISSUE_STAGE", *stage);
    set("VIK_ISSUE_WORKDIR", workdir.string());
    set("VIK_WORKFLOW_PATH", c.workflow_path.string());
    set("VIK_WORKFLOW_DIR", c.workflow_dir.string());
    // Read once: a readlink per session showed in profiles of a burst of starts.
    static const std::string host_bin = [] {
        boost::system::error_code ec;
        auto exe = boost::dll::program_location(ec);
        return ec ? std::string() : exe.string();
    }();
    if (!host_bin.empty()) set("VIK_HOST_BIN", host_bin);
    if (!plugin_dirs.empty()) set("VIK_HOST_PLUGINS", plugin_dirs);
    return env;
}

} // namespace vik::orchestrator
