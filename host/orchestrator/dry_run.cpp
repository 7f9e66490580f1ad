#include "orchestrator/dry_run.hpp"

#include "orchestrator/agent_choice.hpp"
#include "orchestrator/candidates.hpp"
#include "orchestrator/template_context.hpp"
#include "template/template.hpp"
#include "util/ids_and_time.hpp"
#include "util/untrusted_text.hpp"

#include <boost/json.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

namespace vik::orchestrator {

namespace json = boost::json;
namespace fs = std::filesystem;

namespace {

std::string indent(const std::string &text, const std::string &pad) {
    std::string out;
    size_t start = 0;
    while (start <= text.size()) {
        size_t nl = text.find('\n', start);
        std::string line = text.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
        if (nl == std::string::npos && line.empty()) break;
        out += pad + util::escape_for_terminal(line) + "\n";
        if (nl == std::string::npos) break;
        start = nl + 1;
    }
    return out;
}

std::string prompt_source(const workflow::Stage &s) {
    if (s.prompt) return *s.prompt;
    std::ifstream in(*s.prompt_file, std::ios::binary);
    if (!in) throw tmpl::TemplateError("cannot read prompt_file " + s.prompt_file->string());
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// A hook script as it would run, or why it could not be rendered.
std::string hook_text(const std::string &source, const std::string &where, const json::object &ctx) {
    try {
        return tmpl::render_shell(source, where, ctx);
    } catch (const std::exception &e) {
        return std::string("(would fail: ") + e.what() + ")";
    }
}

} // namespace

std::string dry_run_report(const DryRunInput &in) {
    const workflow::Config &cfg = in.cfg;
    std::string out = fmt::format("dry run: {} issue(s) pulled; nothing is changed (no workspace, agent, tracker write or "
                                  "store write; exec() in prompts is not run)\n",
                                  in.issues.size());
    for (const auto &w : in.warnings)
        out += "warning: " + util::escape_for_terminal(w) + "\n";

    std::map<std::pair<std::string, std::string>, const store::ClaimRecord *> claims;
    for (const auto &c : in.claims)
        claims[{c.issue_id, c.stage}] = &c;
    std::map<std::string, std::string> state_by_id;
    for (const auto &i : in.issues)
        state_by_id[i.id] = i.state;
    auto terminal = [&](const std::string &state) {
        const auto &t = cfg.scheduling.terminal_states;
        return std::find(t.begin(), t.end(), state) != t.end();
    };

    // Slots held now: issues with a running claim (a live host may be running them).
    std::set<std::string> holding;
    std::vector<std::string> running_states;
    for (const auto &c : in.claims)
        if (c.state == store::ClaimState::running && holding.insert(c.issue_id).second)
            running_states.push_back(state_by_id.count(c.issue_id) ? state_by_id[c.issue_id] : c.issue_state);

    json::object base = base_context(cfg);
    int order = 0;
    for (const Issue *issue : order_candidates(in.issues)) {
        out += fmt::format("\n{} [{}] {}\n", util::escape_for_terminal(issue->id), util::escape_for_terminal(issue->state),
                           util::escape_for_terminal(issue->title));
        if (terminal(issue->state)) {
            out += in.layout.has_workspace(issue->id) ? "  terminal: its workspace would be removed (before_remove first)\n"
                                                      : "  terminal: nothing to do\n";
            continue;
        }
        // A run awaiting a human gate holds its whole issue, wherever the agent moved it.
        const store::ClaimRecord *gated = nullptr;
        for (const auto &r : in.claims)
            if (r.issue_id == issue->id && r.awaiting_approval && r.state == store::ClaimState::blocked) gated = &r;
        if (gated) {
            out += fmt::format("  stage {}: awaits approval{} (`vik-host gate approve {}` or `vik-host gate reject {}`)\n",
                               gated->stage, gated->blocked_at ? " since " + util::rfc3339_utc(*gated->blocked_at) : "",
                               util::escape_for_terminal(issue->id), util::escape_for_terminal(issue->id));
            continue;
        }
        std::vector<const workflow::Stage *> free;
        for (const auto &s : cfg.stages) {
            if (s.state != issue->state) continue;
            auto c = claims.find({issue->id, s.name});
            // A pair routed away by on_fail runs again once its issue is back in its state.
            if (c == claims.end() || (c->second->state == store::ClaimState::blocked && !c->second->routed_to.empty())) {
                free.push_back(&s);
                continue;
            }
            const store::ClaimRecord &r = *c->second;
            switch (r.state) {
            case store::ClaimState::running:
                out += fmt::format("  stage {}: running (attempt {}; claimed by a host)\n", s.name, r.runs);
                break;
            case store::ClaimState::retry_queued:
                out += fmt::format("  stage {}: retry queued ({}, attempt {} due at {}){}\n", s.name, r.retry_kind, r.runs + 1,
                                   r.due_at ? util::rfc3339_utc(*r.due_at) : "?",
                                   r.last_error.empty() ? "" : "; last error: " + util::escape_for_terminal(r.last_error));
                break;
            case store::ClaimState::blocked:
                out += fmt::format("  stage {}: blocked{}: {} (cleared by a state change or `vik-host issue retry {}`)\n", s.name,
                                   r.blocked_at ? " since " + util::rfc3339_utc(*r.blocked_at) : "",
                                   util::escape_for_terminal(r.blocked_reason), util::escape_for_terminal(issue->id));
                break;
            }
        }
        if (free.empty()) {
            bool any = std::any_of(cfg.stages.begin(), cfg.stages.end(), [&](const auto &s) { return s.state == issue->state; });
            if (!any) out += fmt::format("  no stage runs in state '{}'\n", util::escape_for_terminal(issue->state));
            continue;
        }
        if (waits_on_blocker(*issue, state_by_id, cfg.scheduling.terminal_states)) {
            out += "  waits for its blockers:";
            for (const auto &b : issue->blocked_by)
                out += " " + util::escape_for_terminal(b);
            out += "\n";
            continue;
        }
        if (!holding.count(issue->id)) {
            if (holding.size() >= static_cast<size_t>(cfg.max_issue_concurrency)) {
                out += fmt::format("  waits: no free slot (loop.max_issue_concurrency = {})\n", cfg.max_issue_concurrency);
                continue;
            }
            if (!state_has_room(cfg.scheduling, issue->state, running_states)) {
                out +=
                    fmt::format("  waits: the state's limit is reached (scheduling.max_concurrent_by_state.{} = {})\n",
                                util::escape_for_terminal(issue->state), cfg.scheduling.max_concurrent_by_state.at(issue->state));
                continue;
            }
            holding.insert(issue->id);
            running_states.push_back(issue->state);
        }
        ++order;
        fs::path workdir = in.layout.issues_root() / in.layout.key(issue->id);
        bool fresh = !in.layout.has_workspace(issue->id);
        out += fmt::format("  would launch (#{}): {} stage(s) in {}{}\n", order, free.size(),
                           util::escape_for_terminal(workdir.string()), fresh ? " (a new workspace)" : "");
        json::object issue_ctx = issue_context(base, *issue, workdir, std::nullopt);
        if (fresh && cfg.after_create)
            out +=
                "    after_create:\n" + indent(hook_text(*cfg.after_create, "issue.hooks.after_create", issue_ctx), "      | ");
        for (const workflow::Stage *s : free) {
            out += fmt::format("    stage {} (agent {}):\n", s->name, agent_for(*s, *issue));
            json::object ctx = issue_context(base, *issue, workdir, s->name);
            ctx["attempt"] = 1;
            ctx["retry_kind"] = "first";
            ctx["last_error"] = "";
            ctx["operator_message"] = "";
            ctx["gate_feedback"] = "";
            ctx["outcomes"] = json::object{}; // the store's outcomes are not read by a dry run
            ctx["resumed"] = false;
            ctx["failure"] = json::object{{"stage", ""}, {"reason", ""}, {"attempts", 0}, {"routes", 0}};
            const store::ClaimRecord *from = nullptr; // the newest route to this stage, as the host picks it
            for (const auto &r : in.claims)
                if (r.issue_id == issue->id && r.routed_to == s->name && (!from || r.updated_at > from->updated_at)) from = &r;
            if (from)
                ctx["failure"] = json::object{{"stage", from->stage},
                                              {"reason", from->route_reason},
                                              {"attempts", from->failures},
                                              {"routes", from->routes}};
            if (s->before_run)
                out += "      before_run:\n" +
                       indent(hook_text(*s->before_run, "issue.stages." + s->name + ".hooks.before_run", ctx), "        | ");
            std::string name = s->prompt_file ? s->prompt_file->string() : "issue.stages." + s->name + ".prompt";
            std::string prompt;
            try {
                tmpl::Template t(prompt_source(*s), name);
                prompt = tmpl::expand_prompt_commands(
                    t.render(ctx), [](const std::string &cmd) { return "<exec not run in a dry run: " + cmd + ">"; });
            } catch (const std::exception &e) {
                prompt = std::string("(the prompt would fail: ") + e.what() + ")";
            }
            out += "      prompt:\n" + indent(prompt, "        | ");
            // What decides whether a completed run stands, in the order the host asks.
            std::vector<std::string> checks;
            if (s->outcome) checks.push_back("outcome file " + s->outcome->file);
            if (s->gate.command) checks.push_back("gate command");
            if (s->gate.agent)
                checks.push_back("review by agent " + *s->gate.agent + " (verdict_file " + s->gate.verdict_file + ")");
            if (s->gate.human) checks.push_back("a human's approval");
            if (!checks.empty()) {
                out += "      then:";
                for (size_t i = 0; i < checks.size(); ++i)
                    out += (i ? ", then " : " ") + util::escape_for_terminal(checks[i]);
                out += "\n";
            }
        }
    }
    out += fmt::format("\n{} issue(s) would launch now.\n", order);
    return out;
}

} // namespace vik::orchestrator
