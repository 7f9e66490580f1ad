#include "workflow/loader.hpp"

#include "schedule/cron.hpp"
#include "util/bounded_read.hpp"
#include "util/loopback.hpp"
#include "util/yaml_json.hpp"
#include "workflow/paths.hpp"
#include "workflow/yaml_guard.hpp"

#include <boost/json.hpp>
#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>

namespace vik::workflow {

namespace fs = std::filesystem;
namespace json = boost::json;

const AgentProfile *Config::agent(const std::string &name) const {
    for (const auto &a : agents)
        if (a.name == name) return &a;
    return nullptr;
}

std::string Config::plugin_settings(const std::string &plugin_id) const {
    auto it = plugins.settings.find(plugin_id);
    return it == plugins.settings.end() ? "{}" : json::serialize(it->second);
}

fs::path Config::scoped_root() const { return home / "workflows" / workflow_key(workflow_path); }

namespace {

struct Failure {
    LoadError error;
};

std::string join(const std::string &prefix, const std::string &key) { return prefix.empty() ? key : prefix + "." + key; }

bool is_blank(const std::string &s) { return s.find_first_not_of(" \t\r\n") == std::string::npos; }

class Reader {
  public:
    Reader(fs::path file, const std::string &source, Diagnostics &diags)
        : file_(std::move(file)), source_(source), diags_(diags) {}

    [[noreturn]] void fail(const YAML::Mark &mark, const std::string &pointer, const std::string &what) const {
        std::string where = file_.string();
        if (!mark.is_null()) where += ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
        throw Failure{{where + ": " + (pointer.empty() ? "" : "'" + pointer + "': ") + what, pointer}};
    }

    // yaml-cpp reports `key:` and `key: null` alike; the source text at the node tells them apart.
    bool explicit_null(const YAML::Node &n) const {
        if (!n.IsNull()) return false;
        size_t pos = static_cast<size_t>(n.Mark().pos);
        if (pos >= source_.size()) return false;
        std::string_view rest(source_.data() + pos, source_.size() - pos);
        for (std::string_view word : {"null", "Null", "NULL", "~"})
            if (rest.substr(0, word.size()) == word) {
                char next = rest.size() > word.size() ? rest[word.size()] : '\n';
                if (!std::isalnum(static_cast<unsigned char>(next)) && next != '_') return true;
            }
        return false;
    }

    void unknown_fields(const YAML::Node &map, const std::string &prefix, std::initializer_list<std::string_view> known) {
        for (const auto &kv : map) {
            std::string key = kv.first.Scalar();
            bool ok = false;
            for (auto k : known)
                ok = ok || key == k;
            if (!ok) diags_.unknown_field(join(prefix, key));
        }
    }

    // An optional map section. Absent -> undefined node. `key:` (empty) -> an empty map.
    // `key: null` or any non-map -> a load error.
    YAML::Node section(const YAML::Node &parent, const std::string &key, const std::string &pointer) {
        YAML::Node n = parent[key];
        if (!n.IsDefined()) return YAML::Node(YAML::NodeType::Undefined);
        if (n.IsNull() && !explicit_null(n)) return YAML::Node(YAML::NodeType::Map);
        if (!n.IsMap()) fail(n.Mark(), pointer, "invalid type: expected a map" + found(n));
        return n;
    }

    YAML::Node required(const YAML::Node &parent, const std::string &key, const std::string &pointer) {
        YAML::Node n = parent[key];
        if (!n.IsDefined()) fail(parent.Mark(), pointer, "missing field `" + key + "`");
        return n;
    }

    std::string found(const YAML::Node &n) const {
        if (n.IsNull()) return ", found null";
        if (n.IsSequence()) return ", found a list";
        if (n.IsMap()) return ", found a map";
        return ", found '" + n.Scalar() + "'";
    }

    std::string string(const YAML::Node &n, const std::string &pointer) {
        if (!n.IsScalar()) fail(n.Mark(), pointer, "invalid type: expected a string" + found(n));
        return n.Scalar();
    }

    // An optional string: absent or `key: null` -> nullopt; `key:` with nothing -> "".
    std::optional<std::string> optional_string(const YAML::Node &parent, const std::string &key, const std::string &pointer) {
        YAML::Node n = parent[key];
        if (!n.IsDefined()) return std::nullopt;
        if (n.IsNull()) return explicit_null(n) ? std::nullopt : std::optional<std::string>(std::string());
        return string(n, pointer);
    }

    int64_t integer(const YAML::Node &n, const std::string &pointer) {
        if (!n.IsScalar() || n.Tag() == "!") fail(n.Mark(), pointer, "invalid type: expected an integer" + found(n));
        const std::string &s = n.Scalar();
        try {
            size_t used = 0;
            long long v = std::stoll(s, &used, 10);
            if (used != s.size()) throw std::invalid_argument(s);
            if (v < 0) fail(n.Mark(), pointer, "invalid value: expected a non-negative integer, found " + s);
            return v;
        } catch (const Failure &) {
            throw;
        } catch (const std::exception &) {
            fail(n.Mark(), pointer, "invalid type: expected an integer" + found(n));
        }
    }

    // A positive integer with vik's default; 0 -> the non_positive_number diagnostic.
    int64_t positive(const YAML::Node &parent, const std::string &key, const std::string &pointer, int64_t def) {
        YAML::Node n = parent[key];
        if (!n.IsDefined()) return def;
        int64_t v = integer(n, pointer);
        if (v == 0) diags_.non_positive(pointer, 0);
        return v;
    }

