// The codex and claude event mappers against transcripts captured from the real CLIs talking to
// tests/agents/fake_model_server.py, line by line, plus the FIX cases of vik-compat §6.
#include "../plugins/claude-code/claude_events.hpp"
#include "../plugins/codex/codex_events.hpp"
#include "../plugins/common/agent_cli.hpp"
#include "../plugins/gemini/gemini_events.hpp"
#include "../plugins/opencode/opencode_events.hpp"
#include "support/test_support.hpp"

#include <vik/plugin.h>

#include <boost/json.hpp>
#include <catch2/catch.hpp>

using namespace vik::agents;
namespace json = boost::json;

namespace {

template <class Mapper> std::vector<json::object> replay(Mapper &m, const std::string &text) {
    std::vector<json::object> out;
    size_t start = 0, nl;
    while ((nl = text.find('\n', start)) != std::string::npos) {
        for (auto &e : m.map(std::string_view(text).substr(start, nl - start)))
            out.push_back(json::parse(e).as_object());
        start = nl + 1;
    }
    return out;
}

std::string transcript(const std::string &name) {
    return vik::test::read_file(vik::test::source_dir() / "tests" / "agents" / "transcripts" / (name + ".jsonl"));
}

std::vector<std::string> kinds(const std::vector<json::object> &events) {
    std::vector<std::string> k;
    for (auto &e : events)
        k.emplace_back(e.at("kind").as_string());
    return k;
}

} // namespace

TEST_CASE("codex: a successful turn maps to session, tool call, message, tokens, completed", "[agents]") {
    CodexEventMapper m;
    auto ev = replay(m, transcript("codex-ok"));
    CHECK(kinds(ev) == std::vector<std::string>{"session_started", "unknown", "tool_call", "tool_call", "message", "token_usage",
                                                "completed"});
    CHECK(ev[0].at("session_id").as_string().size() == 36);
    CHECK(ev[1].at("event_type") == "turn.started");
    CHECK(ev[2].at("phase") == "request");
    CHECK_THAT(std::string(ev[2].at("input").at("command").as_string()), Catch::Contains("touch created-by-agent.txt"));
    CHECK(ev[3].at("phase") == "result");
    CHECK(ev[3].at("call_id") == ev[2].at("call_id"));
    CHECK(ev[3].at("output").at("exit_code") == 0);
    CHECK(ev[4].at("text") == "The file is created.");
    CHECK(ev[5].at("input") == 240);
    CHECK(ev[5].at("output") == 60);
    CHECK(ev[5].at("cache_read") == 40);
    CHECK(m.terminal == VIK_SESSION_COMPLETED);
}

TEST_CASE("codex: server errors and broken streams fail the turn with codex's message", "[agents]") {
    for (const char *name : {"codex-error500", "codex-malformed"}) {
        INFO(name);
        CodexEventMapper m;
        auto ev = replay(m, transcript(name));
        CHECK(kinds(ev) == std::vector<std::string>{"session_started", "unknown", "notice", "error"});
        CHECK(m.terminal == VIK_SESSION_FAILED);
        CHECK(m.terminal_detail == std::string(ev[3].at("detail").as_string()));
        CHECK_FALSE(m.terminal_detail.empty());
    }
    CodexEventMapper m;
    replay(m, transcript("codex-malformed"));
    CHECK_THAT(m.terminal_detail, Catch::Contains("stream closed before response.completed"));
}

TEST_CASE("codex: transient top-level errors are notices, error items warnings (FIX)", "[agents]") {
    CodexEventMapper m;
    auto ev = replay(m, R"({"type":"thread.started","thread_id":"t"}
{"type":"error","message":"Reconnecting... 1/5"}
{"type":"item.completed","item":{"id":"i1","type":"error","message":"tool output truncated"}}
{"type":"item.completed","item":{"id":"i2","type":"reasoning","text":"hmm"}}
{"type":"turn.completed","usage":{"input_tokens":1,"cached_input_tokens":0,"output_tokens":2}}
)");
    CHECK(kinds(ev) == std::vector<std::string>{"session_started", "notice", "notice", "unknown", "token_usage", "completed"});
    CHECK(ev[1].at("text") == "Reconnecting... 1/5");
    CHECK(m.terminal == VIK_SESSION_COMPLETED);
}

