// An agent runtime out of the host's process (plugins/process_bridge.hpp), through the real loader
// and RuntimeInstance: a Python program (examples/python-runtime) runs sessions whose events,
// agent pid and finish come back over stdio; a cancel reaches the agent; a runtime process that
// dies fails the sessions it ran, and the next session starts a new one.
#include "plugins/host_api.hpp"
#include "plugins/instances.hpp"
#include "plugins/registry.hpp"
#include "process/process_service.hpp"
#include "support/test_support.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <csignal>
#include <optional>
#include <string>
#include <thread>
#include <vector>

using namespace vik;
using namespace std::chrono_literals;
using vik::test::TempDir;
namespace json = boost::json;

namespace {

struct PythonRuntime {
    process::ProcessService processes;
    plugins::ProcessServiceBinding binding{processes};
    boost::asio::io_context io;
    std::unique_ptr<plugins::RuntimeInstance> runtime;

    PythonRuntime() {
        auto reg = plugins::load_plugins({test::source_dir() / "examples" / "python-runtime" / "plugins"});
        REQUIRE(reg.all_loaded());
        auto made = plugins::RuntimeInstance::create(reg.find_runtime("py"), "{}");
        REQUIRE(made);
        runtime = std::move(*made);
    }
};

// One session's deliveries, handled on the test's io_context (the orchestrator's loop in the host).
struct Session {
    std::vector<std::string> texts;
    std::optional<std::pair<int32_t, std::string>> finish;
    std::unique_ptr<plugins::AgentSession> handle;

    void start(PythonRuntime &rt, const std::string &id, const std::string &settings, const std::string &prompt = "") {
        plugins::SessionStart req;
        req.session_id = id;
        req.profile_json = R"({"name":"bot","runtime":"py","model":"none","settings":)" + settings + "}";
        req.prompt = prompt;
        req.workdir = std::filesystem::temp_directory_path().string();
        req.env = {"PATH=/usr/bin:/bin", "VIK_ISSUE_ID=PY-" + id, "VIK_ISSUE_STAGE=work"};
        plugins::SessionListener l;
        l.on_event = [this](std::string_view event) {
            auto v = json::parse(event);
            if (v.at("kind") == "message") texts.emplace_back(v.at("text").as_string());
        };
        l.on_finish = [this](int32_t outcome, std::string detail) { finish.emplace(outcome, std::move(detail)); };
        l.dispatch = [&rt](std::function<void()> f) { boost::asio::post(rt.io, std::move(f)); };
        auto s = rt.runtime->start(req, std::move(l));
        REQUIRE(s);
        handle = std::move(*s);
    }

    // Runs the loop until `done` or 20 s.
    bool until(PythonRuntime &rt, const std::function<bool()> &done) {
        auto end = std::chrono::steady_clock::now() + 20s;
        while (!done() && std::chrono::steady_clock::now() < end) {
            rt.io.restart();
            rt.io.run_for(20ms);
        }
        return done();
    }
};

} // namespace

TEST_CASE("process runtime: a Python runtime's session reports its agent's lines and finish", "[plugins][process]") {
    PythonRuntime rt;
    Session s;
    s.start(rt, "1", R"({"command":"cat; echo done"})", "first line\nsecond line\n");
    REQUIRE(s.until(rt, [&] { return s.finish.has_value(); }));
    CHECK(s.texts == std::vector<std::string>{"first line", "second line", "done"});
    CHECK(s.finish->first == VIK_SESSION_COMPLETED);
    CHECK(s.finish->second == "exit 0");
    s.handle.reset(); // release

    // A failing agent, in the same runtime process.
    Session failing;
    failing.start(rt, "2", R"({"command":"echo oops; exit 4"})");
    REQUIRE(failing.until(rt, [&] { return failing.finish.has_value(); }));
    CHECK(failing.texts == std::vector<std::string>{"oops"});
    CHECK(failing.finish->first == VIK_SESSION_FAILED);
    CHECK(failing.finish->second == "exit 4");
}

TEST_CASE("process runtime: the agent is known by its pid while it runs, and a cancel stops it", "[plugins][process]") {
    PythonRuntime rt;
    Session s;
    s.start(rt, "3", R"({"command":"echo $$; exec sleep 60"})");
    REQUIRE(s.until(rt, [&] { return !s.texts.empty(); }));
    int64_t pid = std::stoll(s.texts[0]);
    // session.process: the control channel would know this peer as the agent of PY-3.
    REQUIRE(test::wait_until([&] { return plugins::spawned_process(pid).has_value(); }, 5s));
    auto known = plugins::spawned_process(pid);
    CHECK(known->plugin_id == "py-runtime");
    CHECK(known->issue_id == "PY-3");
    CHECK(known->stage == "work");
    s.handle->cancel();
    REQUIRE(s.until(rt, [&] { return s.finish.has_value(); }));
    CHECK(s.finish->first == VIK_SESSION_CANCELLED);
    CHECK(test::wait_until([&] { return ::kill(static_cast<pid_t>(pid), 0) != 0; }, 5s)); // the agent is gone
    s.handle.reset();
    CHECK_FALSE(plugins::spawned_process(pid).has_value());
}

TEST_CASE("process runtime: a runtime process that dies fails its sessions, the next session starts a new one",
          "[plugins][process]") {
    PythonRuntime rt;
    Session running, crashing;
    running.start(rt, "4", R"({"command":"echo up; exec sleep 60"})");
    REQUIRE(running.until(rt, [&] { return !running.texts.empty(); }));
    crashing.start(rt, "5", R"({"mode":"crash"})"); // the whole runtime process exits with code 3
    REQUIRE(crashing.until(rt, [&] { return running.finish && crashing.finish; }));
    CHECK(running.finish->first == VIK_SESSION_FAILED);
    CHECK_THAT(running.finish->second,
               Catch::Contains("plugin 'py-runtime': its process exited with code 3 while the session ran"));
    CHECK(crashing.finish->first == VIK_SESSION_FAILED);
    running.handle.reset();
    crashing.handle.reset();

    // After the backoff (1 s), a new session starts a new runtime process.
    Session after;
    auto started = std::chrono::steady_clock::now();
    while (true) {
        after = Session{};
        after.start(rt, "6", R"({"command":"echo again"})");
        REQUIRE(after.until(rt, [&] { return after.finish.has_value(); }));
        if (after.finish->first == VIK_SESSION_COMPLETED || std::chrono::steady_clock::now() - started > 10s) break;
        CHECK_THAT(after.finish->second, Catch::Contains("it is started again in"));
        after.handle.reset();
        std::this_thread::sleep_for(300ms);
    }
    CHECK(after.finish->first == VIK_SESSION_COMPLETED);
    CHECK(after.texts == std::vector<std::string>{"again"});
}