    // true / false (YAML's spellings), or `def` when absent.
    bool boolean(const YAML::Node &parent, const std::string &key, const std::string &pointer, bool def) {
        YAML::Node n = parent[key];
        if (!n.IsDefined()) return def;
        if (n.IsScalar() && n.Tag() != "!") {
            bool v = false;
            if (YAML::convert<bool>::decode(n, v)) return v;
        }
        fail(n.Mark(), pointer, "invalid type: expected true or false" + found(n));
    }

    // vik-host durations in seconds (may be fractional); 0 may be allowed (disables).
    double seconds(const YAML::Node &parent, const std::string &key, const std::string &pointer, double def, bool zero_ok) {
        YAML::Node n = parent[key];
        if (!n.IsDefined()) return def;
        if (!n.IsScalar() || n.Tag() == "!") fail(n.Mark(), pointer, "invalid type: expected a number of seconds" + found(n));
        try {
            size_t used = 0;
            double v = std::stod(n.Scalar(), &used);
            if (used != n.Scalar().size()) throw std::invalid_argument("x");
            if (v < 0) fail(n.Mark(), pointer, "invalid value: expected a non-negative number of seconds");
            if (v == 0 && !zero_ok) diags_.non_positive(pointer, 0);
            return v;
        } catch (const Failure &) {
            throw;
        } catch (const std::exception &) {
            fail(n.Mark(), pointer, "invalid type: expected a number of seconds" + found(n));
        }
    }

    // A YAML value as JSON, by the tree's one rule set (util/yaml_json.hpp).
    json::value to_json(const YAML::Node &n) const { return util::yaml_to_json(n); }

    const fs::path &file() const { return file_; }
    Diagnostics &diags() { return diags_; }