TEST_CASE("codex: mcp and collab calls, and lines that are not JSON", "[agents]") {
    CodexEventMapper m;
    auto ev = replay(
        m, R"({"type":"item.started","item":{"id":"m1","type":"mcp_tool_call","server":"s","tool":"search","arguments":{"q":"x"}}}
{"type":"item.completed","item":{"id":"c1","type":"collab_tool_call","tool":"spawn_agent","status":"completed","receiver_thread_ids":["t2"]}}
not json at all
)");
    CHECK(kinds(ev) == std::vector<std::string>{"tool_call", "subagent", "error"});
    CHECK(ev[0].at("name") == "search");
    CHECK(ev[1].at("target_ids").at(0) == "t2");
    CHECK(m.terminal == VIK_SESSION_FAILED);
    CHECK_THAT(m.terminal_detail, Catch::StartsWith("codex printed a line that is not JSON"));
}

TEST_CASE("claude: a successful turn maps to session, tool call, message, tokens with cost, completed", "[agents]") {
    ClaudeEventMapper m;
    auto ev = replay(m, transcript("claude-ok"));
    CHECK(kinds(ev) ==
          std::vector<std::string>{"session_started", "tool_call", "tool_call", "message", "token_usage", "completed"});
    CHECK(ev[1].at("name") == "Bash");
    CHECK(ev[1].at("phase") == "request");
    CHECK(ev[1].at("input").at("command") == "touch created-by-agent.txt");
    CHECK(ev[2].at("phase") == "result");
    CHECK(ev[2].at("call_id") == "toolu_1");
    CHECK(ev[3].at("text") == "The file is created.");
    CHECK(ev[4].at("input") == 200);
    CHECK(ev[4].at("output") == 50);
    CHECK(ev[4].at("cache_read") == 20);
    CHECK(ev[4].at("cost_usd").as_double() == Approx(0.001804));
    CHECK(m.terminal == VIK_SESSION_COMPLETED);
}

TEST_CASE("claude: an error result fails the session whatever its subtype (FIX)", "[agents]") {
    for (const char *name : {"claude-error500", "claude-malformed"}) {
        INFO(name);
        ClaudeEventMapper m;
        auto ev = replay(m, transcript(name));
        CHECK(kinds(ev) == std::vector<std::string>{"session_started", "message", "token_usage", "error"});
        CHECK(m.terminal == VIK_SESSION_FAILED);
    }
    ClaudeEventMapper m;
    replay(m, transcript("claude-error500"));
    CHECK_THAT(m.terminal_detail, Catch::StartsWith("API Error: 500 the fake model is down"));
    ClaudeEventMapper interrupted; // a SIGINT-ended run: is_error with exit 0 is still a failure
    replay(interrupted,
           R"({"type":"result","subtype":"success","is_error":true,"result":"","terminal_reason":"aborted","usage":{}}
)");
    CHECK(interrupted.terminal == VIK_SESSION_FAILED);
    CHECK(interrupted.terminal_detail == "claude reported an error (aborted)");
}

TEST_CASE("claude: subagents, permission denials and unknown lines stay visible", "[agents]") {
    ClaudeEventMapper m;
    auto ev = replay(
        m,
        R"({"type":"assistant","message":{"id":"m","content":[{"type":"text","text":"a"},{"type":"text","text":"b"},{"type":"tool_use","id":"tu_9","name":"Task","input":{"prompt":"x"}}]}}
{"type":"user","message":{"role":"user","content":[{"type":"tool_result","tool_use_id":"tu_9","content":"done"}]}}
{"type":"system","subtype":"permission_denied","tool_name":"Bash"}
{"type":"system","subtype":"compact_boundary"}
{"subtype":"success","is_error":false,"type":"result","usage":{"input_tokens":1,"output_tokens":1},"permission_denials":[{"tool_name":"Bash"}]}
)");
    CHECK(kinds(ev) == std::vector<std::string>{"subagent", "message", "subagent", "notice", "unknown", "token_usage", "notice",
                                                "input_required", "completed"});
    CHECK(ev[7].at("question") == "Claude Code was denied permission to use Bash: allow it in the agent profile (args "
                                  "allowedTools or permission-mode) or answer how to go on without it");
    CHECK(ev[1].at("text") == "a\nb");
    CHECK(ev[2].at("action") == "result");
    CHECK(ev[4].at("event_type") == "system/compact_boundary");
}

