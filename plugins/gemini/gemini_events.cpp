#include "gemini_events.hpp"

#include "../common/agent_cli.hpp"

#include <vik/plugin.h>

#include <boost/json.hpp>

namespace vik::agents {

namespace json = boost::json;

void GeminiEventMapper::flush_text(EventList &out) {
    if (text_.empty()) return;
    out.push_back(event({{"kind", VIK_EVENT_MESSAGE}, {"text", text_}}));
    text_.clear();
}

const EventList &GeminiEventMapper::map_line(std::string_view line, bool truncated) {
    EventList &out = start_line();
    const json::value *doc = parse_line(line, truncated, "gemini", out);
    if (doc == nullptr) return out;
    const json::value &v = *doc;
    const json::object &o = v.get_object();
    std::string type = str(o.if_contains("type"));

    if (type == "message" && str(o.if_contains("role")) == "assistant") {
        // Assistant text arrives as deltas; one message per run of deltas.
        bool delta = o.contains("delta") && o.at("delta").is_bool() && o.at("delta").get_bool();
        text_ += str(o.if_contains("content"));
        if (!delta) flush_text(out);
        return out;
    }
    flush_text(out);
    if (type == "init") {
        out.push_back(event({{"kind", VIK_EVENT_SESSION_STARTED}, {"session_id", str(o.if_contains("session_id"))}}));
    } else if (type == "tool_use") {
        std::string id = str(o.if_contains("tool_id")), name = str(o.if_contains("tool_name"));
        tool_names_[id] = name;
        out.push_back(event({{"kind", VIK_EVENT_TOOL_CALL},
                             {"call_id", id},
                             {"name", name},
                             {"phase", "request"},
                             {"input", o.contains("parameters") ? o.at("parameters") : json::value()},
                             {"output", nullptr},
                             {"raw", v}}));
    } else if (type == "tool_result") {
        std::string id = str(o.if_contains("tool_id"));
        json::object output{{"status", str(o.if_contains("status"))}, {"output", str(o.if_contains("output"))}};
        if (auto *e = o.if_contains("error"); e && e->is_object()) output["error"] = str(e->get_object().if_contains("message"));
        auto name = tool_names_.find(id);
        out.push_back(event({{"kind", VIK_EVENT_TOOL_CALL},
                             {"call_id", id},
                             {"name", name == tool_names_.end() ? "" : name->second},
                             {"phase", "result"},
                             {"input", nullptr},
                             {"output", output},
                             {"raw", v}}));
    } else if (type == "error") {
        // A non-fatal error inside the run (loop detected, turn limit, ...): the run's `result`
        // line or its exit decides the outcome.
        std::string severity = str(o.if_contains("severity"));
        last_notice = str(o.if_contains("message"));
        out.push_back(event(
            {{"kind", VIK_EVENT_NOTICE}, {"level", severity.empty() ? "warning" : severity}, {"text", last_notice}, {"raw", v}}));
    } else if (type == "result") {
        json::object stats = o.contains("stats") && o.at("stats").is_object() ? o.at("stats").get_object() : json::object();
        out.push_back(event({{"kind", VIK_EVENT_TOKEN_USAGE},
                             {"input", int_field(stats, "input_tokens")},
                             {"output", int_field(stats, "output_tokens")},
                             {"cache_read", int_field(stats, "cached")}}));
        if (str(o.if_contains("status")) == "success") {
            out.push_back(event({{"kind", VIK_EVENT_COMPLETED}}));
            settle(VIK_SESSION_COMPLETED);
        } else {
            std::string detail;
            if (auto *e = o.if_contains("error"); e && e->is_object()) detail = str(e->get_object().if_contains("message"));
            if (detail.empty())
                detail = last_notice.empty() ? "gemini reported status " + str(o.if_contains("status")) : last_notice;
            out.push_back(event({{"kind", VIK_EVENT_ERROR}, {"detail", detail}}));
            settle(VIK_SESSION_FAILED, detail);
        }
    } else {
        // The user prompt echo (`message` with role user) and anything newer.
        std::string role = str(o.if_contains("role"));
        out.push_back(event({{"kind", VIK_EVENT_UNKNOWN}, {"event_type", role.empty() ? type : type + "/" + role}, {"raw", v}}));
    }
    return out;
}

} // namespace vik::agents