  private:
    fs::path file_;
    const std::string &source_;
    Diagnostics &diags_;
};

void remember_position(Config &c, const std::string &pointer, const YAML::Node &n) {
    if (n.IsDefined() && !n.Mark().is_null()) c.template_positions[pointer] = {n.Mark().line + 1, n.Mark().column + 1};
}

void load_loop(Reader &r, const YAML::Node &root, Config &c) {
    YAML::Node loop = r.section(root, "loop", "loop");
    if (!loop.IsDefined()) return;
    r.unknown_fields(loop, "loop", {"max_issue_concurrency", "wait_ms", "max_iterations"});
    c.max_issue_concurrency = r.positive(loop, "max_issue_concurrency", "loop.max_issue_concurrency", 10);
    c.wait_ms = r.positive(loop, "wait_ms", "loop.wait_ms", 5000);
    YAML::Node mi = loop["max_iterations"];
    if (mi.IsDefined() && !mi.IsNull()) {
        c.max_iterations = r.integer(mi, "loop.max_iterations");
        if (*c.max_iterations == 0) r.diags().non_positive("loop.max_iterations", 0);
    }
}

void load_workspace(Reader &r, const YAML::Node &root, Config &c) {
    YAML::Node ws = r.section(root, "workspace", "workspace");
    if (!ws.IsDefined()) {
        c.home = c.workflow_dir / ".vik";
        return;
    }
    r.unknown_fields(ws, "workspace", {"root"});
    YAML::Node root_node = ws["root"];
    if (root_node.IsDefined() && !root_node.IsNull()) {
        std::string s = r.string(root_node, "workspace.root");
        if (s.empty()) {
            r.diags().empty_str("workspace.root");
            c.home = c.workflow_dir / ".vik";
        } else {
            c.home = resolve_path(s, c.workflow_dir);
        }
        return;
    }
    const char *vh = std::getenv("VIK_HOME");
    c.home = vh && *vh ? resolve_path(vh, c.workflow_dir) : home_dir() / ".vik";
}

void load_agents(Reader &r, const YAML::Node &root, Config &c) {
    YAML::Node agents = r.required(root, "agents", "agents");
    if (agents.IsNull() && !r.explicit_null(agents)) agents = YAML::Node(YAML::NodeType::Map);
    if (!agents.IsMap()) r.fail(agents.Mark(), "agents", "invalid type: expected a map of agent profiles" + r.found(agents));
    if (agents.size() == 0) r.diags().empty_map("agents");
    for (const auto &kv : agents) {
        AgentProfile a;
        a.name = kv.first.Scalar();
        std::string p = a.name.empty() ? "agents" : "agents." + a.name;
        const YAML::Node &n = kv.second;
        if (!n.IsMap()) r.fail(n.Mark(), p, "invalid type: expected an agent profile map" + r.found(n));
        r.unknown_fields(n, p,
                         {"runtime", "model", "args", "command", "env", "pass_env", "timeout_sec", "stall_timeout_sec",
                          "settings", "resume", "max_turns"});
        a.runtime = r.string(r.required(n, "runtime", p + ".runtime"), p + ".runtime");
        a.model = r.string(r.required(n, "model", p + ".model"), p + ".model");
        if (is_blank(a.model)) r.diags().empty_str(p + ".model");
        if (YAML::Node args = r.section(n, "args", p + ".args"); args.IsDefined()) {
            for (const auto &arg : args) {
                std::string ap = p + ".args." + arg.first.Scalar();
                const YAML::Node &v = arg.second;
                if (v.IsMap())
                    r.fail(v.Mark(), ap,
                           "invalid type: expected a string, number, boolean, null or list of strings, found a map");
                if (v.IsSequence())
                    for (const auto &item : v)
                        if (!item.IsScalar()) r.fail(item.Mark(), ap, "invalid type: expected a list of strings");
                a.args[arg.first.Scalar()] = r.to_json(v);
            }
        }
        if (auto cmd = r.optional_string(n, "command", p + ".command")) {
            if (cmd->empty()) r.diags().empty_str(p + ".command");
            a.command = *cmd;
        }
        if (YAML::Node env = r.section(n, "env", p + ".env"); env.IsDefined())
            for (const auto &e : env)
                a.env.emplace_back(e.first.Scalar(), r.string(e.second, p + ".env." + e.first.Scalar()));
        if (YAML::Node pe = n["pass_env"]; pe.IsDefined()) {
            if (!pe.IsSequence())
                r.fail(pe.Mark(), p + ".pass_env", "invalid type: expected a list of variable names" + r.found(pe));
            for (const auto &v : pe)
                a.pass_env.push_back(r.string(v, p + ".pass_env"));
        }
        a.timeout_sec = r.seconds(n, "timeout_sec", p + ".timeout_sec", 3600, false);
        a.stall_timeout_sec = r.seconds(n, "stall_timeout_sec", p + ".stall_timeout_sec", 300, true);
        if (YAML::Node s = r.section(n, "settings", p + ".settings"); s.IsDefined()) a.settings = r.to_json(s).as_object();
        a.resume = r.boolean(n, "resume", p + ".resume", false);
        a.max_turns = r.positive(n, "max_turns", p + ".max_turns", a.max_turns);
        c.agents.push_back(std::move(a));
    }
}

void load_issues(Reader &r, const YAML::Node &root, Config &c) {
    YAML::Node issues = r.required(root, "issues", "issues");
    if (!issues.IsMap()) r.fail(issues.Mark(), "issues", "invalid type: expected a map" + r.found(issues));
    r.unknown_fields(issues, "issues", {"pull", "tracker"});
    YAML::Node tracker = r.section(issues, "tracker", "issues.tracker");
    bool names_tracker = false;
    if (tracker.IsDefined()) {
        // vik-host: `kind` picks the tracker plugin; the other keys are that plugin's settings,
        // checked against its manifest once plugins are loaded (plugin_checks.cpp).
        if (YAML::Node kind = tracker["kind"]; kind.IsDefined()) {
            c.tracker_kind = r.string(kind, "issues.tracker.kind");
            names_tracker = true;
            if (is_blank(c.tracker_kind)) r.diags().empty_str("issues.tracker.kind");
        }
        for (const auto &kv : tracker)
            if (kv.first.Scalar() != "kind") c.tracker_settings[kv.first.Scalar()] = r.to_json(kv.second);
    }
    // A workflow that names no tracker is vik's form, where issues.pull.command is required (a
    // load error, as in vik). A named tracker's manifest says whether it needs the pull command
    // (settings_from = "pull_command"); plugin_checks.cpp reports it missing.
    bool needs_command = !names_tracker;
    YAML::Node pull = needs_command ? r.required(issues, "pull", "issues.pull") : issues["pull"];
    if (pull.IsDefined()) {
        if (pull.IsNull() && !r.explicit_null(pull)) pull = YAML::Node(YAML::NodeType::Map);
        if (!pull.IsMap()) r.fail(pull.Mark(), "issues.pull", "invalid type: expected a map" + r.found(pull));
        r.unknown_fields(pull, "issues.pull", {"command", "idle_sec", "timeout_sec"});
        if (needs_command || pull["command"].IsDefined()) {
            std::string cmd = r.string(r.required(pull, "command", "issues.pull.command"), "issues.pull.command");
            if (is_blank(cmd)) r.diags().empty_str("issues.pull.command");
            c.pull_command = cmd;
            remember_position(c, "issues.pull.command", pull["command"]);
        }
        c.idle_sec = r.positive(pull, "idle_sec", "issues.pull.idle_sec", 5);
        c.pull_timeout_sec = r.seconds(pull, "timeout_sec", "issues.pull.timeout_sec", 60, false);
    }
}

std::optional<std::string> hook(Reader &r, Config &c, const YAML::Node &hooks, const std::string &key,
                                const std::string &prefix) {
    remember_position(c, prefix + "." + key, hooks[key]);
    return r.optional_string(hooks, key, prefix + "." + key);
}

// issue.stages.X.on_fail: `retry`, `block`, a stage's name, or {to: block|<stage>, after_attempts: N}.
// Which stage a name means is checked once every stage is known (check_routes).
FailurePolicy on_fail(Reader &r, const YAML::Node &n, const std::string &p) {
    FailurePolicy f;
    std::string to;
    if (n.IsMap()) {
        r.unknown_fields(n, p, {"to", "after_attempts"});
        to = r.string(r.required(n, "to", p + ".to"), p + ".to");
        f.after_attempts = r.positive(n, "after_attempts", p + ".after_attempts", 1);
    } else {
        if (!n.IsScalar() || n.IsNull())
            r.fail(n.Mark(), p, "invalid type: expected retry, block, a stage's name or a map" + r.found(n));
        to = n.Scalar();
    }
    if (is_blank(to)) {
        r.diags().empty_str(n.IsMap() ? p + ".to" : p);
    } else if (to == "retry") {
        if (n.IsMap())
            r.fail(n.Mark(), p + ".to",
                   "invalid value: `retry` takes no after_attempts (scheduling.max_attempts says when it stops)");
        f.kind = FailurePolicy::retry;
    } else if (to == "block") {
        f.kind = FailurePolicy::block;
    } else {
        f.kind = FailurePolicy::route;
        f.stage = to;
    }
    return f;
}

// Every on_fail route names another stage that runs in another state (routing moves the issue
// there), and the tracker must be able to set states; a policy that waits for more failures than
// the retry policy allows would never apply.
void check_routes(Reader &r, const Config &c) {
    for (const auto &s : c.stages) {
        if (s.on_fail.kind == FailurePolicy::retry) continue;
        std::string p = "issue.stages." + s.name + ".on_fail";
        if (s.on_fail.after_attempts > c.scheduling.max_attempts)
            r.diags().on_fail_never_applies(p + ".after_attempts", s.on_fail.after_attempts, c.scheduling.max_attempts);
        if (s.on_fail.kind != FailurePolicy::route) continue;
        const Stage *target = c.stage(s.on_fail.stage);
        if (!target)
            r.diags().unknown_stage(p, s.on_fail.stage);
        else if (target == &s)
            r.diags().invalid_route(p, s.on_fail.stage, "routes the stage to itself; use `retry` to run it again");
        else if (target->state == s.state)
            r.diags().invalid_route(p, s.on_fail.stage,
                                    "routes to stage '" + target->name + "', which runs in the same state '" + s.state +
                                        "': a route moves the issue to the target stage's when.state, so it must differ");
        else if (c.tracker_kind == kDefaultTrackerKind)
            r.diags().route_needs_writes(p, c.tracker_kind);
    }
}

// issue.stages.X.outcome: {file, fields, succeed_if}. The file stays inside the workspace: a
// relative path without `..` (symbolic links are checked when it is read).
// A file the agent writes in its workspace (an outcome, a verdict): a relative path that stays
// inside it (the host opens it beneath the workspace too).
std::string workspace_file(Reader &r, const YAML::Node &file, const std::string &p) {
    std::string f = r.string(file, p);
    std::filesystem::path fp(f);
    bool escapes =
        fp.is_absolute() || f.empty() || !fp.has_filename() || f.back() == '/' ||
        std::any_of(fp.begin(), fp.end(), [](const std::filesystem::path &part) { return part == ".." || part == "."; });
    if (escapes)
        r.fail(file.Mark(), p,
               "invalid value: expected a file path relative to the workspace, without `.` or `..`, found '" + f + "'");
    return f;
}

workflow::OutcomeSpec outcome_spec(Reader &r, const YAML::Node &n, const std::string &p) {
    workflow::OutcomeSpec o;
    r.unknown_fields(n, p, {"file", "fields", "succeed_if"});
    o.file = workspace_file(r, r.required(n, "file", p + ".file"), p + ".file");
    if (YAML::Node fields = r.section(n, "fields", p + ".fields"); fields.IsDefined()) {
        for (const auto &kv : fields) {
            std::string name = r.string(kv.first, p + ".fields");
            std::string type = r.string(kv.second, p + ".fields." + name);
            static const std::set<std::string> types = {"string", "number", "integer", "boolean", "array", "object"};
            if (!types.count(type))
                r.fail(kv.second.Mark(), p + ".fields." + name,
                       "invalid value: expected string, number, integer, boolean, array or object, found '" + type + "'");
            o.fields.emplace_back(name, type);
        }
    }
    o.succeed_if = r.optional_string(n, "succeed_if", p + ".succeed_if");
    if (o.succeed_if && is_blank(*o.succeed_if)) r.diags().empty_str(p + ".succeed_if");
    return o;
}

void load_issue(Reader &r, const YAML::Node &root, Config &c) {
    YAML::Node issue = r.required(root, "issue", "issue");
    if (!issue.IsMap()) r.fail(issue.Mark(), "issue", "invalid type: expected a map" + r.found(issue));
    r.unknown_fields(issue, "issue", {"hooks", "stages", "prompt_command_timeout_sec"});
    if (YAML::Node hooks = r.section(issue, "hooks", "issue.hooks"); hooks.IsDefined()) {
        r.unknown_fields(hooks, "issue.hooks",
                         {"after_create", "before_remove", "timeout_sec", "on_completed", "on_failed", "on_blocked"});
        c.after_create = hook(r, c, hooks, "after_create", "issue.hooks");
        c.before_remove = hook(r, c, hooks, "before_remove", "issue.hooks");
        c.on_completed = hook(r, c, hooks, "on_completed", "issue.hooks");
        c.on_failed = hook(r, c, hooks, "on_failed", "issue.hooks");
        c.on_blocked = hook(r, c, hooks, "on_blocked", "issue.hooks");
        c.hook_timeout_sec = r.seconds(hooks, "timeout_sec", "issue.hooks.timeout_sec", 30, false);
    }
    c.prompt_command_timeout_sec = r.seconds(issue, "prompt_command_timeout_sec", "issue.prompt_command_timeout_sec", 30, false);

    YAML::Node stages = r.required(issue, "stages", "issue.stages");
    if (stages.IsSequence())
        r.fail(stages.Mark(), "issue.stages",
               "invalid type: expected a map of stage name to stage, found a list (the list form is not supported; "
               "write `stages:` as `name: {when: ..., agent: ..., prompt: ...}`)");
    if (stages.IsNull() && !r.explicit_null(stages)) stages = YAML::Node(YAML::NodeType::Map);
    if (!stages.IsMap()) r.fail(stages.Mark(), "issue.stages", "invalid type: expected a map of stages" + r.found(stages));
    if (stages.size() == 0) r.diags().empty_map("issue.stages");
    for (const auto &kv : stages) {
        Stage s;
        s.name = kv.first.Scalar();
        // vik (config/issue.rs): a blank name is `issue.stages`, and so are the stage's pointers.
        std::string p = is_blank(s.name) ? "issue.stages" : "issue.stages." + s.name;
        if (is_blank(s.name)) r.diags().empty_str("issue.stages");
        const YAML::Node &n = kv.second;
        if (!n.IsMap()) r.fail(n.Mark(), p, "invalid type: expected a stage map" + r.found(n));
        r.unknown_fields(
            n, p,
            {"when", "agent", "agent_by_label", "prompt_file", "prompt", "resume_prompt", "hooks", "on_fail", "gate", "outcome"});
        YAML::Node when = r.required(n, "when", p + ".when");
        if (!when.IsMap()) r.fail(when.Mark(), p + ".when", "invalid type: expected a map" + r.found(when));
        r.unknown_fields(when, p + ".when", {"state"});
        s.state = r.string(r.required(when, "state", p + ".when.state"), p + ".when.state");
        if (is_blank(s.state)) r.diags().empty_str(p + ".when.state");
        s.agent = r.string(r.required(n, "agent", p + ".agent"), p + ".agent");
        // Agents are loaded before stages, so the reference can be checked here, in vik's order.
        if (is_blank(s.agent))
            r.diags().empty_str(p + ".agent");
        else if (!c.agent(s.agent))
            r.diags().unknown_agent(p + ".agent", s.agent);
        if (YAML::Node by = r.section(n, "agent_by_label", p + ".agent_by_label"); by.IsDefined())
            for (const auto &kv : by) {
                std::string label = kv.first.as<std::string>();
                std::string pointer = p + ".agent_by_label." + label;
                std::string agent = r.string(kv.second, pointer);
                if (is_blank(agent))
                    r.diags().empty_str(pointer);
                else if (!c.agent(agent))
                    r.diags().unknown_agent(pointer, agent);
                s.agent_by_label.emplace_back(label, agent);
            }
        bool has_file = n["prompt_file"].IsDefined(), has_inline = n["prompt"].IsDefined();
        if (has_file == has_inline) r.fail(n.Mark(), p, "issue stage must define exactly one of `prompt_file` or `prompt`");
        if (has_inline) {
            s.prompt = r.string(n["prompt"], p + ".prompt");
            remember_position(c, p + ".prompt", n["prompt"]);
            if (s.prompt->empty()) r.diags().empty_str(p + ".prompt");
        } else {
            std::string f = r.string(n["prompt_file"], p + ".prompt_file");
            if (f.empty())
                r.diags().empty_str(p + ".prompt_file");
            else
                s.prompt_file = resolve_path(f, c.workflow_dir);
        }
        if (n["resume_prompt"].IsDefined()) {
            s.resume_prompt = r.string(n["resume_prompt"], p + ".resume_prompt");
            remember_position(c, p + ".resume_prompt", n["resume_prompt"]);
            if (s.resume_prompt->empty()) r.diags().empty_str(p + ".resume_prompt");
        }
        if (YAML::Node hooks = r.section(n, "hooks", p + ".hooks"); hooks.IsDefined()) {
            r.unknown_fields(hooks, p + ".hooks", {"before_run", "after_run"});
            s.before_run = hook(r, c, hooks, "before_run", p + ".hooks");
            s.after_run = hook(r, c, hooks, "after_run", p + ".hooks");
        }
        if (n["on_fail"].IsDefined()) s.on_fail = on_fail(r, n["on_fail"], p + ".on_fail");
        if (YAML::Node gate = r.section(n, "gate", p + ".gate"); gate.IsDefined()) {
            r.unknown_fields(gate, p + ".gate",
                             {"command", "timeout_sec", "agent", "prompt", "verdict_file", "human", "notify_after_sec"});
            s.gate.human = r.boolean(gate, "human", p + ".gate.human", false);
            // An agent's review: a profile and its prompt, together.
            if (gate["agent"].IsDefined()) {
                s.gate.agent = r.string(gate["agent"], p + ".gate.agent");
                if (is_blank(*s.gate.agent))
                    r.diags().empty_str(p + ".gate.agent");
                else if (!c.agent(*s.gate.agent))
                    r.diags().unknown_agent(p + ".gate.agent", *s.gate.agent);
                s.gate.prompt = r.string(r.required(gate, "prompt", p + ".gate.prompt"), p + ".gate.prompt");
                remember_position(c, p + ".gate.prompt", gate["prompt"]);
                if (is_blank(*s.gate.prompt)) r.diags().empty_str(p + ".gate.prompt");
                if (gate["verdict_file"].IsDefined())
                    s.gate.verdict_file = workspace_file(r, gate["verdict_file"], p + ".gate.verdict_file");
            } else {
                if (gate["prompt"].IsDefined()) r.diags().gate_setting_unused(p + ".gate.prompt", "the gate has no `agent`");
                if (gate["verdict_file"].IsDefined())
                    r.diags().gate_setting_unused(p + ".gate.verdict_file", "the gate has no `agent`");
            }
            // A gate is a command, an agent, a human, or several of them in that order.
            if (gate["command"].IsDefined() || (!s.gate.human && !s.gate.agent)) {
                s.gate.command = r.string(r.required(gate, "command", p + ".gate.command"), p + ".gate.command");
                remember_position(c, p + ".gate.command", gate["command"]);
                if (is_blank(*s.gate.command)) r.diags().empty_str(p + ".gate.command");
            }
            s.gate.timeout_sec = r.seconds(gate, "timeout_sec", p + ".gate.timeout_sec", 600, false);
            s.gate.notify_after_sec = r.seconds(gate, "notify_after_sec", p + ".gate.notify_after_sec", 0, true);
            if (gate["notify_after_sec"].IsDefined() && !s.gate.human)
                r.diags().gate_setting_unused(p + ".gate.notify_after_sec", "the gate has no `human: true`");
            if (gate["timeout_sec"].IsDefined() && !s.gate.command)
                r.diags().gate_setting_unused(p + ".gate.timeout_sec", "the gate has no command");
        }
        if (YAML::Node out = r.section(n, "outcome", p + ".outcome"); out.IsDefined())
            s.outcome = outcome_spec(r, out, p + ".outcome");
        c.stages.push_back(std::move(s));
    }
}

void load_scheduling(Reader &r, const YAML::Node &root, Config &c) {
    YAML::Node n = r.section(root, "scheduling", "scheduling");
    if (!n.IsDefined()) return;
    auto &s = c.scheduling;
    r.unknown_fields(n, "scheduling",
                     {"continuation_delay_sec", "max_continuations", "retry_base_sec", "retry_max_backoff_sec", "max_attempts",
                      "max_concurrent_by_state", "terminal_states", "keep_terminal_workspaces_days", "max_routes"});
    if (n["max_routes"].IsDefined()) s.max_routes = r.integer(n["max_routes"], "scheduling.max_routes");
    s.keep_terminal_workspaces_days =
        r.seconds(n, "keep_terminal_workspaces_days", "scheduling.keep_terminal_workspaces_days", 0, true);
    s.continuation_delay_sec = r.seconds(n, "continuation_delay_sec", "scheduling.continuation_delay_sec", 1, true);
    if (n["max_continuations"].IsDefined())
        s.max_continuations = r.integer(n["max_continuations"], "scheduling.max_continuations");
    s.retry_base_sec = r.seconds(n, "retry_base_sec", "scheduling.retry_base_sec", 10, true);
    s.retry_max_backoff_sec = r.seconds(n, "retry_max_backoff_sec", "scheduling.retry_max_backoff_sec", 300, true);
    s.max_attempts = r.positive(n, "max_attempts", "scheduling.max_attempts", 3);
    if (YAML::Node by = r.section(n, "max_concurrent_by_state", "scheduling.max_concurrent_by_state"); by.IsDefined())
        for (const auto &kv : by) {
            std::string p = "scheduling.max_concurrent_by_state." + kv.first.Scalar();
            int64_t v = r.integer(kv.second, p);
            if (v == 0) r.diags().non_positive(p, 0);
            s.max_concurrent_by_state[kv.first.Scalar()] = v;
        }
    if (YAML::Node t = n["terminal_states"]; t.IsDefined()) {
        if (!t.IsSequence())
            r.fail(t.Mark(), "scheduling.terminal_states", "invalid type: expected a list of states" + r.found(t));
        for (const auto &v : t) {
            std::string st = r.string(v, "scheduling.terminal_states");
            if (is_blank(st)) r.diags().empty_str("scheduling.terminal_states");
            s.terminal_states.push_back(st);
        }
    }
}

void load_server(Reader &r, const YAML::Node &root, Config &c) {
    YAML::Node n = r.section(root, "server", "server");
    if (!n.IsDefined()) return;
    auto &s = c.server;
    r.unknown_fields(n, "server", {"port", "host", "token_env"});
    if (YAML::Node p = n["port"]; p.IsDefined()) {
        int64_t v = r.integer(p, "server.port");
        if (v > 65535) r.fail(p.Mark(), "server.port", "invalid value: expected a port from 0 to 65535, found " + p.Scalar());
        s.port = v;
    }
    if (auto h = r.optional_string(n, "host", "server.host")) {
        if (is_blank(*h))
            r.diags().empty_str("server.host");
        else
            s.host = *h;
    }
    if (auto t = r.optional_string(n, "token_env", "server.token_env")) {
        if (is_blank(*t)) r.diags().empty_str("server.token_env");
        s.token_env = *t;
    }
    // `run` refuses this (host/http/server_config.cpp); doctor says so before anyone tries.
    if (s.token_env.empty() && !util::is_loopback_address(s.host)) r.diags().server_needs_token("server.host", s.host);
}

// `store:`: the embedded SQLite file (default), or a PostgreSQL database shared by several hosts,
// named by an environment variable (a URL holds a password: never in the workflow file) and keyed
// by a workflow id the operator chooses (the file's path differs between machines).
void load_store(Reader &r, const YAML::Node &root, Config &c) {
    YAML::Node n = r.section(root, "store", "store");
    if (!n.IsDefined()) return;
    r.unknown_fields(n, "store", {"kind", "url_env", "workflow_id", "lease_ttl_sec"});
    auto &s = c.store;
    if (auto k = r.optional_string(n, "kind", "store.kind")) {
        if (*k != "sqlite" && *k != "postgres")
            r.fail(n["kind"].Mark(), "store.kind", "invalid value: expected sqlite or postgres, found '" + *k + "'");
        s.kind = *k;
    }
    if (auto u = r.optional_string(n, "url_env", "store.url_env")) s.url_env = *u;
    if (auto w = r.optional_string(n, "workflow_id", "store.workflow_id")) s.workflow_id = *w;
    s.lease_ttl_sec = r.positive(n, "lease_ttl_sec", "store.lease_ttl_sec", s.lease_ttl_sec);
    if (s.lease_ttl_sec > 0 && s.lease_ttl_sec < 3)
        r.fail(n["lease_ttl_sec"].Mark(), "store.lease_ttl_sec",
               "invalid value: a lease must last at least 3 seconds (it is renewed every third of it), found " +
                   std::to_string(s.lease_ttl_sec));
    if (s.kind == "postgres") {
        if (is_blank(s.url_env))
            r.fail(n.Mark(), "store.url_env",
                   "missing field: a postgres store needs 'url_env', the environment variable holding its connection URL "
                   "(for example VIK_PG_URL=postgresql://vik@db.example/vik)");
        if (is_blank(s.workflow_id))
            r.fail(n.Mark(), "store.workflow_id",
                   "missing field: a postgres store needs 'workflow_id', the name this workflow's records have in the "
                   "shared database (the same on every host that runs it)");
    }
}

void load_notify(Reader &r, const YAML::Node &root, Config &c) {
    YAML::Node n = r.section(root, "notify", "notify");
    if (!n.IsDefined()) return;
    r.unknown_fields(n, "notify", {"webhooks"});
    YAML::Node hooks = n["webhooks"];
    if (!hooks.IsDefined()) return;
    if (!hooks.IsSequence())
        r.fail(hooks.Mark(), "notify.webhooks", "invalid type: expected a list of webhooks" + r.found(hooks));
    for (size_t i = 0; i < hooks.size(); ++i) {
        const YAML::Node h = hooks[i];
        const std::string p = "notify.webhooks." + std::to_string(i);
        if (!h.IsMap()) r.fail(h.Mark(), p, "invalid type: expected a map with `url` or `url_env`" + r.found(h));
        r.unknown_fields(h, p, {"url", "url_env", "events", "format"});
        Webhook w;
        if (auto u = r.optional_string(h, "url", p + ".url")) w.url = *u;
        if (auto e = r.optional_string(h, "url_env", p + ".url_env")) w.url_env = *e;
        if (w.url.empty() == w.url_env.empty()) r.fail(h.Mark(), p, "invalid value: give exactly one of `url` and `url_env`");
        if (!w.url.empty() && !w.url.starts_with("http://") && !w.url.starts_with("https://"))
            r.fail(h["url"].Mark(), p + ".url", "invalid value: expected an http:// or https:// URL, found '" + w.url + "'");
        if (YAML::Node ev = h["events"]; ev.IsDefined()) {
            if (!ev.IsSequence()) r.fail(ev.Mark(), p + ".events", "invalid type: expected a list of events" + r.found(ev));
            for (const auto &e : ev) {
                std::string name = r.string(e, p + ".events");
                if (name != "blocked" && name != "failed" && name != "completed" && name != "gate_waiting")
                    r.fail(e.Mark(), p + ".events",
                           "invalid value: expected blocked, failed, completed or gate_waiting, found '" + name + "'");
                w.events.push_back(name);
            }
        }
        if (auto f = r.optional_string(h, "format", p + ".format")) {
            if (*f != "json" && *f != "slack")
                r.fail(h["format"].Mark(), p + ".format", "invalid value: expected json or slack, found '" + *f + "'");
            w.format = *f;
        }
        c.notify.webhooks.push_back(std::move(w));
    }
}

// schedules.NAME: {cron, time_zone, issue, state, missed}. The expression and the zone are
// checked here (a schedule that cannot fire is a load error); the state must be one a stage
// takes, and the tracker must be able to set it (warnings, as for on_fail routes).
// `plugins:`: which hooks plugins run and in what order, and plugin-wide settings. Whether the
// ids name loaded plugins is plugin_checks.cpp's to say (it knows the registry).
void load_plugin_selection(Reader &r, const YAML::Node &root, Config &c) {
    YAML::Node n = r.section(root, "plugins", "plugins");
    if (!n.IsDefined()) return;
    r.unknown_fields(n, "plugins", {"hooks", "settings", "isolate"});
    if (YAML::Node isolate = n["isolate"]; isolate.IsDefined()) {
        if (!isolate.IsSequence())
            r.fail(isolate.Mark(), "plugins.isolate", "invalid type: expected a list of plugin ids" + r.found(isolate));
        for (const auto &v : isolate) {
            std::string id = r.string(v, "plugins.isolate");
            if (is_blank(id))
                r.diags().empty_str("plugins.isolate");
            else
                c.plugins.isolate.push_back(id);
        }
    }
    if (YAML::Node hooks = n["hooks"]; hooks.IsDefined()) {
        if (!hooks.IsSequence())
            r.fail(hooks.Mark(), "plugins.hooks", "invalid type: expected a list of hooks plugin ids" + r.found(hooks));
        std::vector<std::string> ids;
        for (const auto &v : hooks) {
            std::string id = r.string(v, "plugins.hooks");
            if (is_blank(id)) {
                r.diags().empty_str("plugins.hooks");
            } else if (std::find(ids.begin(), ids.end(), id) != ids.end()) {
                r.fail(v.Mark(), "plugins.hooks", "invalid value: '" + id + "' is listed twice");
            }
            ids.push_back(id);
        }
        c.plugins.hooks = std::move(ids);
    }
    if (YAML::Node settings = r.section(n, "settings", "plugins.settings"); settings.IsDefined())
        for (const auto &kv : settings) {
            std::string id = kv.first.Scalar();
            std::string p = "plugins.settings." + id;
            if (!kv.second.IsMap()) r.fail(kv.second.Mark(), p, "invalid type: expected a map of settings" + r.found(kv.second));
            c.plugins.settings[id] = r.to_json(kv.second).as_object();
        }
}

void load_schedules(Reader &r, const YAML::Node &root, Config &c) {
    YAML::Node n = r.section(root, "schedules", "schedules");
    if (!n.IsDefined()) return;
    for (const auto &kv : n) {
        Schedule s;
        s.name = r.string(kv.first, "schedules");
        const std::string p = "schedules." + s.name;
        const YAML::Node &m = kv.second;
        if (!m.IsMap()) r.fail(m.Mark(), p, "invalid type: expected a map with cron, time_zone, issue and state" + r.found(m));
        r.unknown_fields(m, p, {"cron", "time_zone", "issue", "state", "missed"});
        YAML::Node cron = r.required(m, "cron", p + ".cron");
        s.cron = r.string(cron, p + ".cron");
        auto expr = schedule::CronExpr::parse(s.cron);
        if (!expr) r.fail(cron.Mark(), p + ".cron", "invalid value: " + expr.error());
        YAML::Node zone = r.required(m, "time_zone", p + ".time_zone");
        s.time_zone = r.string(zone, p + ".time_zone");
        auto tz = schedule::TimeZone::load(s.time_zone);
        if (!tz) r.fail(zone.Mark(), p + ".time_zone", "invalid value: " + tz.error());
        if (!expr->next_after(std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now()), *tz))
            r.fail(cron.Mark(), p + ".cron", "invalid value: '" + s.cron + "' never fires");
        s.issue = r.string(r.required(m, "issue", p + ".issue"), p + ".issue");
        if (is_blank(s.issue)) r.diags().empty_str(p + ".issue");
        YAML::Node state = r.required(m, "state", p + ".state");
        s.state = r.string(state, p + ".state");
        if (std::none_of(c.stages.begin(), c.stages.end(), [&](const Stage &st) { return st.state == s.state; }))
            r.diags().schedule_state_unused(p + ".state", s.state);
        if (auto missed = r.optional_string(m, "missed", p + ".missed")) {
            if (*missed != "run_once" && *missed != "skip")
                r.fail(m["missed"].Mark(), p + ".missed", "invalid value: expected run_once or skip, found '" + *missed + "'");
            s.catch_up = *missed == "run_once";
        }
        if (c.tracker_kind == kDefaultTrackerKind) r.diags().schedule_needs_writes(p, c.tracker_kind);
        c.schedules.push_back(std::move(s));
    }
}

} // namespace