TEST_CASE("claude: a subscription rate limit becomes rate_limit, hit when rejected", "[agents]") {
    ClaudeEventMapper m;
    auto ev = replay(
        m,
        R"({"type":"rate_limit_event","rate_limit_info":{"status":"rejected","resetsAt":1795392000,"rateLimitType":"five_hour","utilization":1.0},"uuid":"u","session_id":"s"}
{"type":"rate_limit_event","rate_limit_info":{"status":"allowed_warning","resetsAt":1795392000,"rateLimitType":"seven_day","utilization":0.91}}
)");
    REQUIRE(kinds(ev) == std::vector<std::string>{"rate_limit", "rate_limit"});
    CHECK(ev[0].at("limited") == true);
    CHECK(ev[0].at("scope") == "five_hour");
    CHECK(ev[0].at("reset_at") == 1795392000);
    CHECK(ev[1].at("limited") == false);
    CHECK(ev[1].at("utilization") == 0.91);
}

TEST_CASE("agents: vik's args become CLI flags", "[agents]") {
    auto args = json::parse(R"({"sandbox":"workspace-write","max-turns":5,"yolo":true,"quiet":false,"none":null,
                                "allowedTools":["Bash","Edit"],"-c":"model_reasoning_effort=low"})")
                    .as_object();
    CHECK(args_to_flags(args) == std::vector<std::string>{"--sandbox", "workspace-write", "--max-turns", "5", "--yolo",
                                                          "--allowedTools", "Bash,Edit", "-c", "model_reasoning_effort=low"});
}

TEST_CASE("agents: a CLI's exit decides the outcome when its output did not", "[agents]") {
    std::string d;
    CHECK(cli_outcome("codex", VIK_SESSION_COMPLETED, "", 0, 0, false, "", "", d) == VIK_SESSION_COMPLETED);
    CHECK(cli_outcome("codex", -1, "", 143, 0, false, "", "", d) == VIK_SESSION_FAILED);
    CHECK(d == "codex was killed (SIGTERM) before it finished");
    CHECK(cli_outcome("codex", -1, "", -1, 9, true, "", "", d) == VIK_SESSION_CANCELLED);
    CHECK(cli_outcome("claude", -1, "", 1, 0, false, "", "boom\n", d) == VIK_SESSION_FAILED);
    CHECK(d == "claude exited with code 1 before a terminal event: boom");
    CHECK(cli_outcome("claude", VIK_SESSION_FAILED, "API Error", 1, 0, false, "", "", d) == VIK_SESSION_FAILED);
    CHECK(d == "API Error");
}

TEST_CASE("codex and claude: a long line that is not JSON is quoted without cutting a UTF-8 character", "[agents]") {
    // 199 ASCII bytes, then 'é' (2 bytes) straddling the 200-byte cut.
    std::string line = std::string(199, 'a') + "\xc3\xa9 and more text that is not JSON\n";
    CodexEventMapper codex;
    ClaudeEventMapper claude;
    for (const auto &ev : {replay(codex, line), replay(claude, line)}) {
        REQUIRE(ev.size() == 1);
        std::string detail(ev[0].at("detail").as_string());
        CHECK(detail.substr(detail.size() - 199) == std::string(199, 'a')); // the cut stops before the 'é'
    }
}

