#include "opencode_events.hpp"

#include "../common/agent_cli.hpp"

#include <vik/plugin.h>

#include <boost/json.hpp>

#include <algorithm>

namespace vik::agents {

namespace json = boost::json;

namespace {
const json::object &obj(const json::object &o, const char *k) {
    static const json::object empty;
    auto *v = o.if_contains(k);
    return v && v->is_object() ? v->get_object() : empty;
}
} // namespace

const EventList &OpencodeEventMapper::map_line(std::string_view line, bool truncated) {
    EventList &out = start_line();
    const json::value *doc = parse_line(line, truncated, "opencode", out);
    if (doc == nullptr) return out;
    const json::value &v = *doc;
    const json::object &o = v.get_object();
    std::string type = str(o.if_contains("type"));
    const json::object &part = obj(o, "part");

    if (!started_ && o.contains("sessionID")) {
        started_ = true;
        out.push_back(event({{"kind", VIK_EVENT_SESSION_STARTED}, {"session_id", str(o.if_contains("sessionID"))}}));
    }
    if (type == "text") {
        std::string text = str(part.if_contains("text"));
        if (!text.empty()) out.push_back(event({{"kind", VIK_EVENT_MESSAGE}, {"text", text}}));
    } else if (type == "tool_use") {
        // One line per finished call: its request and its result.
        const json::object &state = obj(part, "state");
        std::string id = str(part.if_contains("callID")), name = str(part.if_contains("tool"));
        json::value input = state.contains("input") ? state.at("input") : json::value();
        std::string status = str(state.if_contains("status"));
        json::object output{{"status", status}, {"output", str(state.if_contains(status == "error" ? "error" : "output"))}};
        if (auto *exit = obj(state, "metadata").if_contains("exit"); exit && !exit->is_null()) output["exit_code"] = *exit;
        out.push_back(event({{"kind", VIK_EVENT_TOOL_CALL},
                             {"call_id", id},
                             {"name", name},
                             {"phase", "request"},
                             {"input", input},
                             {"output", nullptr},
                             {"raw", v}}));
        out.push_back(event({{"kind", VIK_EVENT_TOOL_CALL},
                             {"call_id", id},
                             {"name", name},
                             {"phase", "result"},
                             {"input", input},
                             {"output", output},
                             {"raw", v}}));
        // A permission rule said no: "deny" (the model is told and goes on) or "ask" (rejected,
        // as `opencode run` cannot ask: the run stops after this step and exits 0).
        std::string error = str(state.if_contains("error"));
        if (status == "error" && (error.find("rejected permission") != std::string::npos ||
                                  error.find("rule which prevents you") != std::string::npos)) {
            size_t end = std::min(error.find(". "), error.find('\n')); // not the rule list that follows
            last_notice = "permission denied: " + error.substr(0, end == std::string::npos ? end : end + (error[end] == '.'));
            out.push_back(event({{"kind", VIK_EVENT_NOTICE}, {"level", "warning"}, {"text", last_notice}, {"raw", v}}));
            // "ask" cannot be asked in `opencode run`: the run stops here, and a human decides.
            if (error.find("rejected permission") != std::string::npos)
                out.push_back(event({{"kind", VIK_EVENT_INPUT_REQUIRED},
                                     {"question", "opencode needed permission to use " + (name.empty() ? "a tool" : name) +
                                                      " and cannot ask in a run: allow it in opencode's permission "
                                                      "config or answer how to go on without it"}}));
        }
    } else if (type == "step_finish") {
        // Usage per model call (the host sums token_usage events); `cost` from the model's
        // configured prices.
        const json::object &tokens = obj(part, "tokens");
        json::object usage{{"kind", VIK_EVENT_TOKEN_USAGE},
                           {"input", int_field(tokens, "input")},
                           {"output", int_field(tokens, "output")},
                           {"cache_read", int_field(obj(tokens, "cache"), "read")},
                           {"cache_write", int_field(obj(tokens, "cache"), "write")},
                           {"reasoning", int_field(tokens, "reasoning")}};
        if (auto *c = part.if_contains("cost"); c && (c->is_double() || c->is_int64() || c->is_uint64())) usage["cost_usd"] = *c;
        out.push_back(event(usage));
        std::string reason = str(part.if_contains("reason"));
        if (reason == "stop") {
            out.push_back(event({{"kind", VIK_EVENT_COMPLETED}}));
            settle(VIK_SESSION_COMPLETED);
        } else if (reason != "tool-calls" && !reason.empty()) {
            // length, content-filter, ...: the model stopped without finishing its answer.
            last_notice = "the model stopped: " + reason;
            out.push_back(event({{"kind", VIK_EVENT_NOTICE}, {"level", "warning"}, {"text", last_notice}, {"raw", v}}));
        }
    } else if (type == "error") {
        const json::object &err = obj(o, "error");
        const json::object &data = obj(err, "data");
        std::string detail = str(data.if_contains("message"));
        if (detail.empty()) detail = str(err.if_contains("name"));
        if (detail.empty()) detail = "opencode reported an error";
        if (auto *code = data.if_contains("statusCode"); code && !code->is_null()) detail = "HTTP " + str(code) + ": " + detail;
        out.push_back(event({{"kind", VIK_EVENT_ERROR}, {"detail", detail}}));
        settle(VIK_SESSION_FAILED, detail);
    } else {
        out.push_back(event({{"kind", VIK_EVENT_UNKNOWN}, {"event_type", type}, {"raw", v}}));
    }
    return out;
}

} // namespace vik::agents
