// Out-of-process plugins (plugins/process_bridge.hpp) through the real loader and instances: a
// Python program answers tracker calls over stdio; its stderr and `log` messages reach the host
// log; a crash or a hang costs its process, which is started again after a backoff, and after
// repeated failures calls are refused with a message saying so; a program that refuses to
// initialize is refused at create.
#include "plugins/host_api.hpp"
#include "plugins/instances.hpp"
#include "plugins/registry.hpp"
#include "process/process_service.hpp"
#include "support/test_support.hpp"

#include <catch2/catch.hpp>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include <mutex>
#include <thread>

using namespace vik;
using namespace std::chrono_literals;
using vik::test::TempDir;
using vik::test::write_file;
namespace fs = std::filesystem;

namespace {

// A tracker whose n-th pull does what the n-th word of plan.txt says: ok, noise (a stray stdout
// line, a stderr line and a log notification, then ok), crash (exit 3) or hang.
const char *kFlakyTracker = R"PY(#!/usr/bin/env python3
import json, os, sys, time
here = os.path.dirname(os.path.abspath(__file__))
def send(m):
    sys.stdout.write(json.dumps(m) + "\n")
    sys.stdout.flush()
def next_action():
    path = os.path.join(here, "count")
    n = int(open(path).read()) if os.path.exists(path) else 0
    open(path, "w").write(str(n + 1))
    plan = open(os.path.join(here, "plan.txt")).read().split()
    return plan[n] if n < len(plan) else "ok"
for line in sys.stdin:
    r = json.loads(line)
    m = r.get("method")
    if m == "shutdown":
        break
    if m == "initialize":
        if os.path.exists(os.path.join(here, "refuse")):
            send({"jsonrpc": "2.0", "id": r["id"], "error": {"code": -32000, "message": "setting 'path' is missing",
                                                          "data": {"status": "invalid_argument"}}})
        else:
            send({"jsonrpc": "2.0", "id": r["id"], "result": {}})
        continue
    if m == "tracker.pull":
        a = next_action()
        if a == "crash":
            sys.exit(3)
        if a == "hang":
            time.sleep(1000)
        if a == "noise":
            print("not a protocol message", flush=True)
            print("a line on stderr", file=sys.stderr, flush=True)
            send({"jsonrpc": "2.0", "method": "log", "params": {"level": "info", "message": "hello from python"}})
        send({"jsonrpc": "2.0", "id": r["id"], "result": [{"id": "P-1", "title": "t", "state": "todo", "description": ""}]})
        continue
    send({"jsonrpc": "2.0", "id": r["id"], "error": {"code": -32601, "message": "no such method"}})
)PY";

// The host log as the test reads it: lines come from the process I/O thread.
class CapturedLog : public spdlog::sinks::base_sink<std::mutex> {
  public:
    std::string str() {
        std::lock_guard lock(mutex_);
        return text_;
    }
    // Whether `text` shows up within 10 s (stderr and stdout are separate pipes: a stderr line
    // may come after the answer that followed it).
    bool shows(const std::string &text) {
        for (int i = 0; i < 200; ++i) {
            if (str().find(text) != std::string::npos) return true;
            std::this_thread::sleep_for(50ms);
        }
        return false;
    }

  protected:
    void sink_it_(const spdlog::details::log_msg &msg) override {
        text_.append(msg.payload.data(), msg.payload.size());
        text_ += '\n';
    }
    void flush_() override {}

  private:
    std::string text_;
};

struct FlakyTracker {
    TempDir dir;
    process::ProcessService processes;
    plugins::ProcessServiceBinding binding{processes};
    std::shared_ptr<CapturedLog> log = std::make_shared<CapturedLog>();
    std::shared_ptr<spdlog::logger> previous = spdlog::default_logger();

    explicit FlakyTracker(const std::string &plan) {
        write_file(dir / "flaky.toml", "id = \"flaky\"\nversion = \"0.2.0\"\nabi_major = 1\nkinds = [\"tracker\"]\n"
                                       "trackers = [\"flaky\"]\nexecutable = \"flaky.py\"\n");
        write_file(dir / "flaky.py", kFlakyTracker);
        fs::permissions(dir / "flaky.py", fs::perms::owner_all);
        write_file(dir / "plan.txt", plan);
        spdlog::set_default_logger(std::make_shared<spdlog::logger>("process-plugin-test", log));
        spdlog::set_level(spdlog::level::debug);
    }
    ~FlakyTracker() {
        spdlog::set_default_logger(previous);
        spdlog::set_level(spdlog::level::info);
    }

    std::unique_ptr<plugins::TrackerInstance> create() {
        auto reg = plugins::load_plugins({dir.path});
        REQUIRE(reg.all_loaded());
        REQUIRE(reg.records.size() == 1);
        CHECK(reg.records[0].version == "0.2.0");
        auto made = plugins::TrackerInstance::create(reg.find_tracker("flaky"), "{}");
        REQUIRE(made.has_value());
        return std::move(*made);
    }
};

} // namespace