TEST_CASE("gemini: a successful turn maps to session, tool call, joined message, tokens, completed", "[agents]") {
    GeminiEventMapper m;
    auto ev = replay(m, transcript("gemini-ok"));
    CHECK(kinds(ev) == std::vector<std::string>{"session_started", "unknown", "tool_call", "tool_call", "message", "token_usage",
                                                "completed"});
    CHECK(ev[0].at("session_id").as_string().size() == 36);
    CHECK(ev[1].at("event_type") == "message/user");
    CHECK(ev[2].at("name") == "run_shell_command");
    CHECK(ev[2].at("phase") == "request");
    CHECK(ev[2].at("input").at("command") == "touch created-by-agent.txt");
    CHECK(ev[3].at("phase") == "result");
    CHECK(ev[3].at("call_id") == ev[2].at("call_id"));
    CHECK(ev[3].at("name") == "run_shell_command");
    CHECK(ev[3].at("output").at("status") == "success");
    CHECK(ev[4].at("text") == "The file is created."); // two deltas, one message
    CHECK(ev[5].at("input") == 200);
    CHECK(ev[5].at("output") == 50);
    CHECK(ev[5].at("cache_read") == 20);
    CHECK(m.terminal == VIK_SESSION_COMPLETED);
}

TEST_CASE("gemini: server errors and broken streams fail with gemini's message", "[agents]") {
    for (const char *name : {"gemini-error500", "gemini-malformed"}) {
        INFO(name);
        GeminiEventMapper m;
        auto ev = replay(m, transcript(name));
        CHECK(kinds(ev) == std::vector<std::string>{"session_started", "unknown", "token_usage", "error"});
        CHECK(m.terminal == VIK_SESSION_FAILED);
        CHECK(m.terminal_detail == std::string(ev[3].at("detail").as_string()));
    }
    GeminiEventMapper m;
    replay(m, transcript("gemini-error500"));
    CHECK_THAT(m.terminal_detail, Catch::Contains("the fake model is down"));
}

TEST_CASE("gemini: without yolo the shell tool is not offered, and the run still completes", "[agents]") {
    GeminiEventMapper m;
    auto ev = replay(m, transcript("gemini-no-shell"));
    CHECK(kinds(ev) == std::vector<std::string>{"session_started", "unknown", "tool_call", "tool_call", "message", "token_usage",
                                                "completed"});
    CHECK(ev[3].at("output").at("status") == "error");
    CHECK_THAT(std::string(ev[3].at("output").at("error").as_string()), Catch::Contains("not found"));
}

TEST_CASE("gemini: in-run errors are notices, a result without success fails", "[agents]") {
    GeminiEventMapper m;
    auto ev = replay(m, R"({"type":"init","session_id":"s","model":"m"}
{"type":"message","role":"assistant","content":"part","delta":true}
{"type":"error","severity":"warning","message":"Loop detected, stopping execution"}
{"type":"result","status":"error","stats":{"input_tokens":3,"output_tokens":4,"cached":0}}
)");
    CHECK(kinds(ev) == std::vector<std::string>{"session_started", "message", "notice", "token_usage", "error"});
    CHECK(ev[2].at("text") == "Loop detected, stopping execution");
    CHECK(m.terminal == VIK_SESSION_FAILED);
    CHECK(m.terminal_detail == "Loop detected, stopping execution");
}

TEST_CASE("opencode: a successful turn maps to session, tool call, tokens with cost per step, message, completed", "[agents]") {
    OpencodeEventMapper m;
    auto ev = replay(m, transcript("opencode-ok"));
    CHECK(kinds(ev) == std::vector<std::string>{"session_started", "unknown", "tool_call", "tool_call", "token_usage", "unknown",
                                                "message", "token_usage", "completed"});
    CHECK_THAT(std::string(ev[0].at("session_id").as_string()), Catch::StartsWith("ses_"));
    CHECK(ev[1].at("event_type") == "step_start");
    CHECK(ev[2].at("name") == "bash");
    CHECK(ev[2].at("phase") == "request");
    CHECK(ev[2].at("input").at("command") == "touch created-by-agent.txt");
    CHECK(ev[3].at("phase") == "result");
    CHECK(ev[3].at("call_id") == "call_1");
    CHECK(ev[3].at("output").at("exit_code") == 0);
    CHECK(ev[3].at("output").at("status") == "completed");
    CHECK(ev[4].at("input") == 90);
    CHECK(ev[4].at("output") == 20);
    CHECK(ev[4].at("cache_read") == 10);
    CHECK(ev[4].at("reasoning") == 5);
    CHECK(ev[4].at("cost_usd").as_double() > 0);
    CHECK(ev[6].at("text") == "The file is created.");
    CHECK(m.terminal == VIK_SESSION_COMPLETED);
}

