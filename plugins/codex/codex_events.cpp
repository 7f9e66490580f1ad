#include "codex_events.hpp"

#include "../common/agent_cli.hpp"

#include <vik/plugin.h>

#include <boost/json.hpp>

namespace vik::agents {

namespace json = boost::json;

std::vector<std::string> CodexEventMapper::map(std::string_view line, bool truncated) {
    std::vector<std::string> out;
    json::value v;
    if (!parse_line(line, truncated, "codex", v, out)) return out;
    const json::object &o = v.get_object();
    std::string type = str(o.if_contains("type"));
    auto unknown = [&] { out.push_back(event({{"kind", VIK_EVENT_UNKNOWN}, {"event_type", type}, {"raw", v}})); };

    if (type == "thread.started") {
        out.push_back(event({{"kind", VIK_EVENT_SESSION_STARTED}, {"session_id", str(o.if_contains("thread_id"))}}));
    } else if (type == "turn.completed") {
        json::object usage = o.contains("usage") && o.at("usage").is_object() ? o.at("usage").get_object() : json::object();
        out.push_back(event({{"kind", VIK_EVENT_TOKEN_USAGE},
                             {"input", int_field(usage, "input_tokens")},
                             {"output", int_field(usage, "output_tokens")},
                             {"cache_read", int_field(usage, "cached_input_tokens")},
                             {"reasoning", int_field(usage, "reasoning_output_tokens")}}));
        out.push_back(event({{"kind", VIK_EVENT_COMPLETED}}));
        settle(VIK_SESSION_COMPLETED);
    } else if (type == "turn.failed") {
        std::string msg;
        if (auto *e = o.if_contains("error"); e && e->is_object()) msg = str(e->get_object().if_contains("message"));
        if (msg.empty()) msg = last_notice.empty() ? "codex reported turn.failed" : last_notice;
        out.push_back(event({{"kind", VIK_EVENT_ERROR}, {"detail", msg}}));
        settle(VIK_SESSION_FAILED, msg);
    } else if (type == "error") {
        // FIX over vik: transient stream errors ("Reconnecting... 1/5") are notices; the turn
        // fails only with turn.failed or a failed exit.
        last_notice = str(o.if_contains("message"));
        out.push_back(event({{"kind", VIK_EVENT_NOTICE}, {"level", "warning"}, {"text", last_notice}, {"raw", v}}));
    } else if ((type == "item.started" || type == "item.completed" || type == "item.updated") && o.contains("item") &&
               o.at("item").is_object()) {
        const json::object &item = o.at("item").get_object();
        std::string itype = str(item.if_contains("type"));
        std::string id = str(item.if_contains("id"));
        bool done = type == "item.completed";
        if (itype == "agent_message" && done) {
            out.push_back(event({{"kind", VIK_EVENT_MESSAGE}, {"text", str(item.if_contains("text"))}}));
        } else if (itype == "command_execution" && type != "item.updated") {
            if (!done)
                out.push_back(event({{"kind", VIK_EVENT_TOOL_CALL},
                                     {"call_id", id},
                                     {"name", "command_execution"},
                                     {"phase", "request"},
                                     {"input", json::object{{"command", str(item.if_contains("command"))}}},
                                     {"output", nullptr},
                                     {"raw", v}}));
            else
                out.push_back(event(
                    {{"kind", VIK_EVENT_TOOL_CALL},
                     {"call_id", id},
                     {"name", "command_execution"},
                     {"phase", "result"},
                     {"input", json::object{{"command", str(item.if_contains("command"))}}},
                     {"output", json::object{{"aggregated_output", str(item.if_contains("aggregated_output"))},
                                             {"exit_code", item.contains("exit_code") ? item.at("exit_code") : json::value()},
                                             {"status", str(item.if_contains("status"))}}},
                     {"raw", v}}));
        } else if (itype == "mcp_tool_call" && type != "item.updated") {
            std::string tool = str(item.if_contains("tool"));
            out.push_back(event({{"kind", VIK_EVENT_TOOL_CALL},
                                 {"call_id", id},
                                 {"name", tool.empty() ? "mcp_tool_call" : tool},
                                 {"phase", done ? "result" : "request"},
                                 {"input", item.contains("arguments") ? item.at("arguments") : json::value()},
                                 {"output", item.contains("result") ? item.at("result") : json::value()},
                                 {"raw", v}}));
        } else if (itype == "collab_tool_call") {
            out.push_back(
                event({{"kind", VIK_EVENT_SUBAGENT},
                       {"call_id", id},
                       {"action", str(item.if_contains("tool"))},
                       {"status", str(item.if_contains("status"))},
                       {"target_ids", item.contains("receiver_thread_ids") ? item.at("receiver_thread_ids") : json::array()},
                       {"raw", v}}));
        } else if (itype == "error" && done) {
            // FIX over vik: an error item is a warning inside a turn that goes on.
            out.push_back(event(
                {{"kind", VIK_EVENT_NOTICE}, {"level", "warning"}, {"text", str(item.if_contains("message"))}, {"raw", v}}));
        } else {
            unknown();
        }
    } else {
        unknown();
    }
    return out;
}

} // namespace vik::agents
