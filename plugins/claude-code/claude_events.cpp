#include "claude_events.hpp"

#include "../common/agent_cli.hpp"

#include <vik/plugin.h>

#include <boost/json.hpp>

namespace vik::agents {

namespace json = boost::json;

namespace {
const json::object *obj(const json::object &o, const char *k) {
    auto *v = o.if_contains(k);
    return v && v->is_object() ? &v->get_object() : nullptr;
}
} // namespace

const EventList &ClaudeEventMapper::map_line(std::string_view line, bool truncated) {
    EventList &out = start_line();
    const json::value *doc = parse_line(line, truncated, "claude", out);
    if (doc == nullptr) return out;
    const json::value &v = *doc;
    const json::object &o = v.get_object();
    std::string type = str(o.if_contains("type"));
    std::string subtype = str(o.if_contains("subtype"));

    if (type == "system" && subtype == "init") {
        out.push_back(event({{"kind", VIK_EVENT_SESSION_STARTED}, {"session_id", str(o.if_contains("session_id"))}}));
    } else if (type == "system" && subtype == "permission_denied") {
        last_notice = "permission denied";
        out.push_back(event({{"kind", VIK_EVENT_NOTICE}, {"level", "warning"}, {"text", "permission denied"}, {"raw", v}}));
    } else if (type == "rate_limit_event" && obj(o, "rate_limit_info")) {
        // Claude Code's subscription limits (not sent for API keys): `rejected` means the limit
        // is hit until `resetsAt` (seconds since the epoch).
        const json::object &info = *obj(o, "rate_limit_info");
        std::string status = str(info.if_contains("status"));
        json::object limit{{"kind", VIK_EVENT_RATE_LIMIT},
                           {"scope", str(info.if_contains("rateLimitType"))},
                           {"status", status},
                           {"limited", status == "rejected"},
                           {"raw", v}};
        if (auto *u = info.if_contains("utilization"); u && u->is_number()) limit["utilization"] = *u;
        if (auto *r = info.if_contains("resetsAt"); r && r->is_number()) limit["reset_at"] = *r;
        out.push_back(event(limit));
    } else if (type == "assistant" && obj(o, "message")) {
        const json::object &m = *obj(o, "message");
        std::string text;
        if (auto *c = m.if_contains("content"); c && c->is_array()) {
            for (const auto &block : c->get_array()) {
                if (!block.is_object()) continue;
                const json::object &b = block.get_object();
                std::string btype = str(b.if_contains("type"));
                if (btype == "text") {
                    text += (text.empty() ? "" : "\n") + str(b.if_contains("text"));
                } else if (btype == "tool_use") {
                    std::string id = str(b.if_contains("id")), name = str(b.if_contains("name"));
                    json::value input = b.contains("input") ? b.at("input") : json::value();
                    if (name == "Task" || name == "Agent") {
                        subagent_calls_.insert(id);
                        out.push_back(event({{"kind", VIK_EVENT_SUBAGENT},
                                             {"call_id", id},
                                             {"action", "spawn"},
                                             {"status", "requested"},
                                             {"target_ids", json::array()},
                                             {"raw", block}}));
                    } else {
                        out.push_back(event({{"kind", VIK_EVENT_TOOL_CALL},
                                             {"call_id", id},
                                             {"name", name},
                                             {"phase", "request"},
                                             {"input", input},
                                             {"output", nullptr},
                                             {"raw", block}}));
                    }
                }
            }
        }
        if (!text.empty()) out.push_back(event({{"kind", VIK_EVENT_MESSAGE}, {"text", text}}));
    } else if (type == "user" && obj(o, "message")) {
        const json::object &m = *obj(o, "message");
        if (auto *c = m.if_contains("content"); c && c->is_array())
            for (const auto &block : c->get_array()) {
                if (!block.is_object() || str(block.get_object().if_contains("type")) != "tool_result") continue;
                const json::object &b = block.get_object();
                std::string id = str(b.if_contains("tool_use_id"));
                json::value result = b.contains("content") ? b.at("content") : json::value();
                if (subagent_calls_.count(id))
                    out.push_back(
                        event({{"kind", VIK_EVENT_SUBAGENT},
                               {"call_id", id},
                               {"action", "result"},
                               {"status", b.contains("is_error") && b.at("is_error").is_bool() && b.at("is_error").get_bool()
                                              ? "failed"
                                              : "completed"},
                               {"target_ids", json::array()},
                               {"raw", block}}));
                else
                    out.push_back(event({{"kind", VIK_EVENT_TOOL_CALL},
                                         {"call_id", id},
                                         {"name", ""},
                                         {"phase", "result"},
                                         {"input", nullptr},
                                         {"output", result},
                                         {"raw", block}}));
            }
    } else if (type == "result") {
        json::object usage = obj(o, "usage") ? *obj(o, "usage") : json::object();
        json::object tokens{{"kind", VIK_EVENT_TOKEN_USAGE},
                            {"input", int_field(usage, "input_tokens")},
                            {"output", int_field(usage, "output_tokens")},
                            {"cache_read", int_field(usage, "cache_read_input_tokens")}};
        if (auto *c = o.if_contains("total_cost_usd"); c && (c->is_double() || c->is_int64())) tokens["cost_usd"] = *c;
        out.push_back(event(tokens));
        if (auto *d = o.if_contains("permission_denials"); d && d->is_array() && !d->get_array().empty()) {
            std::string tools;
            for (const auto &denial : d->get_array()) {
                out.push_back(
                    event({{"kind", VIK_EVENT_NOTICE}, {"level", "warning"}, {"text", "permission denied"}, {"raw", denial}}));
                std::string tool = denial.is_object() ? str(denial.get_object().if_contains("tool_name")) : "";
                if (!tool.empty() && tools.find(tool) == std::string::npos) tools += (tools.empty() ? "" : ", ") + tool;
            }
            // A denial the agent could not get past: a human decides (the issue is parked).
            out.push_back(event(
                {{"kind", VIK_EVENT_INPUT_REQUIRED},
                 {"question", "Claude Code was denied permission to use " + (tools.empty() ? std::string("a tool") : tools) +
                                  ": allow it in the agent profile (args allowedTools or permission-mode) or "
                                  "answer how to go on without it"}}));
        }
        // FIX over vik: `is_error: true` fails the session whatever `subtype` says.
        bool is_error = o.contains("is_error") && o.at("is_error").is_bool() && o.at("is_error").get_bool();
        if (is_error) {
            std::string detail = str(o.if_contains("result"));
            std::string reason = str(o.if_contains("terminal_reason"));
            if (detail.empty()) detail = "claude reported an error" + (reason.empty() ? "" : " (" + reason + ")");
            out.push_back(event({{"kind", VIK_EVENT_ERROR}, {"detail", detail}}));
            settle(VIK_SESSION_FAILED, detail);
        } else {
            out.push_back(event({{"kind", VIK_EVENT_COMPLETED}}));
            settle(VIK_SESSION_COMPLETED);
        }
    } else {
        out.push_back(
            event({{"kind", VIK_EVENT_UNKNOWN}, {"event_type", subtype.empty() ? type : type + "/" + subtype}, {"raw", v}}));
    }
    return out;
}

} // namespace vik::agents