TEST_CASE("out-of-process plugins: a program serves tracker calls, and its crashes and hangs cost only its process",
          "[plugins][process]") {
    FlakyTracker f("ok noise crash ok hang ok crash crash crash crash crash");
    auto t = f.create();
    auto first = t->pull(5000);
    REQUIRE(first.has_value());
    CHECK_THAT(*first, Catch::Contains("\"P-1\""));
    // What it writes besides its answers is logged, tagged with the plugin.
    REQUIRE(t->pull(5000).has_value());
    CHECK(f.log->shows("stderr: a line on stderr"));
    CHECK(f.log->shows("hello from python"));
    CHECK(f.log->shows("printed a line that is not a protocol message"));
    // A crash fails the call in flight; the next call waits out the backoff, then a new process
    // answers.
    auto crashed = t->pull(5000);
    REQUIRE_FALSE(crashed.has_value());
    CHECK_THAT(crashed.error().message, Catch::Contains("plugin 'flaky': its process exited with code 3 during tracker.pull"));
    auto early = t->pull(5000);
    REQUIRE_FALSE(early.has_value());
    CHECK_THAT(early.error().message, Catch::Contains("it is started again in 1 s"));
    std::this_thread::sleep_for(1100ms);
    REQUIRE(t->pull(5000).has_value());
    // A hang: the call times out and the process is stopped.
    auto hung = t->pull(400);
    REQUIRE_FALSE(hung.has_value());
    CHECK(hung.error().status == VIK_TIMEOUT);
    CHECK_THAT(hung.error().message, Catch::Contains("plugin 'flaky' did not answer tracker.pull within"));
    std::this_thread::sleep_for(1100ms);
    REQUIRE(t->pull(5000).has_value());
    // A method the program does not know is `unsupported`, as in a library.
    auto fetched = t->fetch("[\"P-1\"]", 5000);
    REQUIRE_FALSE(fetched.has_value());
    CHECK(fetched.error().status == VIK_UNSUPPORTED);
    // Five failures in a row (with backoffs of 1, 2, 4 and 8 s between): not started again.
    for (int i = 0; i < 5; ++i) {
        auto r = t->pull(5000);
        REQUIRE_FALSE(r.has_value());
        CHECK_THAT(r.error().message, Catch::Contains("exited with code 3"));
        if (i < 4) std::this_thread::sleep_for(std::chrono::milliseconds((1000 << i) + 100));
    }
    auto refused = t->pull(5000);
    REQUIRE_FALSE(refused.has_value());
    CHECK_THAT(refused.error().message, Catch::Contains("its process failed 5 times in a row (last: exited with code 3); it "
                                                        "is not started again: fix the plugin"));
}

TEST_CASE("out-of-process plugins: a program that refuses to initialize is refused at create, a missing one at load",
          "[plugins][process]") {
    FlakyTracker f("ok");
    write_file(f.dir / "refuse", "");
    auto reg = plugins::load_plugins({f.dir.path});
    REQUIRE(reg.all_loaded());
    auto made = plugins::TrackerInstance::create(reg.find_tracker("flaky"), "{}");
    REQUIRE_FALSE(made.has_value());
    CHECK(made.error().status == VIK_INVALID_ARGUMENT);
    CHECK(made.error().message == "plugin 'flaky' did not initialize as a tracker plugin: setting 'path' is missing");

    fs::remove(f.dir / "flaky.py");
    auto missing = plugins::load_plugins({f.dir.path});
    REQUIRE(missing.records.size() == 1);
    CHECK_FALSE(missing.records[0].loaded);
    CHECK_THAT(missing.records[0].error, Catch::Contains("flaky.py (named by flaky.toml) is not an executable file"));
}

TEST_CASE("out-of-process plugins: a hooks program sees each event with its context and can veto", "[plugins][process]") {
    TempDir dir;
    process::ProcessService processes;
    plugins::ProcessServiceBinding binding{processes};
    write_file(dir / "hooks.toml",
               "id = \"py-hooks\"\nversion = \"1.0.0\"\nabi_major = 1\nkinds = [\"hooks\"]\nexecutable = \"hooks.py\"\n");
    write_file(dir / "hooks.py", R"PY(#!/usr/bin/env python3
import json, os, sys
here = os.path.dirname(os.path.abspath(__file__))
for line in sys.stdin:
    r = json.loads(line)
    if r.get("method") == "shutdown":
        break
    reply = {"jsonrpc": "2.0", "id": r["id"], "result": None}
    if r["method"] == "hooks.on_event":
        p = r["params"]
        with open(os.path.join(here, "events.log"), "a") as f:
            f.write(p["event"] + " " + p["context"]["issue"]["id"] + "\n")
        if p["event"] == "stage.before_run":
            reply = {"jsonrpc": "2.0", "id": r["id"], "error": {"code": -32000, "message": "tests must pass first"}}
    sys.stdout.write(json.dumps(reply) + "\n")
    sys.stdout.flush()
)PY");
    fs::permissions(dir / "hooks.py", fs::perms::owner_all);
    auto reg = plugins::load_plugins({dir.path});
    REQUIRE(reg.all_loaded());
    auto hooks = plugins::HooksInstance::create(reg.with_kind(plugins::Kind::hooks).at(0), "{}");
    REQUIRE(hooks.has_value());
    const std::string context = R"({"hook":"after_create","issue":{"id":"H-1"},"env":{},"workdir":"/tmp","stage":null})";
    CHECK((*hooks)->on_event("workspace.after_create", context, 5000).has_value());
    auto vetoed = (*hooks)->on_event("stage.before_run", context, 5000);
    REQUIRE_FALSE(vetoed.has_value());
    CHECK(vetoed.error().message == "tests must pass first");
    CHECK(vik::test::read_file(dir / "events.log") == "workspace.after_create H-1\nstage.before_run H-1\n");
}
