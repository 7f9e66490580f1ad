#include "codex_events.hpp"

#include "../common/agent_cli.hpp"

#include <vik/plugin.h>

#include <boost/json.hpp>

namespace vik::agents {

namespace json = boost::json;

// The common lines, read without a tree. False when the line is another shape (or a member has
// another type than these lines have): map_line parses it then.
bool CodexEventMapper::map_flat(EventList &out) {
    const std::string_view *type = flat_.text("type");
    if (type == nullptr) return false;
    if (*type == "item.completed") {
        const std::string_view *itype = flat_.text("item.type");
        const std::string_view *text = flat_.text("item.text");
        if (itype == nullptr || *itype != "agent_message" || (text == nullptr && flat_.has("item.text"))) return false;
        EventWriter(out, VIK_EVENT_MESSAGE).text("text", text ? *text : std::string_view()).end();
        return true;
    }
    if (*type == "thread.started") {
        const std::string_view *id = flat_.text("thread_id");
        if (id == nullptr && flat_.has("thread_id")) return false;
        EventWriter(out, VIK_EVENT_SESSION_STARTED).text("session_id", id ? *id : std::string_view()).end();
        return true;
    }
    if (*type == "turn.completed") {
        auto count = [&](const char *path) {
            const int64_t *n = flat_.integer(path);
            return n ? *n : 0; // absent or not an integer: 0, as int_field reads a tree
        };
        EventWriter(out, VIK_EVENT_TOKEN_USAGE)
            .integer("input", count("usage.input_tokens"))
            .integer("output", count("usage.output_tokens"))
            .integer("cache_read", count("usage.cached_input_tokens"))
            .integer("reasoning", count("usage.reasoning_output_tokens"))
            .end();
        EventWriter(out, VIK_EVENT_COMPLETED).end();
        settle(VIK_SESSION_COMPLETED);
        return true;
    }
    return false;
}

const EventList &CodexEventMapper::map_line(std::string_view line, bool truncated) {
    EventList &out = start_line();
    if (!truncated && flat_.read(line) && map_flat(out)) return out;
    const json::value *doc = parse_line(line, truncated, "codex", out);
    if (doc == nullptr) return out;
    const json::value &v = *doc;
    const json::object &o = v.get_object();
    std::string_view type = text_of(o.if_contains("type"));
    auto unknown = [&] {
        EventWriter(out, VIK_EVENT_UNKNOWN).text("event_type", str(o.if_contains("type"))).value("raw", v).end();
    };

    if (type == "thread.started") {
        EventWriter(out, VIK_EVENT_SESSION_STARTED).text("session_id", str(o.if_contains("thread_id"))).end();
    } else if (type == "turn.completed") {
        static const json::object none;
        const auto *u = o.if_contains("usage");
        const json::object &usage = u && u->is_object() ? u->get_object() : none;
        EventWriter(out, VIK_EVENT_TOKEN_USAGE)
            .integer("input", int_field(usage, "input_tokens"))
            .integer("output", int_field(usage, "output_tokens"))
            .integer("cache_read", int_field(usage, "cached_input_tokens"))
            .integer("reasoning", int_field(usage, "reasoning_output_tokens"))
            .end();
        EventWriter(out, VIK_EVENT_COMPLETED).end();
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
        std::string_view itype = text_of(item.if_contains("type"));
        bool done = type == "item.completed";
        std::string id = str(item.if_contains("id"));
        if (itype == "agent_message" && done) {
            // The common line (most of a turn's output): its text is copied once, into the event.
            const json::value *text = item.if_contains("text");
            std::string other = text && text->is_string() ? std::string() : str(text);
            EventWriter(out, VIK_EVENT_MESSAGE).text("text", text && text->is_string() ? text_of(text) : other).end();
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