std::expected<Loaded, LoadError> load_workflow_text(const std::string &text, const fs::path &path) {
    Loaded out;
    Reader r(path, text, out.diagnostics);
    try {
        // Before any tree exists: an alias bomb or an alias cycle never reaches YAML::Load.
        if (auto refused = check_yaml_limits(text, path)) throw Failure{{*refused, ""}};
        YAML::Node root;
        try {
            root = YAML::Load(text);
        } catch (const YAML::DeepRecursion &e) {
            r.fail(e.mark, "",
                   "invalid YAML: nesting deeper than " + std::to_string(e.depth()) +
                       " levels; a workflow needs a few, flatten this value");
        } catch (const YAML::Exception &e) {
            r.fail(e.mark, "", "invalid YAML: " + e.msg);
        }
        if (!root.IsMap()) r.fail(root.Mark(), "", "invalid type: the workflow must be a YAML map" + r.found(root));
        auto &c = out.config;
        c.workflow_path = absolute_lexical(path);
        c.workflow_dir = c.workflow_path.parent_path();
        load_loop(r, root, c);
        load_workspace(r, root, c);
        load_agents(r, root, c);
        load_issues(r, root, c);
        load_issue(r, root, c);
        load_scheduling(r, root, c);
        check_routes(r, c); // needs every stage and the scheduling rules
        load_server(r, root, c);
        load_notify(r, root, c);
        load_schedules(r, root, c); // needs the stages
        load_plugin_selection(r, root, c);
        load_store(r, root, c);
        // vik warns about unknown top-level fields after every section (config/mod.rs).
        r.unknown_fields(root, "",
                         {"loop", "workspace", "agents", "issues", "issue", "scheduling", "server", "notify", "schedules",
                          "plugins", "store"});
    } catch (const Failure &f) {
        return std::unexpected(f.error);
    } catch (const YAML::Exception &e) {
        return std::unexpected(LoadError{
            path.string() + ":" + std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1) + ": " + e.msg, ""});
    }
    return out;
}

std::expected<Loaded, LoadError> load_workflow(const fs::path &path) {
    std::ifstream in(path, std::ios::binary);
    if (!in)
        return std::unexpected(LoadError{"cannot read workflow file " + path.string() + ": " + std::strerror(errno) +
                                             " (pass the path of your workflow.yml)",
                                         ""});
    // Bounded read: a workflow is a few kilobytes; `doctor /dev/zero` must not fill memory.
    const size_t max_bytes = YamlLimits{}.max_file_bytes;
    std::string text = util::read_at_most(in, max_bytes);
    if (text.size() > max_bytes)
        return std::unexpected(LoadError{path.string() + ": the workflow file is larger than " +
                                             std::to_string(max_bytes / (1024 * 1024)) +
                                             " MiB; a workflow is a few kilobytes (check that this is the right file)",
                                         ""});
    return load_workflow_text(text, path);
}

} // namespace vik::workflow
