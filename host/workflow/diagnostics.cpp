#include "workflow/diagnostics.hpp"

#include "logging/logging.hpp"
#include "workflow/config.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <map>

namespace vik::workflow {

namespace json = boost::json;

size_t Diagnostics::errors() const {
    size_t n = 0;
    for (auto &d : items)
        n += d.severity == Severity::error;
    return n;
}

size_t Diagnostics::warnings() const { return items.size() - errors(); }

void Diagnostics::unknown_field(const std::string &p) {
    items.push_back({Severity::warning, p, "unknown_field", "", false, "unknown field '" + p + "'"});
}

void Diagnostics::empty_str(const std::string &p) {
    items.push_back({Severity::error, p, "empty_str", "", false, "'" + p + "' cannot be empty string"});
}

void Diagnostics::empty_map(const std::string &p) {
    items.push_back({Severity::error, p, "empty_map", "", false, "'" + p + "' cannot be empty map"});
}

void Diagnostics::non_positive(const std::string &p, long long v) {
    // "great" (sic) is vik's text; scripts match on it.
    items.push_back({Severity::error, p, "non_positive_number", std::to_string(v), true,
                     "'" + p + "' expected to be great than 0, got " + std::to_string(v)});
}

void Diagnostics::unknown_agent(const std::string &p, const std::string &agent) {
    items.push_back({Severity::error, p, "unknown_agent", agent, false,
                     "agent profile '" + agent + "' set for '" + p + "' is not defined in agents configuration section"});
}

void Diagnostics::unknown_plugin_name(const std::string &p, const std::string &code, const std::string &what,
                                      const std::string &name, const std::vector<std::string> &available) {
    std::string list;
    for (auto &a : available)
        list += (list.empty() ? "" : ", ") + a;
    if (list.empty()) list = "none; check --plugins";
    items.push_back(
        {Severity::error, p, code, name, false,
         what + " '" + name + "' set for '" + p + "' is not provided by any loaded plugin (available: " + list + ")"});
}

void Diagnostics::invalid_template(const std::string &p, const std::string &at, const std::string &what) {
    items.push_back({Severity::error, p, "invalid_template", at, false,
                     "'" + p + "' is not a valid template: " + at + ": " + what + " (fix the template syntax)"});
}

void Diagnostics::unsafe_shell_template(const std::string &p, const std::string &at, const std::string &what) {
    items.push_back({Severity::error, p, "unsafe_shell_template", at, false,
                     "'" + p + "' substitutes a value where the shell cannot be kept from running it: " + at + ": " + what});
}

void Diagnostics::unreadable_prompt_file(const std::string &p, const std::string &path, const std::string &why) {
    items.push_back({Severity::error, p, "unreadable_prompt_file", path, false,
                     "prompt file '" + path + "' set for '" + p + "' cannot be read: " + why});
}

void Diagnostics::unknown_stage(const std::string &p, const std::string &stage) {
    items.push_back({Severity::error, p, "unknown_stage", stage, false,
                     "stage '" + stage + "' set for '" + p +
                         "' is not defined in issue.stages (on_fail takes retry, block or the name of another stage)"});
}

void Diagnostics::invalid_route(const std::string &p, const std::string &stage, const std::string &why) {
    items.push_back({Severity::error, p, "invalid_route", stage, false, "'" + p + "' " + why});
}

void Diagnostics::on_fail_never_applies(const std::string &p, long long after, long long max_attempts) {
    items.push_back({Severity::warning, p, "on_fail_never_applies", std::to_string(after), true,
                     "'" + p + "' is " + std::to_string(after) + ", more than scheduling.max_attempts (" +
                         std::to_string(max_attempts) +
                         "): the pair is blocked by the retry policy before on_fail applies; lower it or raise "
                         "scheduling.max_attempts"});
}

void Diagnostics::gate_setting_unused(const std::string &p, const std::string &why) {
    items.push_back({Severity::warning, p, "gate_setting_unused", "", false,
                     "'" + p + "' is set but never applies: " + why + " (remove it, or complete the gate)"});
}

void Diagnostics::schedule_state_unused(const std::string &p, const std::string &state) {
    items.push_back({Severity::warning, p, "schedule_state_unused", state, false,
                     "'" + p + "' is '" + state +
                         "', which no stage's when.state takes: the firing moves the issue but nothing runs (name a "
                         "stage's state)"});
}

void Diagnostics::schedule_needs_writes(const std::string &p, const std::string &tracker) {
    items.push_back({Severity::warning, p, "schedule_needs_tracker_writes", tracker, false,
                     "'" + p + "' fires by setting its issue's state, which the '" + tracker +
                         "' tracker cannot do: every firing will fail (use a tracker that can set states, such as github "
                         "or file)"});
}

void Diagnostics::route_needs_writes(const std::string &p, const std::string &tracker) {
    items.push_back({Severity::warning, p, "route_needs_tracker_writes", tracker, false,
                     "'" + p + "' routes failures by setting the issue's state, which the '" + tracker +
                         "' tracker cannot do: every route will block the stage instead (use a tracker that can set "
                         "states, such as github or file)"});
}

void Diagnostics::server_needs_token(const std::string &p, const std::string &host) {
    items.push_back({Severity::error, p, "server_needs_token", host, false,
                     "'" + p + "' is '" + host +
                         "', which is not a loopback address: set 'server.token_env' to the name of an environment "
                         "variable holding a bearer token, or listen on 127.0.0.1"});
}

namespace {

bool blank(const std::string &s) { return s.find_first_not_of(" \t\r\n\v\f") == std::string::npos; }

// Known fields per schema level, in the order vik (and vik-host after it) diagnoses them.
// "*" marks a level whose keys are names (agents, stages).
const std::map<std::string, std::vector<std::string>> &schema_order() {
    static const std::map<std::string, std::vector<std::string>> order{
        {"",
         {"loop", "workspace", "agents", "issues", "issue", "scheduling", "server", "notify", "schedules", "plugins", "store"}},
        {"plugins", {"hooks", "settings", "isolate"}},
        {"store", {"kind", "url_env", "workflow_id", "lease_ttl_sec"}},
        {"plugins.settings", {"*"}},
        {"loop", {"max_issue_concurrency", "wait_ms", "max_iterations"}},
        {"workspace", {"root"}},
        {"agents", {"*"}},
        {"agents.*",
         {"model", "runtime", "args", "command", "env", "pass_env", "timeout_sec", "stall_timeout_sec", "settings", "resume",
          "max_turns"}},
        {"issues", {"pull", "tracker"}},
        {"issues.pull", {"command", "idle_sec", "timeout_sec"}},
        {"issues.tracker", {"kind"}},
        {"issue", {"stages", "hooks", "prompt_command_timeout_sec"}},
        {"issue.hooks", {"after_create", "before_remove", "timeout_sec", "on_completed", "on_failed", "on_blocked"}},
        {"issue.stages", {"*"}},
        {"issue.stages.*",
         {"when", "hooks", "agent", "agent_by_label", "prompt", "prompt_file", "resume_prompt", "on_fail", "gate", "outcome"}},
        {"issue.stages.*.outcome", {"file", "fields", "succeed_if"}},
        {"issue.stages.*.gate", {"command", "timeout_sec", "agent", "prompt", "verdict_file", "human", "notify_after_sec"}},
        {"issue.stages.*.on_fail", {"to", "after_attempts"}},
        {"issue.stages.*.agent_by_label", {"*"}},
        {"issue.stages.*.when", {"state"}},
        {"issue.stages.*.hooks", {"before_run", "after_run"}},
        {"scheduling",
         {"continuation_delay_sec", "max_continuations", "retry_base_sec", "retry_max_backoff_sec", "max_attempts",
          "max_concurrent_by_state", "terminal_states", "keep_terminal_workspaces_days", "max_routes"}},
        {"server", {"port", "host", "token_env"}},
        {"notify", {"webhooks"}},
        {"schedules.*", {"cron", "time_zone", "issue", "state", "missed"}},
    };
    return order;
}

constexpr int unknown_rank = 1000;

// The longest name that `rest` starts with (followed by '.' or the end); -1 when none.
int match_name(const std::string &rest, const std::vector<std::string> &names, size_t &length) {
    int best = -1;
    for (size_t i = 0; i < names.size(); ++i) {
        const auto &n = names[i];
        if (rest.compare(0, n.size(), n) != 0 || (rest.size() > n.size() && rest[n.size()] != '.')) continue;
        if (best < 0 || n.size() > length) {
            best = static_cast<int>(i);
            length = n.size();
        }
    }
    return best;
}

struct Placed {
    std::vector<int> key;
    int stage = -1; // index of the stage the pointer is under
    int agent = -1;
    size_t name_end = 0; // where the stage/agent name ends in the pointer
};

Placed place(const Diagnostic &d, const std::vector<std::string> &agents, const std::vector<std::string> &stages) {
    Placed out;
    if (d.pointer.empty()) return out;
    std::string level;
    size_t pos = 0;
    while (pos <= d.pointer.size()) {
        auto known = schema_order().find(level);
        if (known == schema_order().end()) {
            out.key.push_back(unknown_rank);
            break;
        }
        std::string rest = d.pointer.substr(pos);
        if (known->second.size() == 1 && known->second[0] == "*") {
            bool is_stages = level == "issue.stages";
            size_t length = 0;
            int i = match_name(rest, is_stages ? stages : agents, length);
            if (i < 0 && is_stages) {
                // Already in vik's form: a blank-named stage's pointers have no name segment.
                auto b = std::find_if(stages.begin(), stages.end(), blank);
                if (b != stages.end()) {
                    out.key.push_back(static_cast<int>(b - stages.begin()) + 1);
                    out.stage = static_cast<int>(b - stages.begin());
                    out.name_end = pos - 1;
                    level += ".*";
                    continue;
                }
            }
            if (i < 0) {
                out.key.push_back(unknown_rank);
                break;
            }
            out.key.push_back(i + 1);
            (is_stages ? out.stage : out.agent) = i;
            out.name_end = pos + length;
            level += ".*";
            pos += length + 1;
            continue;
        }
        size_t dot = rest.find('.');
        std::string seg = rest.substr(0, dot);
        bool last = dot == std::string::npos;
        auto it = std::find(known->second.begin(), known->second.end(), seg);
        if (it == known->second.end() || (last && d.code == "unknown_field")) {
            out.key.push_back(unknown_rank);
            break;
        }
        out.key.push_back(static_cast<int>(it - known->second.begin()) + 1);
        if (last) break;
        level = level.empty() ? seg : level + "." + seg;
        pos += seg.size() + 1;
    }
    return out;
}

void repoint(Diagnostic &d, const std::string &pointer) {
    std::string from = "'" + d.pointer + "'", to = "'" + pointer + "'";
    if (size_t at = d.message.find(from); at != std::string::npos) d.message.replace(at, from.size(), to);
    d.pointer = pointer;
}

} // namespace

void order_like_vik(Diagnostics &d, const Config &config) {
    std::vector<std::string> agents, stages;
    for (const auto &a : config.agents)
        agents.push_back(a.name);
    for (const auto &s : config.stages)
        stages.push_back(s.name);

    std::vector<std::pair<std::vector<int>, Diagnostic>> placed;
    for (auto &item : d.items) {
        // A blank stage name and a blank stage agent are reported below, once each, as vik does.
        if (item.code == "empty_str" && (item.pointer == "issue.stages" || item.pointer == "issue.stages.")) continue;
        if (item.code == "unknown_agent" && blank(item.value)) continue;
        Placed p = place(item, agents, stages);
        if (p.stage >= 0 && blank(stages[p.stage])) {
            if (p.name_end == item.pointer.size() && item.code == "empty_str") continue;
            if (item.code == "empty_str" && blank(config.stages[p.stage].agent) && item.pointer.ends_with(".agent")) continue;
            repoint(item, "issue.stages" + item.pointer.substr(p.name_end));
        } else if (p.agent >= 0 && agents[p.agent].empty()) {
            repoint(item, "agents" + item.pointer.substr(p.name_end));
        } else if (p.stage >= 0 && item.code == "empty_str" && blank(config.stages[p.stage].agent) &&
                   item.pointer == "issue.stages." + stages[p.stage] + ".agent") {
            continue;
        }
        placed.emplace_back(std::move(p.key), std::move(item));
    }
    for (size_t i = 0; i < stages.size(); ++i) {
        int at = static_cast<int>(i) + 1;
        std::string prefix = blank(stages[i]) ? "issue.stages" : "issue.stages." + stages[i];
        auto empty_str = [](const std::string &pointer) {
            Diagnostics one;
            one.empty_str(pointer);
            return one.items.front();
        };
        // vik: a blank stage name is `issue.stages`, and the stage's own pointers drop the name.
        if (blank(stages[i])) placed.emplace_back(std::vector<int>{5, 1, at}, empty_str("issue.stages"));
        // vik: a blank `agent` is an empty string, not a reference to a missing profile.
        if (blank(config.stages[i].agent)) placed.emplace_back(std::vector<int>{5, 1, at, 3}, empty_str(prefix + ".agent"));
    }
    std::stable_sort(placed.begin(), placed.end(), [](const auto &a, const auto &b) { return a.first < b.first; });
    d.items.clear();
    for (auto &[key, item] : placed)
        d.items.push_back(std::move(item));
}

std::string render_text(const Diagnostics &d) {
    std::string out;
    for (auto sev : {Severity::error, Severity::warning})
        for (auto &i : d.items)
            if (i.severity == sev) out += (sev == Severity::error ? "[error] " : "[warning] ") + i.message + "\n";
    out += "Vik doctor shows " + std::to_string(d.errors()) + " error(s), " + std::to_string(d.warnings()) + " warning(s)\n";
    return out;
}

std::string render_json(const Diagnostics &d) {
    json::object root;
    json::array errors, warnings;
    for (auto &i : d.items) {
        json::object o;
        o["severity"] = i.severity == Severity::error ? "error" : "warning";
        o["pointer"] = i.pointer;
        if (i.value.empty() && !i.value_is_number) {
            o["code"] = i.code;
        } else {
            json::object code;
            if (i.value_is_number)
                code[i.code] = std::stoll(i.value);
            else
                code[i.code] = i.value;
            o["code"] = code;
        }
        (i.severity == Severity::error ? errors : warnings).push_back(o);
    }
    root["errors"] = errors;
    root["warnings"] = warnings;
    return logging::json_pretty(root);
}

} // namespace vik::workflow