TEST_CASE("opencode: API errors and broken streams fail with opencode's message", "[agents]") {
    OpencodeEventMapper e500;
    auto ev = replay(e500, transcript("opencode-error500"));
    CHECK(kinds(ev) == std::vector<std::string>{"session_started", "error"});
    CHECK(e500.terminal == VIK_SESSION_FAILED);
    CHECK(e500.terminal_detail == "HTTP 500: the fake model is down");
    OpencodeEventMapper bad;
    ev = replay(bad, transcript("opencode-malformed"));
    CHECK(kinds(ev) == std::vector<std::string>{"session_started", "unknown", "error"});
    CHECK(bad.terminal == VIK_SESSION_FAILED);
    CHECK_THAT(bad.terminal_detail, Catch::StartsWith("JSON parsing failed"));
}

TEST_CASE("opencode: a failed tool, a step cut by the length limit and no stop leave the exit to decide", "[agents]") {
    OpencodeEventMapper m;
    auto ev = replay(
        m,
        R"({"type":"tool_use","sessionID":"ses_1","part":{"tool":"edit","callID":"c","state":{"status":"error","input":{"filePath":"/etc/x"},"error":"permission rejected"}}}
{"type":"step_finish","sessionID":"ses_1","part":{"reason":"length","tokens":{"input":1,"output":2,"reasoning":0,"cache":{"read":0,"write":3}},"cost":0}}
)");
    CHECK(kinds(ev) == std::vector<std::string>{"session_started", "tool_call", "tool_call", "token_usage", "notice"});
    CHECK(ev[2].at("output").at("status") == "error");
    CHECK(ev[2].at("output").at("output") == "permission rejected");
    CHECK(ev[3].at("cache_write") == 3);
    CHECK(m.terminal == -1);
    std::string d;
    CHECK(cli_outcome("opencode", m.terminal, m.terminal_detail, 0, 0, false, m.last_notice, "", d) == VIK_SESSION_FAILED);
    CHECK(d == "opencode exited without a terminal event: the model stopped: length");
}

TEST_CASE("opencode: a permission rule's refusal is a notice, an 'ask' rejection ends the run without a terminal line",
          "[agents]") {
    OpencodeEventMapper denied; // external_directory: deny -> the model is told and finishes
    auto ev = replay(denied, transcript("opencode-external-denied"));
    CHECK(kinds(ev) == std::vector<std::string>{"session_started", "unknown", "tool_call", "tool_call", "notice", "token_usage",
                                                "unknown", "message", "token_usage", "completed"});
    CHECK(ev[4].at("text") ==
          "permission denied: The user has specified a rule which prevents you from using this specific tool call.");
    CHECK(denied.terminal == VIK_SESSION_COMPLETED);
    OpencodeEventMapper asked; // external_directory: ask (the default) -> rejected, the run stops, exit 0
    ev = replay(asked, transcript("opencode-external-ask"));
    CHECK(kinds(ev) == std::vector<std::string>{"session_started", "unknown", "tool_call", "tool_call", "notice",
                                                "input_required", "token_usage"});
    CHECK_THAT(std::string(ev[5].at("question").as_string()), Catch::StartsWith("opencode needed permission to use "));
    CHECK(asked.terminal == -1);
    std::string d;
    CHECK(cli_outcome("opencode", asked.terminal, asked.terminal_detail, 0, 0, false, asked.last_notice, "", d) ==
          VIK_SESSION_FAILED);
    CHECK(d == "opencode exited without a terminal event: permission denied: The user rejected permission to use this specific "
               "tool call.");
}
